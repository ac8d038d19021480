"""The run summary's tracks line: how long a track lasted, told in the frames detected and in
the input's frames and seconds, which differ once only every K-th frame is detected."""

from __future__ import annotations

import numpy as np

from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.pipeline.stats import RunSummary, StageStats, TrackStats

CAR = 2


def tracked(*ids: int) -> Detections:
    n = len(ids)
    return Detections(np.tile([10, 10, 50, 50], (n, 1)), np.full(n, 0.9), np.full(n, CAR),
                      np.array(ids))


def summary(tracks: TrackStats, *, stride: int = 1, fps: float | None = 10.0,
            dropped: int = 0) -> str:
    run = RunSummary(9, 1.0, {"car": 9}, StageStats(warmup=0), [], dropped=dropped,
                     tracks=tracks.per_class(["bg", "person", "car"]),
                     median_track_length=tracks.median_length(),
                     median_track_span=tracks.median_span(), frame_stride=stride,
                     input_fps=fps)
    [line] = [line for line in run.format().splitlines() if "tracks" in line]
    return line


def strided_tracks(stride: int) -> TrackStats:
    """Track 1 in the first three detected frames, 2 in the last two, 3 in all five."""
    stats = TrackStats()
    for k, ids in enumerate([(1, 3), (1, 3), (1, 3), (2, 3), (2, 3)]):
        stats.add(Frame(k * stride, 1000.0 * k * stride / 10, np.zeros((1, 1, 3), np.uint8), 0.0),
                  tracked(*ids))
    return stats


def test_with_a_frame_stride_the_length_is_in_detected_frames_and_in_the_inputs():
    # detected frames 0, 5, 10, 15, 20 of a 10 fps video: track 1 from 0 to 10 (3 detected
    # frames, 15 of the input with the 5 its last one stands for), 2 from 15 to 20, 3 from 0
    # to 20; the medians: 3 detected frames, 15 frames of the input, 1.5 s
    line = summary(strided_tracks(5), stride=5)
    assert line == ("3 tracks: 3 car; median length 3 detected frames, over 15 frames of the "
                    "input (1.50 s)")


def test_every_frame_detected_gives_the_length_in_frames_and_seconds():
    assert summary(strided_tracks(1)).endswith("; median length 3 frames (0.30 s)")
    assert summary(strided_tracks(1), fps=None).endswith("; median length 3 frames")


def test_frames_dropped_by_a_live_source_are_counted_like_a_stride():
    # a camera that dropped frames 1 and 2 (and 4, 6): indices 0, 3, 5, 7, 9 detected
    stats = TrackStats()
    for index, ids in zip((0, 3, 5, 7, 9), [(1,), (1,), (1,), (2,), (2,)]):
        stats.add(Frame(index, 100.0 * index, np.zeros((1, 1, 3), np.uint8), 0.0), tracked(*ids))
    # track 1 from frame 0 to 5, track 2 from 7 to 9: median 2.5 detected, span 3.5 + 1
    assert summary(stats, dropped=4).endswith(
        "; median length 2.5 detected frames, over 4.5 frames of the input (0.45 s)")


def test_tracks_of_two_sources_with_one_id_are_two_tracks():
    stats = TrackStats()
    for source in (0, 1):
        stats.add(Frame(0, 0.0, np.zeros((1, 1, 3), np.uint8), 0.0, source_id=source),
                  tracked(1))
    assert summary(stats).startswith("2 tracks: 2 car; median length 1 frame (0.10 s)")
