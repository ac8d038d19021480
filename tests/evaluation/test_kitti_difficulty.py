"""KITTI object labels scored at one of KITTI's difficulty levels (--kitti-difficulty): the
objects the level leaves out, and a Van for Car or a Person_sitting for Pedestrian, are
ignored, neither missed nor false positives when found; ``all`` counts every object."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivevision.cli import main
from tests.evaluation.helpers import CAR, PERSON, write_truth

OTHER = [150, 40, 250, 140]  # 100 px tall, beside CAR


def label(kind: str, box: list, truncated: float = 0.0, occluded: int = 0) -> str:
    """A line as KITTI's label_2 files hold it."""
    corners = " ".join(f"{v:.2f}" for v in box)
    return (f"{kind} {truncated:.2f} {occluded} -1.57 {corners} "
            "1.50 1.60 3.90 1.00 1.80 20.00 0.01\n")


def labels_of(tmp_path: Path, *lines: str) -> Path:
    folder = tmp_path / "label_2"
    folder.mkdir()
    (folder / "000000.txt").write_text("".join(lines))
    return folder


def detections(tmp_path: Path, *dets: tuple) -> Path:
    """``detect`` run on the folder of 000000.png: (class, score, box) triples."""
    path = tmp_path / "det.jsonl"
    path.write_text(json.dumps({"frame": 0, "file": "000000.png", "detections": [
        {"class_name": n, "score": s, "box": b} for n, s, b in dets]}) + "\n")
    return path


def score(capsys, gt: Path, pred: Path, *options: str) -> tuple[dict, list[str]]:
    code = main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", *options])
    out, err = capsys.readouterr()
    assert code == 0, err
    metrics = json.loads(out)
    return metrics, metrics["notes"]


@pytest.mark.parametrize("options", [(), ("--kitti-difficulty", "moderate")])
def test_an_occluded_or_small_object_missed_costs_nothing_at_moderate(tmp_path, capsys,
                                                                      options):
    # a car found, one 20 px tall and one largely occluded missed; the occluded one found
    # with a higher score than the car, which is then no false positive either
    gt = labels_of(tmp_path, label("Car", CAR), label("Car", [300, 100, 340, 120]),
                   label("Car", OTHER, occluded=2))
    pred = detections(tmp_path, ("car", 0.95, OTHER), ("car", 0.9, CAR))
    metrics, notes = score(capsys, gt, pred, *options)
    car = metrics["classes"]["car"]
    assert (car["gt_boxes"], car["recall"], car["precision"]) == (1, 1.0, 1.0)
    assert (metrics["gt_boxes"], metrics["ignored_boxes"]) == (1, 2)
    assert metrics["per_class"]["car"] == pytest.approx(1.0)
    assert notes[0].startswith("KITTI difficulty moderate: 2 of 3 objects ignored (neither "
                               "missed nor false positives when found): 25 px tall or less, "
                               "occluded more than partly or truncated more than 30%")
    metrics, notes = score(capsys, gt, pred, "--kitti-difficulty", "all")
    car = metrics["classes"]["car"]
    assert (car["gt_boxes"], car["recall"]) == (3, pytest.approx(2 / 3))
    assert (metrics["gt_boxes"], metrics["ignored_boxes"]) == (3, 0)
    assert metrics["per_class"]["car"] < 0.7
    assert notes[0].startswith("KITTI difficulty all: every labelled object counts")


@pytest.mark.parametrize("level, truncated, occluded, height, counted", [
    ("easy", 0.0, 1, 100, False), ("moderate", 0.0, 1, 100, True),
    ("easy", 0.2, 0, 100, False), ("moderate", 0.2, 0, 100, True),
    ("moderate", 0.4, 0, 100, False), ("hard", 0.4, 0, 100, True),
    ("moderate", 0.0, 2, 100, False), ("hard", 0.0, 2, 100, True),
    ("hard", 0.6, 0, 100, False), ("hard", 0.0, 3, 100, False),
    ("easy", 0.0, 0, 40, False), ("easy", 0.0, 0, 41, True),
    ("moderate", 0.0, 0, 25, False), ("moderate", 0.0, 0, 26, True),
    ("all", 0.9, 3, 5, True),
])
def test_each_level_counts_the_objects_kitti_counts_at_it(tmp_path, capsys, level, truncated,
                                                          occluded, height, counted):
    gt = labels_of(tmp_path, label("Car", CAR),
                   label("Car", [150, 40, 250, 40 + height], truncated, occluded))
    pred = detections(tmp_path, ("car", 0.9, CAR))
    metrics, notes = score(capsys, gt, pred, "--kitti-difficulty", level)
    assert metrics["classes"]["car"]["gt_boxes"] == 1 + counted
    assert notes[0].startswith(f"KITTI difficulty {level}:")


@pytest.mark.parametrize("kind, neighbour, model", [
    ("Car", "Van", "car"), ("Pedestrian", "Person_sitting", "pedestrian")])
def test_a_detection_on_the_neighbouring_class_is_no_false_positive(tmp_path, capsys, kind,
                                                                    neighbour, model):
    # the Van (Person_sitting) found as a car (pedestrian) with the best score
    gt = labels_of(tmp_path, label(kind, PERSON), label(neighbour, OTHER))
    pred = detections(tmp_path, (model, 0.95, OTHER), (model, 0.9, PERSON))
    metrics, notes = score(capsys, gt, pred)
    row = metrics["classes"][model]
    assert (row["gt_boxes"], row["precision"], row["recall"]) == (1, 1.0, 1.0)
    # the neighbour once: scored as itself, not again as the other class's ignored box
    assert (metrics["gt_boxes"], metrics["ignored_boxes"]) == (2, 0)
    assert metrics["per_class"][model] == pytest.approx(1.0)
    assert f"a {model} detection on a {neighbour.lower()} is neither hit nor false " \
        "positive" in notes[0]
    metrics, _ = score(capsys, gt, pred, "--kitti-difficulty", "all")  # a false positive
    assert metrics["classes"][model]["precision"] == pytest.approx(0.5)
    assert metrics["per_class"][model] < 0.7


@pytest.mark.parametrize("name, text", [
    ("gt.jsonl", None),
    ("gt.txt", "1,1,10,10,100,100,1,1,1\n"),
])
def test_the_level_is_refused_for_other_ground_truth(tmp_path, capsys, name, text):
    gt = tmp_path / name
    if text is None:
        write_truth(gt, [[("car", CAR)]])
    else:
        gt.write_text(text)
    pred = detections(tmp_path, ("car", 0.9, CAR))
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--kitti-difficulty",
                 "moderate"]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"drivevision: error: --kitti-difficulty applies to KITTI object labels (a label_2/ "
        f"folder, a .txt an image), but {gt} is other ground truth: leave it out"]


def test_labels_whose_objects_the_level_all_ignores_are_refused(tmp_path, capsys):
    gt = labels_of(tmp_path, label("Car", [300, 100, 340, 120]), label("Car", OTHER, 0.6))
    pred = detections(tmp_path, ("car", 0.9, CAR))
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"drivevision: error: {gt}: every one of its 2 objects is ignored at KITTI difficulty "
        "moderate (too short, occluded or truncated), so there is nothing to score: "
        "--kitti-difficulty all counts them"]
    metrics, _ = score(capsys, gt, pred, "--kitti-difficulty", "all")
    assert metrics["classes"]["car"]["gt_boxes"] == 2


@pytest.mark.parametrize("level, height, counted", [
    ("moderate", 20, False), ("all", 20, True), ("moderate", 30, True),
    ("hard", 24.9, False), ("hard", 25, True), ("easy", 30, False), ("easy", 40, True),
])
def test_a_false_detection_shorter_than_the_level_costs_nothing(tmp_path, capsys, level,
                                                                 height, counted):
    # KITTI's devkit ignores a detection shorter than the level's height that finds
    # nothing: here it scores above the car found, so counted it halves P and lowers AP;
    # the bus box beside it (a class the labels lack) is left out of the matrix as well
    from drivevision.evaluation import evaluate, read_predictions, read_truth

    gt = labels_of(tmp_path, label("Car", CAR))
    short = [200, 150, 230, 150 + height]
    pred = detections(tmp_path, ("car", 0.95, short), ("car", 0.9, CAR),
                      ("bus", 0.99, [240, 150, 270, 150 + height]))
    metrics, _ = score(capsys, gt, pred, "--kitti-difficulty", level)
    car = metrics["classes"]["car"]
    assert (car["precision"], car["recall"]) == ((0.5 if counted else 1.0), 1.0)
    assert (metrics["per_class"]["car"] < 0.7) == counted
    assert (metrics["AP50"] == pytest.approx(1.0)) != counted
    result = evaluate(read_truth(gt, kitti_difficulty=level), read_predictions(pred))
    background = result.confusion_labels.index("background")
    for name in ("car", "bus"):  # a box of it on nothing
        assert result.confusion[result.confusion_labels.index(name), background] == counted

