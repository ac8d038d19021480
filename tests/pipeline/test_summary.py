"""What a run's summary says, for runs at the edges and for a time range."""

import numpy as np
import pytest
from standins import FixedDetector

from drivevision.detections import Detections
from drivevision.pipeline.runner import detect_video
from drivevision.pipeline.stats import RunSummary, StageStats, TrackStats


def test_a_tracked_run_in_which_no_object_became_a_track_says_so():
    """The tracker ran (detections carry track ids) but confirmed no track: the summary
    counts none, with no median length, instead of failing the finished run."""
    tracks = TrackStats()
    empty = Detections.empty()
    tracks.add(0, Detections(empty.xyxy, empty.scores, empty.class_ids,
                             track_ids=np.zeros(0, np.int32)))
    assert tracks  # the run was tracked
    summary = RunSummary(5, 1.0, {}, StageStats(), [], tracks=tracks.per_class(["car"]),
                         median_track_length=tracks.median_length())
    assert "0 tracks" in summary.format().splitlines()


def test_detect_video_takes_a_time_range_and_its_summary_names_it(tmp_path, clip_path):
    jsonl = tmp_path / "d.jsonl"
    summary = detect_video(clip_path, jsonl=jsonl, detector=FixedDetector(0.001), start=0.3,
                           end=0.9, frame_stride=2)  # 12 frames at 10 fps: frames 3-8
    assert [int(line.split(",")[0].split(":")[1]) for line in
            jsonl.read_text().splitlines()] == [4, 6, 8]
    assert summary.span == (3, 8) and summary.frames == 3 and summary.read == 6
    assert summary.format().startswith(
        "frames 3-8 of the input (0:00.3 to 0:00.9), every 2nd detected: 3 frames in ")


def test_detect_video_refuses_a_start_past_the_end_before_the_model_loads(clip_path,
                                                                        monkeypatch):
    monkeypatch.setattr("drivevision.detector.Detector.from_config",
                        lambda *a, **k: pytest.fail("the model loaded"))
    with pytest.raises(ValueError, match=r"The start, 0:05, is at or past the end of .*clip"
                                         r"\.mp4, which lasts 0:01\.2"):
        detect_video(clip_path, start=5.0)
