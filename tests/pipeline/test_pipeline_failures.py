"""The threaded pipeline when a stage fails: the run stops and names the stage, and the
outputs written so far are kept under a partial name."""

import threading
import time

import pytest
from standins import ArraySource, FixedDetector, count_frames

from drivevision.config import PipelineConfig
from drivevision.errors import StageError
from drivevision.io.sinks import Sink
from drivevision.io.video_sink import VideoSink
from drivevision.pipeline import Pipeline


class BrokenSink(Sink):
    def __init__(self, path):
        super().__init__(path)

    def _write(self, frame, detections, annotated):
        if frame.index == 3:
            raise OSError("disk full")


def broken_render(image, detections):
    raise ValueError("bad colour")


@pytest.mark.parametrize("stage, make", [
    ("capture", lambda tmp: dict(source=ArraySource(50, fail_at=5))),
    ("infer", lambda tmp: dict(detector=FixedDetector(fail_on_call=4))),
    ("render", lambda tmp: dict(render=broken_render, draw=True)),
    ("write", lambda tmp: dict(sinks=[BrokenSink(tmp / "x.jsonl")])),
])
def test_a_failing_stage_stops_the_run_and_is_named(stage, make, tmp_path):
    parts = dict(source=ArraySource(10_000), detector=FixedDetector(0.001), sinks=[])
    parts.update(make(tmp_path))
    pipeline = Pipeline(parts.pop("source"), parts.pop("detector"), parts.pop("sinks"),
                        config=PipelineConfig(queue_size=2), **parts)
    start = time.monotonic()
    with pytest.raises(StageError) as info:
        pipeline.run()
    took = time.monotonic() - start
    for sink in pipeline.sinks[0]:
        sink.close(complete=False)  # the caller's to close (the stage threads are not)
    assert info.value.stage == stage
    assert took < 5
    assert not any(t.name.startswith("drivevision-") for t in threading.enumerate())


class _FailsOnceWritten(ArraySource):
    """Fails at frame ``fail_at`` only once the sink ``written`` reports a frame written (at
    most 10 s later), so that the failed run has something to keep."""

    def __init__(self, n: int, fail_at: int, written: threading.Event):
        super().__init__(n)
        self.fail_at_, self.written = fail_at, written

    def __iter__(self):
        for frame in super().__iter__():
            if frame.index == self.fail_at_:
                self.written.wait(10.0)
                raise OSError("camera unplugged")
            yield frame


class _SignallingVideoSink(VideoSink):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.written = threading.Event()

    def write(self, frame, detections, annotated):
        super().write(frame, detections, annotated)
        self.written.set()


def test_failed_run_keeps_partial_outputs_under_a_partial_name(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(StageError), _SignallingVideoSink(out, 10.0) as video:
        source = _FailsOnceWritten(40, fail_at=20, written=video.written)
        Pipeline(source, FixedDetector(), [video]).run()
    assert out.read_bytes() == b"precious"  # what the user had is not lost
    partial = tmp_path / "out.partial.mp4"
    assert partial.exists() and 0 < count_frames(partial) <= 20
