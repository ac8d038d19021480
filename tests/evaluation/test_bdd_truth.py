"""BDD100K detection labels (det_20's ``.json``, a list of frames) as ground truth: boxes of
the labels with a ``box2d``, BDD100K's renames and ignored regions, images matched to
predictions by file name; a COCO ``.json`` is still read as COCO."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drivevision.cli import main
from drivevision.evaluation import read_truth
from tests.evaluation.helpers import CAR, PERSON, folder_run, score

TRAILER = [200, 150, 300, 230]


def box2d(box: list) -> dict:
    """BDD100K's box2d of the pixel box ``box``: x2, y2 the last pixel column and row in it."""
    return {"x1": box[0], "y1": box[1], "x2": box[2] - 1, "y2": box[3] - 1}


def label(category: str, box: list, **extra) -> dict:
    return {"id": "1", "category": category, "attributes": {"occluded": False,
                                                            "truncated": False},
            "box2d": box2d(box), **extra}


def write_bdd(path: Path, frames: list) -> Path:
    path.write_text(json.dumps(frames))
    return path


@pytest.fixture
def labels(tmp_path) -> Path:
    """b.jpg: a car, a pedestrian, a trailer (ignored as a truck) and a drivable area (a
    polygon, no box); a.jpg: labels null; c.jpg: no labels at all, and the car again."""
    return write_bdd(tmp_path / "det_val.json", [
        {"name": "b.jpg", "attributes": {"weather": "clear"}, "timestamp": 10000,
         "labels": [label("car", CAR), label("pedestrian", PERSON),
                    label("trailer", TRAILER),
                    {"id": "9", "category": "drivable area", "poly2d": [
                        {"vertices": [[0, 0], [5, 0], [5, 5]], "types": "LLL",
                         "closed": True}]}]},
        {"name": "a.jpg", "labels": None},
        {"name": "c.jpg"},
        {"name": "d.jpg", "labels": [label("car", CAR)]}])


def test_bdd_labels_read_to_pixel_boxes_per_image(labels):
    truth = read_truth(labels)
    assert truth.file_names == {0: "a.jpg", 1: "b.jpg", 2: "c.jpg", 3: "d.jpg"}
    assert truth.classes == ("car", "pedestrian", "truck")
    a, b, c, d = (truth.frames[f] for f in range(4))
    assert len(a) == len(c) == 0
    assert b.labels == ("car", "pedestrian", "truck")
    np.testing.assert_allclose(b.boxes, [CAR, PERSON, TRAILER])
    assert b.ignore.tolist() == [False, False, True]
    assert d.labels == ("car",) and truth.sizes == {}


def test_the_2018_names_and_crowds_are_read_as_bdd100k_reads_them(tmp_path):
    # bdd100k_labels_images_val.json (2018): person, bike, motor; a crowd is an ignored region
    path = write_bdd(tmp_path / "labels.json", [{"name": "x.jpg", "labels": [
        label("person", PERSON), label("bike", CAR), label("motor", TRAILER),
        label("person", CAR, attributes={"crowd": True})]}])
    [frame] = read_truth(path).frames.values()
    assert frame.labels == ("pedestrian", "bicycle", "motorcycle", "pedestrian")
    assert frame.ignore.tolist() == [False, False, False, True]


def test_a_scalabel_dataset_of_frames_is_read_the_same(labels, tmp_path):
    frames = json.loads(labels.read_text())
    dataset = tmp_path / "scalabel.json"
    dataset.write_text(json.dumps({"frames": frames, "config": {"categories": []}}))
    ours, theirs = read_truth(labels), read_truth(dataset)
    assert ours.file_names == theirs.file_names and ours.classes == theirs.classes
    for f, fb in ours.frames.items():
        np.testing.assert_array_equal(fb.boxes, theirs.frames[f].boxes)


def test_a_folder_run_is_scored_against_the_frames_of_its_images(labels, tmp_path, capsys):
    # the run's own order and frame numbers; a truck on the trailer is neither hit nor miss
    every = {"d.jpg": [("car", 0.9, CAR)], "c.jpg": [], "a.jpg": [],
             "b.jpg": [("truck", 0.95, TRAILER), ("car", 0.9, CAR), ("person", 0.8, PERSON)]}
    pred = folder_run(tmp_path / "det.jsonl", every)
    code, metrics, err = score(capsys, labels, pred, "--class-map", "pedestrian=person")
    assert code == 0, err
    assert metrics["AP"] == pytest.approx(1.0) and metrics["frames"] == 4
    assert metrics["per_class"]["truck"] is None  # ignored trucks only: nothing to find
    assert (metrics["per_class"]["car"], metrics["per_class"]["pedestrian"]) == pytest.approx(
        (1.0, 1.0))
    # d.jpg's car missed: found 1 of 2 cars at the top score, precision 1 up to recall 0.5
    # (51 of COCO's 101 recall points), 0 past it
    pred = folder_run(tmp_path / "det.jsonl", {**every, "d.jpg": []})
    code, metrics, err = score(capsys, labels, pred, "--class-map", "pedestrian=person")
    assert code == 0, err
    assert metrics["per_class"]["car"] == pytest.approx(51 / 101)
    assert metrics["AP"] == pytest.approx((51 / 101 + 1) / 2)
    # without the map, the person boxes are offered as the pedestrians
    code, metrics, err = score(capsys, labels, pred)
    assert code == 0 and metrics["per_class"]["pedestrian"] == 0.0
    assert '--class-map "pedestrian=person"' in err


def test_images_the_labels_lack_are_refused_or_left_out(labels, tmp_path, capsys):
    pred = folder_run(tmp_path / "det.jsonl", {"b.jpg": [("car", 0.9, CAR)],
                                               "zz.jpg": [("car", 0.9, CAR)]})
    code, _, err = score(capsys, labels, pred)
    assert code == 2 and err.strip().endswith(
        f"{pred} has 1 image that {labels} does not label (zz.jpg); pass --allow-unlabelled "
        "to leave them out")
    code, metrics, err = score(capsys, labels, pred, "--allow-unlabelled")
    assert code == 0 and metrics["frames"] == 1, err
    pred = folder_run(tmp_path / "other.jsonl", {"zz.jpg": [("car", 0.9, CAR)]})
    code, _, err = score(capsys, labels, pred, "--allow-unlabelled")
    assert code == 2 and f"{pred} has no image of {labels}" in err


def _frames(frames):
    return lambda path: write_bdd(path, frames)


@pytest.mark.parametrize("write, expected", [
    (_frames([{"name": "b.jpg", "labels": [label("car", CAR, score=0.9)]}]),
     "frame 0 (b.jpg) label 0: has a \"score\": these are a detector's results, not ground "
     "truth labels"),
    (_frames([{"name": "a.jpg", "labels": []},
              {"name": "b.jpg", "labels": [label("car", CAR), label("car", [110, 10, 10, 110])]}]),
     'frame 1 (b.jpg) label 1: box2d {"x1": 110, "y1": 10, "x2": 9, "y2": 109} has x2 < x1'),
    (_frames([{"name": "b.jpg", "labels": [{"category": "car", "box2d": {"x1": 1, "y1": 2}}]}]),
     'frame 0 (b.jpg) label 0: expected "box2d" with numbers x1, y1, x2, y2, but got '
     '{"x1": 1, "y1": 2}'),
    (_frames([{"name": "b.jpg", "labels": [{"box2d": box2d(CAR)}]}]),
     'frame 0 (b.jpg) label 0: expected a "category", a class name, but got null'),
    (_frames([{"labels": [label("car", CAR)]}]),
     'frame 0: expected an object with a "name", its image\'s file name, but got'),
    (_frames([{"name": "b.jpg", "labels": {"car": CAR}}]),
     'frame 0 (b.jpg): expected "labels", a list of objects, but got'),
    (_frames([{"name": "b.jpg", "labels": [label("car", CAR)]}, {"name": "b.jpg"}]),
     "frame 1 (b.jpg): b.jpg again (frame 0): expected each image once"),
    (_frames([{"image_id": 1, "category_id": 3, "bbox": [1, 2, 3, 4], "score": 0.9}]),
     "frame 0: COCO results (image_id, category_id, bbox, score), a detector's output, not "
     "ground truth: are --gt and --pred swapped?"),
    (_frames([]), "holds no frames: expected BDD100K labels"),
    (lambda path: path.write_text('{"frames": {"b.jpg": []}}'), ": expected BDD100K labels, a list "
     "of frames"),
])
def test_malformed_labels_are_refused_naming_the_file_and_frame(tmp_path, capsys, write,
                                                                expected):
    path = tmp_path / "labels.json"
    write(path)
    pred = folder_run(tmp_path / "det.jsonl", {"b.jpg": [("car", 0.9, CAR)]})
    assert main(["eval", "--gt", str(path), "--pred", str(pred)]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert err.startswith(f"drivevision: error: {path}"), err
    assert expected in err, err


def test_coco_results_against_bdd_labels_are_refused(labels, tmp_path, capsys):
    # COCO results name COCO image ids, which BDD100K frames have none of
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 3, "score": 0.9,
                                    "bbox": [10, 10, 100, 100]}]))
    code, _, err = score(capsys, labels, results)
    assert code == 2 and err.strip().endswith(
        f"{results} holds COCO results (a list of image_id, category_id, bbox [x, y, w, h] "
        f"and score), whose ids are those of a COCO ground truth: give that .json as --gt "
        f"(not {labels})")
