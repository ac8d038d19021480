"""``drivevision eval`` of tracks: MOTA, IDF1, id switches, recall and HOTA, a strided
file of tracks scored on its own frames."""

from __future__ import annotations

import json

import pytest

from drivevision.cli import main
from drivevision.evaluation import evaluate, read_predictions, read_truth
from tests.evaluation.helpers import CAR, PERSON


def _mot_truth(path, frames=4):
    """Two people walking apart, frames from 1; a third box flagged 0 (ignore) in frame 1."""
    lines = [f"{f + 1},{tid},{10 + 5 * f + 100 * tid},20,40,100,1,1,1"
             for f in range(frames) for tid in (1, 2)]
    path.write_text("\n".join(lines + ["1,9,300,20,40,100,0,7,1"]) + "\n")
    return path


def _tracked(path, swap_from: int, frames=4):
    with open(path, "w") as f:
        for i in range(frames):
            dets = [{"class_name": "person", "score": 0.9, "track_id": (tid if i < swap_from
                                                                        else 3 - tid),
                     "box": [10 + 5 * i + 100 * tid, 20, 50 + 5 * i + 100 * tid, 120]}
                    for tid in (1, 2)]
            f.write(json.dumps({"frame": i, "detections": dets}) + "\n")
    return path


def test_mot_tracks_score_mota_idf1_and_switches(tmp_path, capsys):
    gt = _mot_truth(tmp_path / "gt.txt")
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "a.jsonl", 99)),
                 "--json"]) == 0
    perfect = json.loads(capsys.readouterr().out)
    assert (perfect["MOTA"], perfect["IDF1"], perfect["id_switches"]) == (1.0, 1.0, 0)
    assert perfect["AP"] == pytest.approx(1.0)
    assert (perfect["gt_boxes"], perfect["ignored_boxes"]) == (8, 1)  # the flagged 0 apart
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "b.jsonl", 2)),
                 "--json"]) == 0
    swapped = json.loads(capsys.readouterr().out)
    assert swapped["id_switches"] == 2
    assert swapped["MOTA"] == pytest.approx(1 - 2 / 8)  # 8 boxes scored, the ignored one not
    assert swapped["IDF1"] == pytest.approx(0.5)
    assert perfect["recall"] == swapped["recall"] == 1.0  # every box shown, ids aside


def test_recall_is_the_share_of_ground_truth_boxes_a_track_shows(tmp_path, capsys):
    gt = _mot_truth(tmp_path / "gt.txt")
    lines = _tracked(tmp_path / "a.jsonl", 99).read_text().splitlines()
    first = json.loads(lines[0])
    first["detections"] = first["detections"][:1]  # frame 0 shows one person of the two
    (tmp_path / "a.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    assert main(["eval", "--gt", str(gt), "--pred", str(tmp_path / "a.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recall"] == pytest.approx(7 / 8)


def test_tracks_of_a_strided_file_are_scored_on_its_frames_as_eval_frame_stride_does(
        tmp_path, capsys):
    """Tracks written at every 2nd frame: scored on frames 0 and 2, as ``eval INPUT --track
    --frame-stride 2`` scores its own (the ground truth cut to those frames); the skipped
    frames' people are not misses, and an id swap between two scored frames still counts."""
    from dataclasses import replace

    gt = _mot_truth(tmp_path / "gt.txt")
    truth = read_truth(gt)
    every_2nd = replace(truth, frames={f: fb for f, fb in truth.frames.items() if f % 2 == 0})
    for swap_from, switches in ((99, 0), (1, 2)):
        lines = _tracked(tmp_path / "a.jsonl", swap_from).read_text().splitlines()
        pred = tmp_path / "a.jsonl"
        pred.write_text("\n".join(lines[::2]) + "\n")  # frames 0 and 2
        assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
        out, err = capsys.readouterr()
        scored = json.loads(out)
        assert (scored["frames"], scored["recall"], scored["id_switches"]) == (2, 1.0, switches)
        assert "scored 2 of 4 labelled frames" in err and "--frame-stride 2?" in err
        as_eval_input = evaluate(every_2nd, read_predictions(pred)).metrics
        for key in ("MOTA", "IDF1", "HOTA", "AssA", "recall", "misses", "AP"):
            assert scored[key] == pytest.approx(as_eval_input[key]), key
    assert scored["MOTA"] == pytest.approx(1 - 2 / 4)  # 4 boxes scored, 2 switches


def test_hota_by_trackeval_splits_detection_from_association(tmp_path, capsys):
    gt = _mot_truth(tmp_path / "gt.txt")
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "a.jsonl", 99)),
                 "--json"]) == 0
    perfect = json.loads(capsys.readouterr().out)
    assert (perfect["HOTA"], perfect["DetA"], perfect["AssA"]) == pytest.approx((1, 1, 1))
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "b.jsonl", 2)),
                 "--json"]) == 0
    swapped = json.loads(capsys.readouterr().out)
    # Every box found (DetA 1); each person's id is right for 2 of its 4 frames and each
    # predicted id covers both people: association 2 / (4 + 4 - 2) for every match.
    assert swapped["DetA"] == pytest.approx(1.0)
    assert swapped["AssA"] == pytest.approx(1 / 3)
    assert swapped["HOTA"] == pytest.approx((1 / 3) ** 0.5)


def test_hota_matches_only_within_a_class(tmp_path):
    gt = tmp_path / "gt.jsonl"
    gt.write_text("".join(json.dumps({"frame": f, "boxes": [CAR, PERSON],
                                      "labels": ["car", "truck"], "track_ids": [1, 2]}) + "\n"
                          for f in (0, 1)))
    pred = tmp_path / "pred.jsonl"
    classes = [("car", "truck"), ("truck", "truck")]  # frame 1: track 5 turns truck on the car
    pred.write_text("".join(json.dumps({"frame": f, "detections": [
        {"class_name": c, "score": 0.9, "track_id": t, "box": b}
        for c, t, b in zip(classes[f], (5, 6), (CAR, PERSON))]}) + "\n" for f in (0, 1)))
    m = evaluate(read_truth(gt), read_predictions(pred)).metrics
    # 3 matches, frame 1's car missed and its "truck" a false positive: DetA 3 / 5.
    # Object 1 and track 5 share 1 of their 2 + 2 boxes (1/3), object 2 and track 6 all 2.
    assert m["DetA"] == pytest.approx(3 / 5)
    assert m["AssA"] == pytest.approx((1 / 3 + 2 * 1) / 3)
    assert m["HOTA"] == pytest.approx((3 / 5 * 7 / 9) ** 0.5)


def test_without_trackeval_hota_is_null_and_a_note_says_how_to_get_it(tmp_path, capsys,
                                                                        monkeypatch):
    import sys

    for name in ("trackeval", "trackeval.metrics", "trackeval.metrics.hota"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as when not installed
    gt = _mot_truth(tmp_path / "gt.txt")
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "a.jsonl", 99)),
                 "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["HOTA"] is None and result["MOTA"] == 1.0
    assert "pip install --no-deps trackeval" in err
