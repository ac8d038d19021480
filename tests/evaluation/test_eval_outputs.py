"""``drivevision eval --pred``: what it prints and writes (the JSON, the report folder),
and the warnings and notes beside the metrics."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import pytest

from drivevision.cli import main
from drivevision.evaluation import read_predictions
from tests.evaluation.helpers import CAR, PERSON, write_preds, write_truth


def test_json_has_the_coco_keys_and_per_class(files, capsys):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "per_class"} <= set(out)
    assert out["per_class"] == pytest.approx({"car": 1.0, "person": 0.0})
    assert "MOTA" not in out  # no track ids on either side


def test_report_writes_metrics_summary_and_curves(files, tmp_path, capsys):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--report",
                 str(tmp_path / "rep")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {tmp_path / 'rep'}"
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == [".drivevision-report.txt", "confusion-matrix.png", "metrics.json",
                     "pr-car.png", "pr-person.png", "summary.md"]
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["AP50"] == \
        pytest.approx(0.5)
    assert "| car |" in (tmp_path / "rep" / "summary.md").read_text()


def test_a_report_without_matplotlib_says_why_it_has_no_curves(files, tmp_path, capsys,
                                                              caplog, monkeypatch):
    gt, pred = files
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if never installed
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--report",
                 str(tmp_path / "rep")]) == 0
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [
        ".drivevision-report.txt", "metrics.json", "summary.md"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{tmp_path / 'rep'}: no precision-recall curves or confusion matrix (PNG): they "
        'need matplotlib, which comes with the eval extra: pip install -e ".[eval]" in the clone']


def test_report_with_json_says_where_it_went_on_stderr(files, tmp_path, capsys):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", "--report",
                 str(tmp_path / "rep")]) == 0
    out, err = capsys.readouterr()
    assert "AP" in json.loads(out)  # stdout stays one JSON document
    assert f"wrote {tmp_path / 'rep'}" in err.splitlines()


def test_a_file_written_without_low_scores_warns_that_ap_is_understated(files, tmp_path,
                                                                          capsys):
    gt, pred = files  # its one box scores 0.9: written with detect's default --conf 0.5
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning.startswith("drivevision: warning: AP is understated: no score in ")
    assert warning.endswith(f"write it with drivevision detect INPUT --conf 0.05 --jsonl {pred}")
    low = write_preds(tmp_path / "low.jsonl", {0: [("car", 0.9, CAR), ("car", 0.06, PERSON)],
                                               1: []})
    assert main(["eval", "--gt", str(gt), "--pred", str(low), "--json"]) == 0
    assert "understated" not in capsys.readouterr().err


def test_a_file_of_tracks_is_not_said_to_understate_ap_for_its_lack_of_low_scores(
        files, tmp_path, capsys):
    """A tracker writes only the boxes that extend a track, so a file of tracks written at
    --conf 0.05 can hold no score under 0.2."""
    gt, _ = files
    tracks = tmp_path / "tracks.jsonl"
    with open(tracks, "w") as f:
        for i in range(2):
            f.write(json.dumps({"frame": i, "timestamp_ms": 100.0 * i, "detections": [
                {"class_id": 0, "class_name": "car", "score": 0.9, "box": CAR,
                 "track_id": 1}]}) + "\n")
    assert read_predictions(str(tracks)).has_tracks  # the premise: scored as tracks
    assert main(["eval", "--gt", str(gt), "--pred", str(tracks), "--json"]) == 0
    assert "understated" not in capsys.readouterr().err


def empty_lines(tmp_path, frames: int) -> Path:
    return write_preds(tmp_path / "pred.jsonl", {f: [] for f in range(frames)})


@pytest.mark.parametrize("mode", ["json", "summary"])
def test_predictions_without_any_box_are_noted_beside_their_ap_of_0(tmp_path, capsys, mode):
    """Every line of the file without detections (the wrong file, or one written with a
    --conf no box passed): AP 0 with a note saying so, not a bare 0."""
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", CAR)] for _ in range(3)])
    pred = empty_lines(tmp_path, 3)
    json_flag = ["--json"] if mode == "json" else []
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), *json_flag]) == 0
    out, err = capsys.readouterr()
    note = (f"{pred} holds no boxes (3 lines, none with a detection), so AP is 0: the wrong "
            "file, or one written with a --conf too high for any box to pass?")
    if mode == "json":
        metrics = json.loads(out)
        assert metrics["AP"] == 0 and metrics["notes"] == [note]
        assert f"drivevision: note: {note}" in err.splitlines()
    else:
        assert f"- {note}" in out.splitlines()


@pytest.mark.parametrize("mapping, hint", [
    ("vehicle=truk", "did you mean truck?"),
    ("vehicle=tractor", "its classes: car, truck"),
])
def test_a_class_map_naming_a_class_the_file_never_has_is_noted_with_the_close_ones(
        tmp_path, capsys, mapping, hint):
    """--class-map vehicle=truk (a typo): no box becomes a vehicle, so that class scores 0
    with no word of why; a note names the class the file lacks and the close ones. (With
    INPUT it is refused against the model's classes; a file tells only those it holds.)"""
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", CAR), ("vehicle", PERSON)]],
                     width=320, height=240)
    pred = write_preds(tmp_path / "pred.jsonl", {0: [("car", 0.9, CAR),
                                                     ("truck", 0.8, PERSON)]})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--class-map", mapping,
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    model = mapping.split("=")[1]
    assert metrics["notes"][0] == (f"--class-map {mapping}: no prediction in {pred} is a "
                                   f"{model} ({hint}), so no box is scored as vehicle by it")
    assert len(metrics["notes"]) == 3  # and truck, unmapped, is left out of AP, but finds
    assert metrics["notes"][2].endswith(  # the vehicle: the map that scores it
        "but truck boxes find 1 of the 1 vehicle objects: to score them as those, "
        "--class-map \"vehicle=truck\"")


def test_a_class_map_naming_a_class_the_file_has_needs_no_note(tmp_path, capsys):
    gt = write_truth(tmp_path / "gt.jsonl", [[("vehicle", CAR)]], width=320, height=240)
    pred = write_preds(tmp_path / "pred.jsonl", {0: [("truck", 0.9, CAR)]})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--class-map",
                 "vehicle=Truck", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["notes"] == []
