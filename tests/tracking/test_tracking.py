"""Trackers scored with motmetrics on generated drives with a shaking camera, and their rules:
ids survive short occlusions, low scores only extend tracks, classes never mix."""

from __future__ import annotations

import argparse

import cv2
import motmetrics as mm
import numpy as np
import pytest
import torch
import torchvision

from drivevision.detections import Detections
from drivevision.synthetic import COCO_LABEL_IDS, SceneGenerator
from drivevision.tracking import CameraMotion, create_tracker


@pytest.fixture(scope="module")
def drive():
    """8 s of a 30 fps drive whose camera sways and jitters by about 10 px (pan and tilt)."""
    return SceneGenerator(640, 360, seed=0, fps=30, shake=10).clip(240)


def as_detections(scene, rng) -> Detections:
    """The ground truth as a good detector would give it: boxes off by ~3% of their size,
    1 in 10 missed, scores between 0.6 and 1."""
    n = len(scene.boxes)
    size = np.tile(scene.boxes[:, 2:] - scene.boxes[:, :2], 2)
    boxes = scene.boxes + rng.normal(0, 0.03, (n, 4)) * size
    classes = np.array([COCO_LABEL_IDS[label] for label in scene.labels], np.int32)
    kept = rng.random(n) >= 0.1
    return Detections(boxes[kept], rng.uniform(0.6, 1.0, n)[kept], classes[kept])


def distances(truth: np.ndarray, found: np.ndarray) -> np.ndarray:
    """1 - IoU, NaN (no match) under IoU 0.5, as MOTChallenge scores. torchvision's IoU:
    motmetrics' own iou_matrix calls np.asfarray, which numpy 2 removed."""
    iou = torchvision.ops.box_iou(torch.as_tensor(truth, dtype=torch.float64),
                                  torch.as_tensor(found, dtype=torch.float64)).numpy()
    return np.where(iou >= 0.5, 1 - iou, np.nan)


def score(name: str, scenes) -> dict[str, float]:
    rng, tracker = np.random.default_rng(0), create_tracker(name)
    acc = mm.MOTAccumulator(auto_id=True)
    for scene in scenes:
        out = tracker.update(as_detections(scene, rng), scene.image)
        acc.update(scene.ids.tolist(), out.track_ids.tolist(), distances(scene.boxes, out.xyxy))
    summary = mm.metrics.create().compute(acc, metrics=["idf1", "mota", "num_switches"])
    return summary.iloc[0].to_dict()


def test_botsort_follows_objects_through_a_shaking_camera_and_bytetrack_does_worse(drive):
    botsort, bytetrack = score("botsort", drive), score("bytetrack", drive)
    assert botsort["idf1"] >= 0.9 and botsort["mota"] >= 0.85, botsort
    # without camera-motion compensation the same drive loses ids: why botsort is the default
    assert bytetrack["idf1"] <= botsort["idf1"] - 0.05, (botsort, bytetrack)
    assert bytetrack["mota"] < botsort["mota"] and bytetrack["num_switches"] > 3 * max(
        botsort["num_switches"], 1), (botsort, bytetrack)


def box_at(frame: int, x0: float = 100.0, vx: float = 4.0) -> list[float]:
    x = x0 + vx * frame
    return [x, 50.0, x + 40.0, 130.0]


def one(box, score=0.9, cls=3) -> Detections:
    return Detections([box], [score], [cls])


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
@pytest.mark.parametrize("gap, same", [(5, True), (20, True), (31, False)])
def test_an_object_hidden_for_fewer_frames_than_the_buffer_keeps_its_id(name, gap, same):
    tracker = create_tracker(name, track_buffer=25)
    ids = [tracker.update(one(box_at(f))).track_ids.tolist() for f in range(10)]
    assert ids == [[1]] * 10
    for _ in range(gap):
        assert len(tracker.update(Detections.empty())) == 0
    back = [tracker.update(one(box_at(f))).track_ids.tolist() for f in range(10 + gap, 13 + gap)]
    assert back == ([[1]] * 3 if same else [[], [2], [2]])  # a new id needs a second sighting


def test_low_scores_extend_tracks_but_never_start_them():
    tracker = create_tracker("bytetrack", track_thresh=0.6)
    assert len(tracker.update(one(box_at(0), score=0.3))) == 0
    assert len(tracker.update(one(box_at(1), score=0.3))) == 0
    assert len(tracker.update(one(box_at(2)))) == 0  # born, not yet confirmed
    for f in range(3, 5):
        assert tracker.update(one(box_at(f))).track_ids.tolist() == [1]
    for f in range(5, 8):  # blurred: the score drops, the id stays
        out = tracker.update(one(box_at(f), score=0.3))
        assert out.track_ids.tolist() == [1] and out.scores[0] == pytest.approx(0.3)
    assert len(tracker.update(one(box_at(8), score=0.05))) == 0  # under low_thresh: ignored


def test_classes_never_share_a_track_and_ids_are_never_reused():
    tracker = create_tracker("bytetrack", track_buffer=2)
    tracker.update(one(box_at(0), cls=3))
    assert tracker.update(one(box_at(1), cls=3)).track_ids.tolist() == [1]
    out = tracker.update(one(box_at(2), cls=1))  # same place, another class: not track 1
    assert out.track_ids.tolist() == []
    assert tracker.update(one(box_at(3), cls=1)).track_ids.tolist() == [2]
    for _ in range(4):
        tracker.update(Detections.empty())
    tracker.update(one(box_at(8)))
    assert tracker.update(one(box_at(9))).track_ids.tolist() == [3]
    tracker.reset()
    assert tracker.update(one(box_at(0))).track_ids.tolist() == [1]  # a new run


def test_ids_count_the_tracks_shown_without_gaps_for_one_off_boxes():
    """A box seen once (a false detection, a flicker) never becomes a track and takes no id:
    the ids shown run 1, 2, 3 ..., as many as the tracks the summary counts."""
    tracker = create_tracker("bytetrack")
    assert tracker.update(one(box_at(0))).track_ids.tolist() == [1]  # first frame: at once
    for f in range(1, 4):  # a one-off box far from the car every frame: none confirmed
        flash = one([400.0 + 60 * f, 300.0, 430.0 + 60 * f, 340.0], cls=1)
        both = Detections(np.concatenate([one(box_at(f)).xyxy, flash.xyxy]), [0.9, 0.9], [3, 1])
        assert tracker.update(both).track_ids.tolist() == [1]
    person = [300.0, 40.0, 330.0, 120.0]
    assert len(tracker.update(Detections([box_at(4), person], [0.9, 0.9], [3, 1]))) == 1
    out = tracker.update(Detections([box_at(5), person], [0.9, 0.9], [3, 1]))
    assert out.track_ids.tolist() == [1, 2]  # the second track shown is #2, not #5


def test_output_keeps_the_input_order_boxes_and_scores():
    dets = Detections([[0, 0, 10, 10], [50, 50, 70, 90], [200, 0, 230, 20]], [0.9, 0.8, 0.7],
                      [3, 1, 3])
    tracker = create_tracker("bytetrack")
    out = tracker.update(dets)
    assert out.track_ids.tolist() == [1, 2, 3]
    assert np.array_equal(out.xyxy, dets.xyxy) and np.array_equal(out.scores, dets.scores)
    assert tracker.update(dets[np.array([2, 0])]).track_ids.tolist() == [3, 1]


@pytest.mark.parametrize("dx, dy", [(0.0, 0.0), (7.5, -3.0), (-20.0, 6.0)])
def test_camera_motion_recovers_a_known_shift_whatever_the_objects_do(dx, dy):
    first = SceneGenerator(1280, 720, seed=2).frame(0).image
    second = cv2.warpAffine(first, np.float32([[1, 0, dx], [0, 1, dy]]), (1280, 720),
                            borderMode=cv2.BORDER_REFLECT_101)
    motion = CameraMotion()
    assert np.array_equal(motion.estimate(first), np.eye(2, 3))
    affine = motion.estimate(second)
    assert affine[:, 2] == pytest.approx([dx, dy], abs=1.0)
    assert affine[:, :2] == pytest.approx(np.eye(2), abs=0.01)


@pytest.mark.parametrize("name, options", [
    ("sort", {}), ("botsort", {"track_thresh": 1.5}), ("bytetrack", {"match_thresh": 0}),
    ("bytetrack", {"track_buffer": -1}), ("bytetrack", {"low_thresh": 0.7}),
])
def test_bad_tracker_names_and_options_say_what_was_expected(name, options):
    with pytest.raises(ValueError, match="Expected"):
        create_tracker(name, **options)


@pytest.mark.parametrize("name", ["botsort", "bytetrack"])
def test_update_refuses_what_is_not_detections_or_a_frame_naming_the_fix(name):
    frame = np.zeros((48, 64, 3), np.uint8)
    dets = Detections([[4, 4, 20, 30]], [0.9], [3])
    tracker = create_tracker(name)
    with pytest.raises(TypeError, match=r"Expected Detections .* but found ndarray; the order "
                                        r"is update\(detections, frame\)$"):
        tracker.update(frame, dets)
    with pytest.raises(TypeError, match="Expected Detections .* but found list$"):
        tracker.update([[4, 4, 20, 30]], frame)
    with pytest.raises(TypeError, match=r"found a path \('frame.jpg'\); read the image first"):
        tracker.update(dets, "frame.jpg")
    assert tracker.update(dets, frame).track_ids.tolist() == [1]  # nothing refused was kept


def test_camera_motion_follows_its_corners_on_and_searches_for_new_ones_only_when_needed(
        monkeypatch):
    first = SceneGenerator(1280, 720, seed=2).frame(0).image
    searches = []
    find = cv2.goodFeaturesToTrack
    monkeypatch.setattr(cv2, "goodFeaturesToTrack",
                        lambda *a, **k: searches.append(1) or find(*a, **k))
    motion, box = CameraMotion(), np.array([[500.0, 200.0, 800.0, 500.0]])
    motion.estimate(first, box)
    for step in range(1, 9):  # the camera pans 6 px right and 2 px down a frame
        shifted = cv2.warpAffine(first, np.float32([[1, 0, 6 * step], [0, 1, 2 * step]]),
                                 (1280, 720), borderMode=cv2.BORDER_REFLECT_101)
        affine = motion.estimate(shifted, box)
        assert affine[:, 2] == pytest.approx([6.0, 2.0], abs=1.0)
        corners = motion._corners[:, 0] / motion.width * 1280  # none on the object
        assert not ((corners[:, 0] > 500) & (corners[:, 0] < 800) & (corners[:, 1] > 200)
                    & (corners[:, 1] < 500)).any()
    assert len(searches) <= 2  # not once a frame


def test_the_default_tracker_is_the_one_track_runs_with_no_name():
    from drivevision.cli import tracking as options
    from drivevision.tracking import DEFAULT_TRACKER, TRACKERS

    assert DEFAULT_TRACKER == "botsort" and create_tracker().motion is not None  # botsort's
    assert options.TRACKERS == TRACKERS
    parser = argparse.ArgumentParser()
    options.add_track_args(parser)
    assert parser.parse_args(["--track"]).track == DEFAULT_TRACKER


def test_a_tracker_prints_its_settings_on_one_line_as_the_call_that_makes_it():
    from drivevision.pipeline.track_stage import TrackStage
    from drivevision.tracking import ByteTracker

    plain = create_tracker("bytetrack", track_buffer=60, low_thresh=0.05)
    assert repr(plain) == str(plain) == ("ByteTracker(track_thresh=0.5, track_buffer=60, "
                                         "match_thresh=0.8, low_thresh=0.05)")
    botsort = create_tracker("botsort")
    assert repr(botsort) == ("ByteTracker(track_thresh=0.5, track_buffer=30, match_thresh=0.8, "
                             "low_thresh=0.1, motion=CameraMotion(width=320, max_corners=120))")
    again = eval(repr(botsort), {"ByteTracker": ByteTracker, "CameraMotion": CameraMotion})
    assert repr(again) == repr(botsort)
    assert repr(TrackStage(plain)) == f"TrackStage({plain!r})"
    assert "\n" not in repr(TrackStage(botsort))
