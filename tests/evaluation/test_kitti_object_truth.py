"""KITTI object detection labels (``label_2/``, one ``.txt`` an image) as ground truth: boxes
by class, DontCare regions ignored, images matched to predictions and an INPUT folder by
file name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drivevision.cli import main
from drivevision.evaluation import read_truth
from tests.evaluation.helpers import CAR, PERSON, folder_run, score

DEMO = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")
DONT_CARE = [250, 150, 300, 200]
CYCLIST = [120, 130, 160, 200]


def kitti_line(kind: str, box: list, score: float | None = None) -> str:
    """A line as KITTI's label_2 files hold it (``score``: a results file's 16th column)."""
    box = " ".join(f"{v:.2f}" for v in box)
    tail = "" if score is None else f" {score}"
    return f"{kind} 0.00 0 -1.57 {box} 1.50 1.60 3.90 1.00 1.80 20.00 0.01{tail}\n"


@pytest.fixture
def labels(tmp_path) -> Path:
    """000000: a car, a pedestrian and a DontCare region; 000001: nothing; 000002: a
    cyclist."""
    folder = tmp_path / "label_2"
    folder.mkdir()
    (folder / "000000.txt").write_text(kitti_line("Car", CAR) + kitti_line("Pedestrian", PERSON)
                                       + kitti_line("DontCare", DONT_CARE))
    (folder / "000001.txt").write_text("")
    (folder / "000002.txt").write_text(kitti_line("Cyclist", CYCLIST))
    return folder


def test_a_label_folder_reads_to_boxes_per_image_with_dont_care_ignored(labels):
    (labels / "readme.md").write_text("not a label")  # other files are passed over
    truth = read_truth(labels)
    assert truth.classes == ("car", "pedestrian", "cyclist")
    assert truth.file_names == {0: "000000.png", 1: "000001.png", 2: "000002.png"}
    first, empty, last = (truth.frames[f] for f in range(3))
    assert first.labels == ("car", "pedestrian", "dontcare")
    np.testing.assert_allclose(first.boxes, [CAR, PERSON, DONT_CARE])
    assert first.ignore.tolist() == [False, False, True]
    assert len(empty) == 0 and last.labels == ("cyclist",)
    assert truth.sizes == {}  # KITTI's labels state no image size


def test_label_files_are_frames_in_the_order_detect_reads_their_images(tmp_path):
    folder = tmp_path / "labels"
    folder.mkdir()
    for stem in ("10", "9", "a.b"):
        (folder / f"{stem}.txt").write_text(kitti_line("Car", CAR))
    assert list(read_truth(folder).file_names.values()) == ["9.png", "10.png", "a.b.png"]


def test_a_folder_run_is_scored_against_the_labels_of_its_images_by_name(labels, tmp_path,
                                                                         capsys):
    # another folder's run: its own frame numbers, JPEGs of the same stems, an image more;
    # the best box lies on the DontCare region, neither a hit nor a false positive
    every = {"extra.jpg": [("car", 0.9, [1, 1, 30, 30])],
             "000002.jpg": [("cyclist", 0.8, CYCLIST)], "000001.jpg": [],
             "000000.jpg": [("car", 0.95, DONT_CARE), ("car", 0.9, CAR),
                            ("person", 0.8, PERSON)]}
    pred = folder_run(tmp_path / "det.jsonl", every)
    code, _, err = score(capsys, labels, pred, "--class-map", "pedestrian=person")
    assert code == 2 and err.strip().endswith(
        f"{pred} has 1 image that {labels} does not label (extra.jpg); pass "
        "--allow-unlabelled to leave them out")
    code, metrics, err = score(capsys, labels, pred, "--class-map", "pedestrian=person",
                               "--allow-unlabelled")
    assert code == 0, err
    assert metrics["AP"] == pytest.approx(1.0) and metrics["frames"] == 3
    assert metrics["per_class"] == pytest.approx({"car": 1.0, "pedestrian": 1.0,
                                                  "cyclist": 1.0})
    # the cyclist missed: its class scores 0, the mean over the three classes 2/3
    pred = folder_run(tmp_path / "det.jsonl", {**every, "000002.jpg": []})
    code, metrics, err = score(capsys, labels, pred, "--class-map", "pedestrian=person",
                               "--allow-unlabelled")
    assert code == 0, err
    assert metrics["per_class"]["cyclist"] == 0.0
    assert metrics["AP"] == pytest.approx(2 / 3)


def test_a_pedestrian_found_as_person_gets_the_class_map_offered(labels, tmp_path, capsys):
    pred = folder_run(tmp_path / "det.jsonl", {
        "000000.png": [("car", 0.9, CAR), ("person", 0.8, PERSON)], "000001.png": [],
        "000002.png": [("cyclist", 0.8, CYCLIST)]})
    code, metrics, err = score(capsys, labels, pred)
    assert code == 0 and metrics["per_class"]["pedestrian"] == 0.0
    assert '--class-map "pedestrian=person"' in err


def _write(name: str, text: str):
    def spoil(folder: Path) -> Path:
        (folder / name).write_text(text)
        return folder / name
    return spoil


@pytest.mark.parametrize("spoil, expected", [
    (_write("000003.txt", kitti_line("Car", CAR, score=0.87)),
     "line 1: 16 values, a score after type truncated occluded alpha left top right bottom h "
     "w l x y z rotation_y: these are a detector's results, not ground truth labels"),
    (_write("000003.txt", kitti_line("Car", CAR) + "Car 0.00 0 -1.57 10 10 110 110\n"),
     "line 2: expected a KITTI object label of 15 values, type truncated occluded alpha left "
     "top right bottom h w l x y z rotation_y, but got Car 0.00 0 -1.57 10 10 110 110"),
    (_write("000003.txt", kitti_line("Car", [110, 10, 10, 110])),
     "line 1: box left 110 top 10 right 10 bottom 110 ends before it starts"),
    (_write("000003.txt", kitti_line("Car", CAR).replace("-1.57", "left")),
     "line 1: expected a KITTI object label of 15 values"),
    (_write("000003.txt", "0 1 Car " + kitti_line("Car", CAR).split(" ", 1)[1]),
     "line 1: a KITTI tracking label (frame track_id type ...), not an object label: give "
     "each sequence's file (label_02/0000.txt) as --gt"),
])
def test_a_malformed_label_is_refused_naming_the_file_and_line(labels, tmp_path, capsys, spoil,
                                                               expected):
    path = spoil(labels)
    pred = folder_run(tmp_path / "det.jsonl", {"000000.png": []})
    assert main(["eval", "--gt", str(labels), "--pred", str(pred)]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert err.startswith(f"drivevision: error: {path} {expected}"), err


def test_a_yolo_labels_folder_is_told_apart_and_refused(tmp_path, capsys):
    folder = tmp_path / "labels"
    folder.mkdir()
    (folder / "a.txt").write_text("")
    (folder / "b.txt").write_text("0 0.5 0.5 0.25 0.5\n")
    pred = folder_run(tmp_path / "det.jsonl", {"b.png": []})
    assert main(["eval", "--gt", str(folder), "--pred", str(pred)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"drivevision: error: {folder / 'b.txt'} line 1: a YOLO label (CLASS cx cy w h), not "
        "KITTI's: give the YOLO dataset, the folder holding data.yaml or classes.txt beside "
        "images/ and labels/"]


def test_a_label_folder_without_an_object_is_refused(tmp_path, capsys):
    folder = tmp_path / "label_2"
    folder.mkdir()
    (folder / "000000.txt").write_text(kitti_line("DontCare", DONT_CARE))
    (folder / "000001.txt").write_text("")
    pred = folder_run(tmp_path / "det.jsonl", {"000000.png": []})
    assert main(["eval", "--gt", str(folder), "--pred", str(pred)]) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"{folder} labels no object (2 images, none with a box that is not ignored): AP, "
        "precision and recall measure the objects found, so there is nothing to score: the "
        "wrong file, or one exported before any box was drawn?")


def test_an_input_folder_is_matched_to_the_labels_by_image_name(labels, tmp_path, capsys):
    import cv2

    images = tmp_path / "image_2"
    images.mkdir()
    for name in ("000000.png", "000001.png", "000002.png", "000003.png"):
        cv2.imwrite(str(images / name), np.full((240, 320, 3), 90, np.uint8))
    run = ["eval", "--gt", str(labels), str(images), "--weights", DEMO, "--device", "cpu",
           "--engines", "torch", "--precision", "fp32", "--warmup", "0", "--json"]
    assert main(run) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"has 1 image that {labels} does not label (000003.png); pass --allow-unlabelled to "
        "leave them out")
    assert main([*run, "--allow-unlabelled"]) == 0
    out, err = capsys.readouterr()
    [row] = json.loads(out)["results"]
    assert (row["frames"], row["gt_boxes"], row["ignored_boxes"]) == (3, 3, 1)  # DontCare
    (images / "000002.png").unlink()
    assert main(run) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"{images} lacks 1 image of {labels} (000002.png): give the folder of its images")
