"""Detections of frames of another size than the labelled ones (a resized copy of the
video): ``detect --jsonl`` states each frame's size, and ``eval --pred`` refuses a file whose
size differs from the one the ground truth states, where it scored AP 0 without a word, as
every box lay inside the labelled frame. Files without sizes are scored as before."""

from __future__ import annotations

import json

from drivevision.cli import main
from tests.evaluation.helpers import CAR, PERSON, write_preds, write_truth
from tests.evaluation.test_coco_truth import coco, folder_run

TRUTH = [[("car", CAR), ("person", PERSON)]] * 2  # boxes of a 320x240 frame


def score(capsys, gt, pred):
    code = main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


FOUND = [("car", 0.9, CAR), ("person", 0.8, PERSON)]


def sized(path, size: tuple[int, int] | None, boxes=FOUND):
    """``detect --jsonl`` of two frames of ``size`` (None: as earlier versions wrote it)."""
    write_preds(path, {0: boxes, 1: boxes})
    if size is not None:
        lines = [{**json.loads(line), "width": size[0], "height": size[1]}
                 for line in path.read_text().splitlines()]
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return path


def test_predictions_of_a_resized_copy_are_refused_naming_both_sizes(tmp_path, capsys):
    gt = write_truth(tmp_path / "gt.jsonl", TRUTH, width=640, height=480)
    half = [("car", 0.9, [b / 2 for b in CAR]), ("person", 0.8, [b / 2 for b in PERSON])]
    pred = sized(tmp_path / "det.jsonl", (320, 240), half)  # every box inside 640x480
    code, _, err = score(capsys, gt, pred)
    errors = [line for line in err.splitlines() if line.startswith("drivevision: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert "320x240 frames" in errors[0] and "labels 640x480" in errors[0]
    assert "run drivevision detect on the 640x480 frames" in errors[0]


def test_coco_images_of_another_size_are_named(tmp_path, capsys):
    gt = coco(tmp_path / "gt.json", {"a.png": ("car", CAR)})  # 320x240 images
    pred = folder_run(tmp_path / "det.jsonl", {"a.png": [("car", CAR)]})
    pred.write_text(json.dumps({**json.loads(pred.read_text()), "width": 640, "height": 480}))
    code, _, err = score(capsys, gt, pred)
    assert code == 2 and "640x480 frames" in err and "labels 320x240" in err
    assert "image a.png" in err


def test_the_same_size_is_scored(tmp_path, capsys):
    gt = write_truth(tmp_path / "gt.jsonl", TRUTH, width=320, height=240)
    code, metrics, err = score(capsys, gt, sized(tmp_path / "det.jsonl", (320, 240)))
    assert code == 0 and metrics["AP50"] == 1.0, err


def test_files_without_sizes_are_scored_as_before(tmp_path, capsys):
    stated = write_truth(tmp_path / "gt.jsonl", TRUTH, width=320, height=240)
    unstated = write_truth(tmp_path / "plain.jsonl", TRUTH)
    old = sized(tmp_path / "old.jsonl", None)
    new = sized(tmp_path / "new.jsonl", (320, 240))
    for gt, pred in [(stated, old), (unstated, new), (unstated, old)]:
        code, metrics, err = score(capsys, gt, pred)
        assert code == 0 and metrics["AP50"] == 1.0, (gt.name, pred.name, err)
