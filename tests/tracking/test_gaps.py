"""Tracking when the detector sees only some frames (a live source drops the frames a slow
detector cannot take): the frame index tells the tracker how many frames went by."""

from __future__ import annotations

import time

import numpy as np
import pytest

from drivevision.detections import Detections
from drivevision.io.frames import Frame, Source
from drivevision.labels import COCO_NAMES
from drivevision.pipeline import Pipeline
from drivevision.pipeline.result import Result
from drivevision.pipeline.track_stage import TrackStage
from drivevision.tracking import create_tracker, kalman

SPEED = 6.0  # px a frame, right; the car is 40 px wide


def car(frame: int) -> Detections:
    x = 20 + SPEED * frame
    return Detections([[x, 100, x + 40, 140]], [0.9], [3])


def test_predicting_k_frames_ahead_is_k_one_frame_steps():
    mean, cov = kalman.initiate(kalman.xyah(np.array([[10.0, 20, 50, 100], [0, 0, 8, 30]])))
    mean[:, 4:6] = [[3.0, -1.0], [0.5, 2.0]]  # moving; height steady (its noise stays put)
    stepped = (mean, cov)
    for _ in range(5):
        stepped = kalman.predict(*stepped)
    at_once = kalman.predict(mean, cov, 5)
    np.testing.assert_allclose(at_once[0], stepped[0])
    np.testing.assert_allclose(at_once[1], stepped[1], rtol=1e-12)


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_a_steady_object_keeps_its_id_over_dropped_frames(name):
    """After frames 0-5 the detector misses 6 frames: the car moved 42 px, more than its
    width, which only a prediction over the 7 frames finds again."""
    tracker = create_tracker(name)
    ids = [tracker.update(car(f), frame_index=f).track_ids.tolist() for f in (*range(6), 12, 13)]
    assert ids == [[1]] * 8


def moved(frame: int, per_frame: float) -> Detections:
    x = 20 + per_frame * frame
    return Detections([[x, 100, x + 40, 140]], [0.9], [3])


@pytest.mark.parametrize("name", ["bytetrack", "botsort"])
def test_a_new_object_is_confirmed_by_its_next_sighting_after_dropped_frames(name):
    """Seen at frames 4 and 8 only, it moved 24 px of its 40 (IoU 0.25, under the 0.3 that
    confirms a new track): three frames dropped between allow for that."""
    tracker = create_tracker(name)
    tracker.update(Detections.empty(), frame_index=0)  # a track born on the first is shown
    ids = [tracker.update(moved(f, SPEED), frame_index=f).track_ids.tolist() for f in (4, 8)]
    assert ids == [[], [1]]


def test_without_dropped_frames_a_new_track_still_needs_iou_03_to_be_confirmed():
    tracker = create_tracker("bytetrack")
    tracker.update(Detections.empty(), frame_index=0)
    ids = [tracker.update(moved(f, 4 * SPEED), frame_index=f).track_ids.tolist()
           for f in (1, 2, 3)]
    assert ids == [[], [], []]  # 24 px a frame: each sighting starts a new track


def test_track_buffer_counts_the_frames_dropped_not_the_updates():
    tracker = create_tracker("bytetrack", track_buffer=30)
    for f in range(10):
        tracker.update(car(0), frame_index=f)
    assert len(tracker.update(Detections.empty(), frame_index=45)) == 0  # 36 frames unseen
    assert tracker.update(car(0), frame_index=46).track_ids.tolist() == []  # a new track
    assert tracker.update(car(0), frame_index=47).track_ids.tolist() == [2]


@pytest.mark.parametrize("unseen, same", [(30, True), (31, False), (200, False)])
def test_a_track_unseen_for_more_than_the_buffer_is_not_matched_after_a_jump(unseen, same):
    """No update came between: the track's frames unseen are counted when the next comes."""
    tracker = create_tracker("bytetrack", track_buffer=30)
    for f in range(10):
        tracker.update(car(0), frame_index=f)
    ids = tracker.update(car(0), frame_index=10 + unseen).track_ids.tolist()
    assert ids == ([1] if same else [])  # else a new track, shown from its second sighting


def test_an_index_not_after_the_last_counts_as_the_next_frame():
    """A source opened anew (the viewer's camera after a stop) counts from 0 again."""
    tracker = create_tracker("bytetrack")
    ids = [tracker.update(car(f), frame_index=i).track_ids.tolist()
           for f, i in zip(range(6), (100, 101, 102, 0, 1, 1))]
    assert ids == [[1]] * 6


class DroppingSource(Source):
    """The frames a live source kept: ``indices``, each image's pixels holding its index."""

    def __init__(self, indices: list[int]):
        super().__init__("array://", fps=30.0, frame_count=len(indices))
        self.indices = indices

    def __iter__(self):
        for i in self.indices:
            yield Frame(i, i * 1000 / 30, np.full((240, 320, 3), i, np.uint8), time.monotonic())


class CarDetector:
    """The car of ``car``, where it is in the frame whose index the pixels hold."""

    names = COCO_NAMES

    def infer_timed(self, images):
        return [car(int(im[0, 0, 0])) for im in images], {"inference": 0.0}


def test_the_pipeline_gives_the_tracker_the_frame_index():
    stage = TrackStage(create_tracker("bytetrack"))
    pipeline = Pipeline(DroppingSource([*range(6), 12, 13]), CarDetector(), stages=[stage])
    results = list(pipeline.results())
    assert [r.frame.index for r in results] == [*range(6), 12, 13]
    assert [r.detections.track_ids.tolist() for r in results] == [[1]] * 8


@pytest.mark.parametrize("outage_s, same", [(0.4, True), (2.0, False)])
def test_a_stream_outage_counts_as_frames_gone_by_so_a_long_one_forgets_the_tracks(
        monkeypatch, outage_s, same):
    """A parked car seen on a 25 fps stream that drops out: after 0.4 s (10 frames, within
    track_buffer 30) it keeps its id; after 2 s (50 frames) its track is gone."""
    from standins import ScriptedStream

    from drivevision.io import streams
    from drivevision.pipeline.pipeline import Result

    stream = ScriptedStream([(10, 0.04, 0.0), (5, 0.04, outage_s)])
    monkeypatch.setattr(streams, "time", stream.clock)
    source = streams.StreamSource("rtsp://cam", stream.opener,
                                  streams.Reconnect(max_reconnects=1, backoff_initial=0.001))
    stage = TrackStage(create_tracker("bytetrack", track_buffer=30))
    ids = [stage(Result(frame, car(0))).detections.track_ids.tolist() for frame in source]
    assert ids[9] == [1] and ids[-1] == ([1] if same else [2])


def command_stages() -> list:
    """The tracker stage of ``--track bytetrack`` (its notes name the options)."""
    from argparse import Namespace

    from drivevision.cli.tracking import track_stages

    args = Namespace(track="bytetrack", track_thresh=None, track_buffer=None, match_thresh=None)
    return list(track_stages(args)(0))


@pytest.mark.parametrize("indices, ended", [([*range(6), 12, 13], 0), ([0, 1, 40, 80, 81], 2)])
def test_live_warns_when_the_gaps_between_detected_frames_outlast_the_track_buffer(
        capsys, indices, ended):
    """A detector too slow for the camera (or an outage) leaves more frames between two
    detected ones than --track-buffer: every track ends there, and while gaps stay that long
    no box is shown at all. The run's end says so, and which --track-buffer keeps them."""
    from argparse import Namespace

    from drivevision.cli.live import _report

    source, [stage] = DroppingSource(indices), command_stages()
    pipeline = Pipeline(source, CarDetector(), stages=[stage])
    ids = [r.detections.track_ids.tolist() for r in pipeline.results()]
    args = Namespace(output=None, jsonl=None, mot=None, quiet=True)
    assert _report(args, [source], pipeline) == 0
    warnings = capsys.readouterr().err.splitlines()
    if not ended:
        assert ids == [[1]] * len(indices) and warnings == []
        return
    # a new id after each gap, shown from the 2nd sighting (the car seen once at 40 takes none)
    assert ids == [[1], [1], [], [], [2]]
    assert warnings == [
        "drivevision: warning: array://: 2 gaps between detected frames outlasted "
        "--track-buffer 30 (up to 39 frames unseen): at each, every track ended, and its "
        "object got a new id and no box until its next detection (none at all while the gaps "
        "stay that long); --track-buffer 39 or more keeps them"]


def test_live_status_line_says_while_the_gaps_between_detections_outlast_the_track_buffer():
    """Said at the end only, a run that showed no box for an hour left its user guessing
    meanwhile: the status line says it while it lasts, and stops once the gaps are short."""
    import io
    import types

    from drivevision.cli.status import StatusLine
    from drivevision.pipeline.stats import SourceStats

    [stage] = command_stages()
    source = DroppingSource([0, 1, 40, 80, 81])
    pipeline = types.SimpleNamespace(sources=[source], stats=[SourceStats()], stages=[[stage]])
    status = StatusLine(pipeline, stream=io.StringIO())
    lines = []
    for frame in source:
        stage(Result(frame, car(frame.index)))
        lines.append(status.line())
    said = "tracks end: 38 frames between detections > --track-buffer 30"
    assert [said in line for line in lines] == [False, False, True, False, False]
    assert lines[3].endswith("tracks end: 39 frames between detections > --track-buffer 30")


def test_detect_video_notes_the_gaps_a_stride_leaves_that_outlast_the_track_buffer():
    """What the command refuses up front (a --frame-stride the --track-buffer cannot bridge),
    the API runs, but its summary says so rather than returning an output silently without
    boxes."""
    from drivevision import detect_video
    from drivevision.pipeline.track_stage import track_stages

    kept = detect_video(DroppingSource([0, 1, 2, 3]), detector=CarDetector(),
                        stages=track_stages("bytetrack", track_buffer=2))
    assert kept.notes == []
    lost = detect_video(DroppingSource([0, 5, 10, 15]), detector=CarDetector(),
                        stages=track_stages("bytetrack", track_buffer=2))
    assert len(lost.notes) == 1
    assert lost.notes[0] == (  # the keyword as typed: a Python caller has no --track-buffer
        "3 gaps between detected frames outlasted track_buffer=2 (up to 4 frames unseen): at "
        "each, every track ended, and its object got a new id and no box until its next "
        "detection (none at all while the gaps stay that long); track_buffer=4 or more keeps "
        "them")
