"""The summary's count of ground-truth boxes is of those scored, as each class's is; the
ignored ones (DontCare regions, MOTChallenge's flag 0 and distractors, ``ignore`` in JSONL)
are counted apart, as ``ignored_boxes`` and "(and N ignored boxes)"."""

from __future__ import annotations

import json

import pytest

from drivevision.cli import main
from tests.evaluation.helpers import CAR, PERSON, folder_run, write_preds, write_truth

DONT_CARE = [250, 150, 300, 200]


def kitti(tmp_path):
    """A car, a pedestrian and two DontCare regions in one image."""
    folder = tmp_path / "label_2"
    folder.mkdir()
    (folder / "000000.txt").write_text("".join(
        f"{kind} 0.00 0 -1.57 {' '.join(map(str, box))} 1.50 1.60 3.90 1.00 1.80 20.00 0.01\n"
        for kind, box in (("Car", CAR), ("Pedestrian", PERSON), ("DontCare", DONT_CARE),
                          ("DontCare", [0, 200, 40, 240]))))
    return folder, folder_run(tmp_path / "det.jsonl", {"000000.png": [("car", 0.9, CAR)]})


def mot(tmp_path):
    """Frame 1: a pedestrian, one flagged 0 and a static person (class 7, a distractor)."""
    gt = tmp_path / "MOT17-02" / "gt" / "gt.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text("1,1,10,10,40,100,1,1,1\n1,2,110,10,40,100,0,1,1\n1,3,210,10,40,100,1,7,1\n")
    return gt, write_preds(tmp_path / "det.jsonl", {0: [("person", 0.9, [10, 10, 50, 110])]})


def jsonl(tmp_path):
    """Two frames of a car each; the second's ignored, a person beside it scored."""
    gt = tmp_path / "gt.jsonl"
    gt.write_text(json.dumps({"frame": 0, "boxes": [CAR], "labels": ["car"]}) + "\n"
                  + json.dumps({"frame": 1, "boxes": [CAR, PERSON], "labels": ["car", "person"],
                                "ignore": [True, False]}) + "\n")
    return gt, write_preds(tmp_path / "det.jsonl", {0: [("car", 0.9, CAR)], 1: []})


def plain(tmp_path):
    """Nothing ignored: no word of ignored boxes in the summary."""
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", CAR), ("person", PERSON)]])
    return gt, write_preds(tmp_path / "det.jsonl", {0: [("car", 0.9, CAR)]})


@pytest.mark.parametrize("files, scored, ignored, line", [
    (kitti, 2, 2, "1 frame, 2 ground-truth boxes (and 2 ignored boxes), 1 detection scored."),
    (mot, 1, 2, "1 frame, 1 ground-truth box (and 2 ignored boxes), 1 detection scored."),
    (jsonl, 2, 1, "2 frames, 2 ground-truth boxes (and 1 ignored box), 1 detection scored."),
    (plain, 2, 0, "1 frame, 2 ground-truth boxes, 1 detection scored."),
], ids=["kitti DontCare", "mot flag 0 and distractor", "jsonl ignore", "none ignored"])
def test_the_total_counts_the_boxes_scored_and_the_ignored_apart(tmp_path, capsys, files,
                                                                 scored, ignored, line):
    gt, pred = files(tmp_path)
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert (metrics["gt_boxes"], metrics["ignored_boxes"]) == (scored, ignored)
    assert metrics["gt_boxes"] == sum(r["gt_boxes"] for r in metrics["classes"].values())
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 0
    assert line in capsys.readouterr().out.splitlines()
