"""KITTI tracking labels (``label_02/0000.txt``) as ground truth: classes by name, track ids,
DontCare regions ignored for every class."""

from __future__ import annotations

import json

import pytest

from drivevision.cli import main
from tests.evaluation.helpers import CAR, PERSON

DONT_CARE = [250, 10, 300, 60]
CYCLIST = [120, 130, 160, 200]


def kitti_line(frame, track, kind, box):
    box = " ".join(f"{v:.2f}" for v in box)
    return f"{frame} {track} {kind} 0 0 -1.57 {box} 1.5 1.6 3.9 1.0 1.8 20.0 0.01\n"


@pytest.fixture
def labels(tmp_path):
    """Frame 0: a car and a pedestrian; frame 1: nothing; frame 2: the car, a cyclist and a
    DontCare region, as the KITTI tracking benchmark writes them."""
    path = tmp_path / "0000.txt"
    path.write_text(kitti_line(0, 0, "Car", CAR) + kitti_line(0, 1, "Pedestrian", PERSON)
                    + kitti_line(2, 0, "Car", CAR) + kitti_line(2, 2, "Cyclist", CYCLIST)
                    + kitti_line(2, -1, "DontCare", DONT_CARE))
    return path


def tracked(path, frames):
    with open(path, "w") as f:
        for frame, dets in frames.items():
            f.write(json.dumps({"frame": frame, "detections": [
                {"class_name": n, "score": s, "box": b, "track_id": t} for n, s, b, t in dets]})
                + "\n")
    return path


def test_kitti_labels_are_scored_by_class_with_tracks_and_dont_care_ignored(
        labels, tmp_path, capsys):
    # every object found with its track; the best-scoring box lies on the DontCare region:
    # neither a hit nor a false positive, so AP stays 1
    pred = tracked(tmp_path / "det.jsonl", {
        0: [("car", 0.9, CAR, 1), ("person", 0.8, PERSON, 2)], 1: [],
        2: [("car", 0.95, DONT_CARE, 7), ("car", 0.9, CAR, 1), ("cyclist", 0.7, CYCLIST, 3)]})
    assert main(["eval", "--gt", str(labels), "--pred", str(pred), "--json",
                 "--class-map", "pedestrian=person"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["per_class"] == pytest.approx({"car": 1.0, "pedestrian": 1.0,
                                                  "cyclist": 1.0})
    assert (metrics["frames"], metrics["MOTA"], metrics["IDF1"]) == (3, 1.0, 1.0)


def test_a_kitti_line_short_of_columns_is_refused_in_one_line(labels, tmp_path, capsys):
    labels.write_text(labels.read_text() + "3 0 Car 0 0 -1.57 10 10 110\n")
    pred = tracked(tmp_path / "det.jsonl", {0: []})
    assert main(["eval", "--gt", str(labels), "--pred", str(pred)]) == 2
    assert capsys.readouterr().err.strip().splitlines() == [
        f"drivevision: error: {labels} line 6: expected a KITTI tracking label of 17 values, "
        "frame track_id type truncated occluded alpha left top right bottom h w l x y z "
        "rotation_y (frame >= 0), but got 3 0 Car 0 0 -1.57 10 10 110"]


def test_a_motchallenge_file_spaced_after_its_commas_is_still_read_as_one(tmp_path, capsys):
    # ten columns, as MOT16 writes them: "1, 1, 10, ..." split at spaces is no KITTI line
    gt = tmp_path / "gt.txt"
    gt.write_text("1, 1, 10, 10, 100, 100, 1, -1, -1, -1\n")
    pred = tracked(tmp_path / "det.jsonl", {0: [("person", 0.9, CAR, 1)]})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["AP"] == pytest.approx(1.0)
