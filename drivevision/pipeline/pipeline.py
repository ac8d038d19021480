"""capture -> infer -> render -> write, one thread each, joined by bounded queues.

Files block and keep every frame in order; live sources keep only the newest frame and
count the ones dropped. Every stage sends its end marker in ``finally``; every blocking
put/get wakes on the abort event; the first error of any stage aborts all of them and is
raised to the caller as a ``StageError`` naming the stage.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from drivevision.config import PipelineConfig
from drivevision.detections import Detections
from drivevision.io.frames import Frame, Source
from drivevision.io.sinks import Sink
from drivevision.pipeline.threads import END, StageThreads
from drivevision.render import annotate


@dataclass
class Result:
    """One frame's outcome; ``timings`` holds ms per stage (decode ... encode) for it.

    ``rendered_at`` is ``time.monotonic()`` when the frame was rendered (or passed the render
    stage undrawn): its capture-to-render latency is ``rendered_at - frame.captured_at``.
    """

    frame: Frame
    detections: Detections
    timings: dict[str, float] = field(default_factory=dict)
    annotated: np.ndarray | None = None
    rendered_at: float | None = None

    @property
    def latency_ms(self) -> float | None:
        """Milliseconds from capture to render, or None before the render stage."""
        if self.rendered_at is None:
            return None
        return (self.rendered_at - self.frame.captured_at) * 1000.0


class Pipeline(StageThreads):
    """Runs ``detector`` over ``source`` into ``sinks`` on four threads.

    Iterate ``results()`` (or call ``run()``) on the caller's thread; Ctrl-C there stops
    reading the source and lets what was already detected reach the sinks; a second
    Ctrl-C aborts. ``render`` draws boxes when a sink or ``draw=True`` needs them.
    """

    def __init__(self, source: Source, detector, sinks: Sequence[Sink] = (), *,
                 config: PipelineConfig = PipelineConfig(), draw: bool = False,
                 render: Callable[..., np.ndarray] | None = None):
        super().__init__([source])
        self.source, self.detector, self.sinks, self.config = source, detector, sinks, config
        self.draw = draw or any(s.needs_annotated for s in sinks)
        self.render = render or (lambda image, det: annotate(image, det, detector.names))
        size = 1 if config.live else config.queue_size
        self._queues = [queue.Queue(maxsize=size) for _ in range(4)]
        self.dropped = 0

    def start(self) -> None:
        stages = [("capture", self._capture), ("infer", self._infer),
                  ("render", self._render), ("write", self._write)]
        for q, (name, body) in zip(self._queues, stages):
            self.spawn(name, body, on_exit=lambda q=q: self.put(q, END))

    def results(self) -> Iterator[Result]:
        """Results in source order; raises ``StageError`` if a stage failed."""
        if not self._threads:
            self.start()
        return self.drain(self._queues[3], ends=1)

    def _put_newest(self, q: queue.Queue, item) -> None:
        """Live policy: replace whatever waits in the queue with ``item``."""
        while True:
            try:
                q.put_nowait(item)
                return
            except queue.Full:
                try:
                    q.get_nowait()
                    self.dropped += 1
                except queue.Empty:
                    pass

    # -- stages ----------------------------------------------------------------------------

    def _capture(self) -> None:
        frames = iter(self.source)
        while not self._stop.is_set():
            start = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            item = (frame, read_timing(self.source, start))
            if self.config.live:
                self._put_newest(self._queues[0], item)
            else:
                self.put(self._queues[0], item)

    def _infer(self) -> None:
        ended = False
        while not ended and not self._stop.is_set():
            batch, ended = self._next_batch()
            if not batch:
                return
            for result in detect_batch(self.detector, batch):
                self.put(self._queues[1], result)

    def _next_batch(self) -> tuple[list, bool]:
        batch = []
        while len(batch) < self.config.batch_size:
            if batch and self.config.live and self._queues[0].empty():
                break  # live: never wait for a full batch
            item = self.get(self._queues[0])
            if item is END:
                return batch, True
            batch.append(item)
        return batch, False

    def _render(self) -> None:
        while (result := self.get(self._queues[1])) is not END:
            draw_result(result, self.render if self.draw else None)
            self.put(self._queues[2], result)

    def _write(self) -> None:
        while (result := self.get(self._queues[2])) is not END:
            write_result(result, self.sinks)
            self.put(self._queues[3], result)


def read_timing(source: Source, start: float) -> dict[str, float]:
    """How long reading a frame took since ``start`` (``time.perf_counter()``): "decode" for
    files; "capture" for live sources, whose reads also wait for the camera or the clock."""
    return {"capture" if source.live else "decode": (time.perf_counter() - start) * 1000.0}


def detect_batch(detector, batch: list[tuple]) -> list[Result]:
    """Run ``detector`` once on ``(frame, read timing)`` pairs; each result gets its share
    of the batch's stage times."""
    detections, ms = detector.infer_timed([frame.image for frame, _ in batch])
    share = {k: v / len(batch) for k, v in _group(ms).items()}
    return [Result(frame, det, {**read_ms, **share})
            for (frame, read_ms), det in zip(batch, detections)]


def draw_result(result: Result, render: Callable[..., np.ndarray] | None) -> None:
    """Draw the boxes (when ``render`` is given) and stamp the render time."""
    if render is not None:
        start = time.perf_counter()
        result.annotated = render(result.frame.image, result.detections)
        result.timings["render"] = (time.perf_counter() - start) * 1000.0
    result.rendered_at = time.monotonic()


def write_result(result: Result, sinks: Sequence[Sink]) -> None:
    if sinks:
        start = time.perf_counter()
        for sink in sinks:
            sink.write(result.frame, result.detections, result.annotated)
        result.timings["encode"] = (time.perf_counter() - start) * 1000.0


def _group(ms: dict[str, float]) -> dict[str, float]:
    """Detector stage times as the pipeline reports them (dense parts = inference)."""
    grouped = {"preprocess": ms.get("preprocess", 0.0), "postprocess": ms.get("postprocess", 0.0)}
    grouped["inference"] = sum(v for k, v in ms.items() if k not in grouped)
    return grouped
