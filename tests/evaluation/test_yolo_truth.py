"""``eval --gt DATASET``: a YOLO detection dataset (``detect --yolo``'s, corrected in a
labelling tool) read back as ground truth, predictions matched to its images by name."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from drivevision.cli import main
from drivevision.evaluation import read_truth
from tests.evaluation.helpers import write_preds

DEMO = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")


def dataset(root: Path, images: dict[str, tuple[int, int]], labels: dict[str, str],
            names: str = "names: [car, Person]\n", names_file: str = "data.yaml") -> Path:
    """A dataset of blank images of the given (width, height) and label files' texts."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for name, (w, h) in images.items():
        cv2.imwrite(str(root / "images" / name), np.zeros((h, w, 3), np.uint8))
    for stem, text in labels.items():
        (root / "labels" / f"{stem}.txt").write_text(text)
    (root / names_file).write_text(names)
    return root


@pytest.fixture
def three(tmp_path) -> Path:
    """wide.png 400x200 with a car and a person, tall.jpg 100x300 with a polygon person,
    empty.png without a label file."""
    return dataset(tmp_path / "ds", {"wide.png": (400, 200), "tall.jpg": (100, 300),
                                     "empty.png": (64, 48)},
                   {"wide": "0 0.5 0.5 0.25 0.5\n1 0.125 0.25 0.05 0.1\n\n",
                    "tall": "1 0.2 0.1 0.6 0.1 0.6 0.5 0.2 0.5\n"})


def test_a_dataset_reads_to_pixel_boxes_of_each_image_in_natural_order(three):
    truth = read_truth(three)
    assert truth.classes == ("car", "person")
    assert [truth.file_names[f] for f in sorted(truth.frames)] == ["empty.png", "tall.jpg",
                                                                    "wide.png"]
    assert truth.sizes == {0: (64, 48), 1: (100, 300), 2: (400, 200)}
    empty, tall, wide = (truth.frames[f] for f in range(3))
    assert len(empty) == 0
    assert tall.labels == ("person",) and wide.labels == ("car", "person")
    np.testing.assert_allclose(tall.boxes, [[20, 30, 60, 150]], atol=1e-9)
    np.testing.assert_allclose(wide.boxes, [[150, 50, 250, 150], [40, 40, 60, 60]], atol=1e-9)


@pytest.mark.parametrize("names, names_file", [
    ("names:\n  0: car\n  1: person\nnc: 2\n", "data.yaml"),
    ("car\nperson\n", "classes.txt"),
])
def test_class_names_come_from_a_mapping_or_classes_txt(tmp_path, names, names_file):
    ds = dataset(tmp_path / "ds", {"a.png": (10, 10)}, {"a": "1 0.5 0.5 1 1\n"}, names,
                 names_file)
    truth = read_truth(ds)
    assert truth.classes == ("car", "person") and truth.frames[0].labels == ("person",)


def test_an_exif_rotated_image_has_the_size_opencv_decodes_it_at(tmp_path):
    ds = dataset(tmp_path / "ds", {}, {"r": "0 0.5 0.5 1 1\n"})
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees on display
    Image.new("RGB", (80, 40)).save(ds / "images" / "r.jpg", exif=exif)
    assert cv2.imread(str(ds / "images" / "r.jpg")).shape[:2] == (80, 40)
    truth = read_truth(ds)
    assert truth.sizes[0] == (40, 80) and truth.frames[0].boxes.tolist() == [[0, 0, 40, 80]]


def test_the_images_read_are_those_detect_reads_from_a_folder():
    from drivevision.evaluation.yolo import IMAGE_SUFFIXES
    from drivevision.io.images import IMAGE_SUFFIXES as DETECT_READS

    assert IMAGE_SUFFIXES == DETECT_READS


def det(name: str, box: list, score: float = 0.9) -> dict:
    return {"class_name": name, "score": score, "box": box}


def write_jsonl(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def score(capsys, gt, pred, *options) -> tuple[int, dict | None, str]:
    code = main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", *options])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def test_predictions_are_matched_to_the_images_by_file_name(three, tmp_path, capsys):
    # another folder: its own frame numbers, an image the dataset lacks, tall as a .png
    pred = write_jsonl(tmp_path / "p.jsonl", [
        {"frame": 0, "file": "wide.png", "detections": [det("car", [150, 50, 250, 150]),
                                                        det("person", [40, 40, 60, 60])]},
        {"frame": 1, "file": "extra.png", "detections": [det("car", [1, 1, 5, 5])]},
        {"frame": 2, "file": "tall.png", "detections": [det("person", [20, 30, 60, 150])]},
        {"frame": 3, "file": "empty.png", "detections": []}])
    code, _, err = score(capsys, three, pred)
    assert code == 2 and err.strip().endswith(
        "has 1 image that " + str(three) + " does not label (extra.png); pass "
        "--allow-unlabelled to leave them out")
    code, metrics, err = score(capsys, three, pred, "--allow-unlabelled")
    assert code == 0, err
    assert metrics["AP"] == pytest.approx(1.0) and metrics["frames"] == 3
    assert "left out 1 predicted image without ground truth (extra.png)" in err


def test_a_video_run_is_matched_to_the_frames_detect_yolo_named(tmp_path, capsys):
    ds = dataset(tmp_path / "ds", {"frame_000000.jpg": (100, 50), "frame_000007.jpg": (100, 50)},
                 {"frame_000007": "0 0.5 0.5 0.2 0.2\n"})
    pred = write_preds(tmp_path / "p.jsonl", {0: [], 7: [("car", 0.8, [40, 20, 60, 30])]})
    code, metrics, err = score(capsys, ds, pred)
    assert code == 0, err
    assert metrics["AP"] == pytest.approx(1.0) and metrics["gt_boxes"] == 1


def test_predictions_of_other_images_are_refused_with_both_names(three, tmp_path, capsys):
    pred = write_preds(tmp_path / "p.jsonl", {0: [("car", 0.9, [1, 1, 5, 5])]})
    code, _, err = score(capsys, three, pred)
    assert code == 2 and err.strip().endswith(
        f"{pred} has no image of {three} (it names frame_000000, the dataset holds "
        "empty.png, tall.jpg, wide.png): predictions are matched to a dataset's images by "
        "file name")


def _label(text):
    return lambda root: (root / "labels" / "wide.txt").write_text(text)


@pytest.mark.parametrize("spoil, expected", [
    (_label("0 0.5 0.5 0.2 0.2 0.87\n"), "wide.txt line 1: 6 values, expected CLASS cx cy w h "
                                         "(a score column? label files hold none)"),
    (_label("0 0.5 0.5 0.2\n"), "wide.txt line 1: expected CLASS cx cy w h"),
    (_label("0 0.5 0.5 0.2 zero\n"), "wide.txt line 1: expected CLASS cx cy w h"),
    (_label("0 0.5 0.5 0.2 0.2\n2 0.5 0.5 0.2 0.2\n"),
     "wide.txt line 2: class 2 is not one of the 2 classes named (0..1)"),
    (_label("nan 0.5 0.5 0.2 0.2\n"), "wide.txt line 1: class nan is not one of the 2"),
    (_label("0 250 100 100 100\n"), "wide.txt line 1: coordinates outside 0..1"),
    (lambda root: (root / "data.yaml").write_text("names: car\n"),
     'data.yaml: expected "names", a list of class names'),
    (lambda root: (root / "data.yaml").write_text("nc: 3\nnames: [car, person]\n"),
     "data.yaml: nc is 3, but names has 2"),
    (lambda root: (root / "data.yaml").write_text("names: [car, person\n"),
     "data.yaml: not YAML"),
    (lambda root: (root / "labels").rename(root / "labelz"),
     "expected images/ and labels/ beside its data.yaml or classes.txt"),
    (lambda root: (root / "images" / "part").mkdir(), "images holds folders"),
    (lambda root: cv2.imwrite(str(root / "images" / "wide.jpg"), np.zeros((4, 4, 3), np.uint8)),
     "wide.jpg and wide.png share one label file, labels/wide.txt"),
    (lambda root: (root / "images" / "tall.jpg").write_bytes(b"not an image"),
     "Cannot read the size of"),
    (lambda root: (root / "data.yaml").unlink(),
     "is a folder: expected ground truth: JSONL (one frame a line), COCO or BDD100K .json, "
     "MOTChallenge or KITTI tracking .txt, a KITTI object label folder (label_2/) or a YOLO "
     "dataset folder"),
])
def test_a_malformed_dataset_is_refused_in_one_line(three, tmp_path, capsys, spoil, expected):
    spoil(three)
    pred = write_preds(tmp_path / "p.jsonl", {0: []})
    assert main(["eval", "--gt", str(three), "--pred", str(pred)]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert expected in err, err


def test_a_frame_stride_is_refused_with_a_dataset(three, capsys):
    code = main(["eval", "--gt", str(three), str(three / "images"), "--track",
                 "--frame-stride", "2", "--weights", DEMO])
    assert code == 2
    assert "dataset, whose images are matched by name" in capsys.readouterr().err


def scene(width: int, height: int, seed: int) -> np.ndarray:
    from drivevision.synthetic import SceneGenerator

    return SceneGenerator(width=width, height=height, seed=seed).frame(3).image


@pytest.mark.slow
def test_detect_yolo_labels_score_ap_1_against_the_same_run_and_a_new_one(tmp_path, capsys):
    shots, ds, jsonl = tmp_path / "shots", tmp_path / "ds", tmp_path / "d.jsonl"
    shots.mkdir()
    for i, (w, h) in enumerate([(320, 192), (256, 160), (384, 216)]):
        cv2.imwrite(str(shots / f"s{i}.png"), scene(w, h, 101 + i))  # PNG: the same pixels
    cv2.imwrite(str(shots / "blank.png"), np.full((96, 160, 3), 128, np.uint8))
    assert main(["detect", str(shots), "--yolo", str(ds), "--jsonl", str(jsonl), "--weights",
                 DEMO, "--device", "cpu", "--precision", "fp32"]) == 0  # at --conf 0.5
    capsys.readouterr()
    labelled = sorted(p.name for p in (ds / "images").iterdir())
    assert labelled == ["s0.png", "s1.png", "s2.png"]  # blank.png: no detections, no labels
    code, _, err = score(capsys, ds, jsonl)  # the JSONL has a line for blank.png too
    assert code == 2 and "(blank.png); pass --allow-unlabelled" in err
    code, metrics, err = score(capsys, ds, jsonl, "--allow-unlabelled")
    assert code == 0, err
    assert metrics["AP"] == pytest.approx(1.0) and metrics["frames"] == 3
    assert metrics["gt_boxes"] == metrics["detections"] > 0
    # the detector run anew on the dataset's images, at eval's --conf 0.05: the boxes below
    # 0.5 are false positives, but rank below every labelled one, so AP stays 1
    assert main(["eval", "--gt", str(ds), str(ds / "images"), "--weights", DEMO, "--device",
                 "cpu", "--engines", "torch", "--precision", "fp32", "--warmup", "0",
                 "--json"]) == 0
    [row] = json.loads(capsys.readouterr().out)["results"]
    assert row["AP"] == pytest.approx(1.0) and row["frames"] == 3
    assert row["detections"] > metrics["detections"]  # the low-scoring boxes were there


def test_an_input_folder_without_the_datasets_images_is_refused(three, tmp_path, capsys):
    other = tmp_path / "other"
    other.mkdir()
    cv2.imwrite(str(other / "wide.png"), np.zeros((200, 400, 3), np.uint8))
    code = main(["eval", "--gt", str(three), str(other), "--weights", DEMO, "--device", "cpu",
                 "--engines", "torch", "--precision", "fp32"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # after the engine's progress line
    assert err.endswith(f"{other} lacks 2 images of {three} (empty.png, tall.jpg): give its "
                        "images/ folder")


@pytest.mark.slow
def test_a_video_dataset_scores_against_its_video_by_frame_number(tmp_path, capsys):
    from drivevision.synthetic import write_eval_clip

    clip, ds = tmp_path / "clip.mp4", tmp_path / "ds"
    write_eval_clip(clip, tmp_path / "gt.jsonl", seeds=(101,), frames_per_seed=3)
    assert main(["detect", str(clip), "--yolo", str(ds), "--weights", DEMO, "--device", "cpu",
                 "--precision", "fp32", "-q"]) == 0
    capsys.readouterr()
    labelled = sorted(p.name for p in (ds / "images").iterdir())
    assert labelled == ["frame_000000.jpg", "frame_000001.jpg", "frame_000002.jpg"]
    (ds / "images" / "frame_000001.jpg").unlink()  # a frame the dataset leaves out
    (ds / "labels" / "frame_000001.txt").unlink()
    args = ["eval", "--gt", str(ds), str(clip), "--weights", DEMO, "--device", "cpu",
            "--engines", "torch", "--precision", "fp32", "--warmup", "0", "--json"]
    assert main(args) == 2
    assert "(frame_000001); pass --allow-unlabelled" in capsys.readouterr().err
    assert main([*args, "--allow-unlabelled"]) == 0
    [row] = json.loads(capsys.readouterr().out)["results"]
    assert row["AP"] == pytest.approx(1.0) and row["frames"] == 2
