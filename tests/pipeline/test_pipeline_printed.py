"""What a printed summary, source stats or result of the pipeline shows: counts and
shapes on one line, never an object address or a frame's pixels."""

import numpy as np
from standins import FixedDetector

from drivevision.io.sources import open_source
from drivevision.pipeline import Pipeline


def test_a_printed_summary_shows_the_stage_means_not_an_object_address():
    from drivevision.pipeline.stats import RunSummary, StageStats

    stages = StageStats(warmup=0)
    stages.add({"decode": 2.0, "inference": 10.0})
    stages.add({"decode": 4.0, "inference": 30.0})
    text = repr(RunSummary(2, 1.0, {"car": 3}, stages, []))
    assert "object at 0x" not in text
    assert "stages=StageStats(mean ms: decode=3.0, inference=20.0)" in text


def test_a_printed_source_stats_shows_its_counts_on_one_line():
    from drivevision.pipeline.stats import SourceStats

    stats = SourceStats()
    for _ in range(3):
        stats.on_capture()
    stats.on_drop()
    stats.on_result(12.0)
    text = repr(stats)
    assert text.startswith("SourceStats(captured=3, processed=1, dropped=1, input_fps=")
    assert ", detector_fps=" in text and "\n" not in text


def test_a_printed_result_shows_the_frame_image_as_its_shape_not_its_pixels(clip_path):
    with open_source(clip_path) as source:
        result = next(iter(Pipeline(source, FixedDetector(), draw=True).results()))
    assert result.annotated.shape == (96, 160, 3)
    assert repr(result.frame) == ("Frame(index=0, timestamp_ms=0.0, image=<uint8 (96, 160, 3)>, "
                                  "source_id=0, file=None)")
    text = repr(result)
    assert text.startswith(f"Result(frame={result.frame!r}, detections=Detections(xyxy=")
    assert "annotated" not in text and len(text) < 600


def test_a_printed_tracked_result_shows_its_trails_as_a_count_not_their_points():
    from drivevision.detections import Detections
    from drivevision.io.frames import Frame
    from drivevision.pipeline import Result

    frame = Frame(0, 0.0, np.zeros((96, 160, 3), np.uint8), 0.0)
    trails = {t: np.full((30, 2), 5.0 * t, np.float32) for t in range(1, 13)}
    result = Result(frame, Detections.empty(), trails=trails)
    text = repr(result)
    assert text.endswith(", trails=<12 tracks>)") and "\n" not in text and len(text) < 400
    assert repr(Result(frame, Detections.empty())).endswith(", trails=None)")
