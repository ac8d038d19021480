"""One frame's way through the pipeline: its ``Result`` and the steps that fill it in.

Reading, the detector call, the per-source stages, drawing and writing each add their
milliseconds to ``Result.timings``; the pipeline's threads (``drivevision.pipeline.pipeline``)
call these steps and hold every piece of thread state themselves.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from drivevision.detections import Detections
from drivevision.errors import StageError
from drivevision.io.frames import Frame, Source
from drivevision.io.sinks import Sink
from drivevision.labels import counted


@dataclass
class Result:
    """One frame's outcome; ``timings`` holds ms per stage (decode ... write) for it.

    ``rendered_at`` is ``time.monotonic()`` when the frame was rendered (or passed the render
    stage undrawn): its capture-to-render latency is ``rendered_at - frame.captured_at``.
    ``trails`` (track id -> float (K, 2) centres, ``drivevision.render.Trails``) is set by a
    tracking stage and drawn with the boxes. Printed, it shows the trails as their count and
    leaves the annotated copy out.
    """

    frame: Frame
    detections: Detections
    timings: dict[str, float] = field(default_factory=dict)
    annotated: np.ndarray | None = field(default=None, repr=False)  # pixels: not printed
    rendered_at: float | None = None
    trails: dict[int, np.ndarray] | None = None

    def __repr__(self) -> str:  # the pixels and the trails' points left out, as in Frame's
        trails = None if self.trails is None else f"<{counted(len(self.trails), 'track')}>"
        return (f"Result(frame={self.frame!r}, detections={self.detections!r}, "
                f"timings={self.timings!r}, rendered_at={self.rendered_at!r}, trails={trails})")

    @property
    def latency_ms(self) -> float | None:
        """Milliseconds from capture to render, or None before the render stage."""
        if self.rendered_at is None:
            return None
        return (self.rendered_at - self.frame.captured_at) * 1000.0


Stage = Callable[[Result], Result]
"""A per-source stage after inference: takes a source's results one by one, in frame order,
on that source's own thread, and returns the result (changed or new). Stateful stages (a
tracker) belong to one source. Its time is reported under its ``name`` attribute, else its
``__name__``."""


def read_timing(source: Source, start: float) -> dict[str, float]:
    """How long reading a frame took since ``start`` (``time.perf_counter()``): "decode" for
    files; "wait" for live sources, whose reads wait for the camera, the stream or the
    clock (a camera's or stream's decode is in it; a paced file's is "decode", apart)."""
    ms = (time.perf_counter() - start) * 1000.0
    if not source.live:
        return {"decode": ms}
    decode = source.decode_ms
    return {"wait": ms} if decode is None else {"decode": decode,
                                                 "wait": max(ms - decode, 0.0)}


def detect_batch(detector, batch: list[tuple]) -> list[Result]:
    """Run ``detector`` once on ``(frame, read timing)`` pairs; each result gets its share
    of the batch's stage times."""
    detections, ms = detector.infer_timed([frame.image for frame, _ in batch])
    share = {k: v / len(batch) for k, v in _group(ms).items()}
    return [Result(frame, det, {**read_ms, **share})
            for (frame, read_ms), det in zip(batch, detections)]


def run_stage(stage: Stage, result: Result, names: str) -> Result:
    """``stage(result)``, timed under the stage's name; a failure names the stage."""
    name = getattr(stage, "name", None) or getattr(stage, "__name__", type(stage).__name__)
    start = time.perf_counter()
    try:
        result = stage(result)
    except Exception as e:
        raise StageError(names.format(name), e) from e
    if not isinstance(result, Result):
        raise StageError(names.format(name), TypeError(
            f"Expected the stage to return a Result, but got {type(result).__name__}"))
    result.timings[name] = (time.perf_counter() - start) * 1000.0
    return result


def draw_result(result: Result, render: Callable[..., np.ndarray] | None) -> None:
    """Draw the boxes (when ``render`` is given) and stamp the render time."""
    if render is not None:
        start = time.perf_counter()
        extra = {} if result.trails is None else {"trails": result.trails}
        result.annotated = render(result.frame.image, result.detections, **extra)
        result.timings["render"] = (time.perf_counter() - start) * 1000.0
    result.rendered_at = time.monotonic()


def write_result(result: Result, sinks: Sequence[Sink]) -> None:
    if sinks:
        start = time.perf_counter()
        for sink in sinks:
            sink.write(result.frame, result.detections, result.annotated)
        result.timings["write"] = (time.perf_counter() - start) * 1000.0


def _group(ms: dict[str, float]) -> dict[str, float]:
    """Detector stage times as the pipeline reports them (dense parts = inference)."""
    grouped = {"preprocess": ms.get("preprocess", 0.0), "postprocess": ms.get("postprocess", 0.0)}
    grouped["inference"] = sum(v for k, v in ms.items() if k not in grouped)
    return grouped
