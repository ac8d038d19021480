"""capture -> infer -> render -> write, one thread each, joined by bounded queues.

Files block and keep every frame in order; live sources keep only the newest frame and
count the ones dropped. Every stage sends its end marker in ``finally``; every blocking
put/get wakes on the abort event; the first error of any stage aborts all of them and is
raised to the caller as a ``StageError`` naming the stage.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from drivevision.config import PipelineConfig
from drivevision.detections import Detections
from drivevision.errors import StageError
from drivevision.render import annotate
from drivevision.sinks import Sink
from drivevision.sources import Frame, Source

_END = object()
_POLL_S = 0.05


class _Aborted(Exception):
    """Raised inside a stage when another stage failed or the run was aborted."""


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


class Pipeline:
    """Runs ``detector`` over ``source`` into ``sinks`` on four threads.

    Iterate ``results()`` (or call ``run()``) on the caller's thread; Ctrl-C there stops
    reading the source and lets what was already detected reach the sinks; a second
    Ctrl-C aborts. ``render`` draws boxes when a sink or ``draw=True`` needs them.
    """

    def __init__(self, source: Source, detector, sinks: Sequence[Sink] = (), *,
                 config: PipelineConfig = PipelineConfig(), draw: bool = False,
                 render: Callable[..., np.ndarray] | None = None):
        self.source, self.detector, self.sinks, self.config = source, detector, sinks, config
        self.draw = draw or any(s.needs_annotated for s in sinks)
        self.render = render or (lambda image, det: annotate(image, det, detector.names))
        size = 1 if config.live else config.queue_size
        self._queues = [queue.Queue(maxsize=size) for _ in range(4)]
        self._abort = threading.Event()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self.error: StageError | None = None
        self.dropped = 0
        self.interrupted = False

    # -- control ---------------------------------------------------------------------------

    def start(self) -> None:
        stages = [("capture", self._capture), ("infer", self._infer),
                  ("render", self._render), ("write", self._write)]
        for i, (name, body) in enumerate(stages):
            thread = threading.Thread(target=self._stage, args=(name, body, i),
                                      name=f"drivevision-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop reading the source; frames already detected still reach the sinks."""
        self._stop.set()
        _interrupt(self.source)

    def abort(self) -> None:
        """Stop every stage now."""
        self._stop.set()
        self._abort.set()
        _interrupt(self.source)

    def join(self, timeout: float = 10.0) -> bool:
        """Wait for every stage thread; True when all have ended."""
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def results(self) -> Iterator[Result]:
        """Results in source order; raises ``StageError`` if a stage failed."""
        if not self._threads:
            self.start()
        out = self._queues[3]
        try:
            while True:
                try:
                    item = self._get(out)
                except _Aborted:
                    break
                except KeyboardInterrupt:
                    self._interrupt()
                    continue
                if item is _END:
                    break
                yield item
        finally:
            if not self._abort.is_set() and any(t.is_alive() for t in self._threads[:3]):
                self.abort()  # the caller stopped iterating early
            self.join()
        if self.error is not None:
            raise self.error

    def run(self, on_result: Callable[[Result], None] | None = None) -> int:
        """Run to the end; returns the number of frames written."""
        count = 0
        for result in self.results():
            count += 1
            if on_result is not None:
                on_result(result)
        return count

    def _interrupt(self) -> None:
        if self._stop.is_set():
            self.abort()
        self.interrupted = True
        self.stop()

    # -- queue helpers ---------------------------------------------------------------------

    def _put(self, i: int, item) -> None:
        q = self._queues[i]
        while not self._abort.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise _Aborted

    def _put_newest(self, i: int, item) -> None:
        """Live policy: replace whatever waits in the queue with ``item``."""
        q = self._queues[i]
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

    def _get(self, q: queue.Queue):
        while not self._abort.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        raise _Aborted

    # -- stages ----------------------------------------------------------------------------

    def _stage(self, name: str, body: Callable[[], None], out_index: int) -> None:
        try:
            body()
        except _Aborted:
            pass
        except BaseException as e:  # noqa: BLE001 - every failure must reach the caller
            with self._lock:
                if self.error is None:
                    self.error = StageError(name, e)
                    self.error.__cause__ = e
            self.abort()
        finally:
            try:
                self._put(out_index, _END)
            except _Aborted:
                pass

    def _capture(self) -> None:
        frames = iter(self.source)
        while not self._stop.is_set():
            start = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            decode_ms = (time.perf_counter() - start) * 1000.0
            if self.config.live:
                self._put_newest(0, (frame, decode_ms))
            else:
                self._put(0, (frame, decode_ms))

    def _infer(self) -> None:
        ended = False
        while not ended and not self._stop.is_set():
            batch, ended = self._next_batch()
            if not batch:
                return
            images = [frame.image for frame, _ in batch]
            detections, ms = self.detector.infer_timed(images)
            share = {k: v / len(batch) for k, v in _group(ms).items()}
            for (frame, decode_ms), det in zip(batch, detections):
                self._put(1, Result(frame, det, {"decode": decode_ms, **share}))

    def _next_batch(self) -> tuple[list, bool]:
        batch = []
        while len(batch) < self.config.batch_size:
            if batch and self.config.live and self._queues[0].empty():
                break  # live: never wait for a full batch
            item = self._get(self._queues[0])
            if item is _END:
                return batch, True
            batch.append(item)
        return batch, False

    def _render(self) -> None:
        while (result := self._get(self._queues[1])) is not _END:
            if self.draw:
                start = time.perf_counter()
                result.annotated = self.render(result.frame.image, result.detections)
                result.timings["render"] = (time.perf_counter() - start) * 1000.0
            result.rendered_at = time.monotonic()
            self._put(2, result)

    def _write(self) -> None:
        while (result := self._get(self._queues[2])) is not _END:
            start = time.perf_counter()
            for sink in self.sinks:
                sink.write(result.frame, result.detections, result.annotated)
            if self.sinks:
                result.timings["encode"] = (time.perf_counter() - start) * 1000.0
            self._put(3, result)


def _interrupt(source) -> None:
    """Wake a source blocked in its iterator (sources that are plain iterables have no hook)."""
    hook = getattr(source, "interrupt", None)
    if hook is not None:
        hook()


def _group(ms: dict[str, float]) -> dict[str, float]:
    """Detector stage times as the pipeline reports them (dense parts = inference)."""
    grouped = {"preprocess": ms.get("preprocess", 0.0), "postprocess": ms.get("postprocess", 0.0)}
    grouped["inference"] = sum(v for k, v in ms.items() if k not in grouped)
    return grouped
