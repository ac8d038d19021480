"""The one pipeline: N sources -> batcher -> detector -> per-source stages -> render -> sinks.

One capture thread per source reads frames under that source's policy: a file keeps every
frame in order and its reader waits when ``queue_size`` frames wait; a live source keeps
only its newest frame and counts the ones it replaced. The ``infer`` thread batches the
waiting frames of every source into one detector call as soon as each running source has
given its share, or ``batch_timeout`` after the first one came for live sources (as
DeepStream's stream muxer does). Each source then owns two threads: ``render`` runs its
per-source stages (a tracker, say) in frame order and draws the boxes, ``write`` feeds its
sinks. A single source is the ordinary case of the general one.

Every stage sends its end marker in ``finally``; every blocking put/get wakes on the abort
event; the first error of any stage aborts all of them and is raised to the caller as a
``StageError`` naming the stage. SIGINT/SIGTERM while ``results()`` runs on the main thread
are stop requests (``drivevision.pipeline.signals``).
"""

from __future__ import annotations

import os
import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from drivevision.config import PipelineConfig
from drivevision.detections import Detections
from drivevision.errors import StageError
from drivevision.io.frames import Frame, Source
from drivevision.io.sinks import Sink
from drivevision.pipeline.stats import SourceStats
from drivevision.pipeline.threads import END, POLL_S, Aborted, StageThreads, release_openmp_workers
from drivevision.render import annotate


@dataclass
class Result:
    """One frame's outcome; ``timings`` holds ms per stage (decode ... encode) for it.

    ``rendered_at`` is ``time.monotonic()`` when the frame was rendered (or passed the render
    stage undrawn): its capture-to-render latency is ``rendered_at - frame.captured_at``.
    ``trails`` (track id -> float (K, 2) centres, ``drivevision.render.Trails``) is set by a
    tracking stage and drawn with the boxes.
    """

    frame: Frame
    detections: Detections
    timings: dict[str, float] = field(default_factory=dict)
    annotated: np.ndarray | None = field(default=None, repr=False)  # pixels: not printed
    rendered_at: float | None = None
    trails: dict[int, np.ndarray] | None = None

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


class Pipeline(StageThreads):
    """Runs ``detector`` over one or more sources into per-source stages and sinks.

    Args:
        sources: a ``Source`` or a sequence of them; frames get ``source_id`` = position.
        detector: anything with ``names`` and ``infer_timed(list of (H, W, 3) uint8 BGR)``.
        sinks: for one ``Source``, its sinks; for a sequence, one sequence per source (or
            nothing: no outputs).
        config: frame policy, batch size, queue size, batch timeout (``PipelineConfig``).
        stages: per-source ``Stage`` chains, given like ``sinks``, or a function of the
            source's position that makes its chain (so each source gets its own tracker).
        draw / render: frames are drawn (``render(image, detections) -> image``, default
            ``annotate``; called with ``trails=`` too when a stage set ``Result.trails``)
            when ``draw`` is set or one of the source's sinks needs them.

    Iterate ``results()`` (or call ``run()``) on the caller's thread: every source's results,
    each source's in order. ``stop()`` ends reading (what was detected still reaches the
    sinks), ``abort()`` ends everything now. ``stats[i]`` counts source ``i``. Leaving
    ``with Pipeline(...) as pipeline:`` (or ``close()``) aborts and joins every thread.
    """

    def __init__(self, sources: Source | Sequence[Source], detector,
                 sinks: Sequence = (), *, config: PipelineConfig = PipelineConfig(),
                 stages: Sequence | Callable[[int], Sequence[Stage]] = (), draw: bool = False,
                 render: Callable[..., np.ndarray] | None = None):
        single = isinstance(sources, Source)
        sources = [sources] if single else _sources(sources)
        if not sources:
            raise ValueError("Expected at least one source")
        check_detector(detector)
        super().__init__(sources)
        n = len(sources)
        self.sources, self.detector, self.config = sources, detector, config
        self.sinks = _per_source("sinks", sinks, n, single)
        self.stages = ([list(stages(i)) for i in range(n)] if callable(stages)
                       else _per_source("stages", stages, n, single))
        for chain in self.stages:
            check_stages(chain)
        self.draw = [draw or any(s.needs_annotated for s in ss) for ss in self.sinks]
        self.render = render or (lambda image, det, **kw: annotate(image, det, detector.names,
                                                                   **kw))
        self.stats = [SourceStats() for _ in sources]
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # frames per detector call, newest
        self.newest = [_keeps_newest(s, config.frames) for s in sources]
        room = max(config.queue_size, config.batch_size)
        self._room = [1 if newest else room for newest in self.newest]
        self._share = [min(r, config.batch_size) for r in self._room]
        self._waiting: list[deque] = [deque() for _ in sources]
        self._ended = [False] * n
        self._cond = threading.Condition()
        self._names = ["{}" if n == 1 else "{}[" + str(i) + "]" for i in range(n)]
        self._to_render = [queue.Queue(maxsize=r) for r in self._room]
        self._to_write = [queue.Queue(maxsize=r) for r in self._room]
        self._results: queue.Queue = queue.Queue(maxsize=max(2 * n, min(room, 8)))
        self._drained = False  # results() was called: the pipeline runs once

    @property
    def dropped(self) -> int:
        """Frames of every source replaced by newer ones before the detector took them."""
        return sum(s.dropped for s in self.stats)

    def start(self) -> None:
        # the detector runs on the infer thread; this thread's idle OpenMP team (left from
        # loading and warming up the model) would make that thread's team sleep at barriers
        release_openmp_workers()
        for i in range(len(self.sources)):
            self.spawn(self._names[i].format("capture"), self._capture, i)
        self.spawn("infer", self._infer, on_exit=self._end_all)
        for i in range(len(self.sources)):
            self.spawn(self._names[i].format("render"), self._render, i,
                       on_exit=lambda i=i: self.put(self._to_write[i], END))
            self.spawn(self._names[i].format("write"), self._write, i,
                       on_exit=lambda: self.put(self._results, END))

    def stop(self) -> None:
        """Stop reading the sources and start no detector call; frames already in the
        detector, or past it, still reach the sinks (live frames left waiting count as
        dropped)."""
        super().stop()
        with self._cond:
            self._cond.notify_all()

    def results(self) -> Iterator[Result]:
        """Results as they are written; raises ``StageError`` if a stage failed. A pipeline
        runs once: a second call is a RuntimeError."""
        if self._drained:
            raise RuntimeError("Expected a new Pipeline: this one has run (results() or run() "
                               "was called before); make another, on a newly opened source")
        self._drained = True
        if not self._threads:
            self.start()
        return self.drain(self._results, ends=len(self.sources))

    def _end_all(self) -> None:
        for q in self._to_render:
            self.put(q, END)

    # -- capture: one thread per source -----------------------------------------------------

    def _capture(self, i: int) -> None:
        source, stats = self.sources[i], self.stats[i]
        frames = iter(source)
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    return
                if frame.source_id != i:
                    frame = replace(frame, source_id=i)
                stats.on_capture(frame.captured_at,
                                 frame.timestamp_ms / 1000.0 if source.stream_clock else None)
                self._offer(i, (frame, read_timing(source, start)))
        finally:
            with self._cond:
                self._ended[i] = True
                self._cond.notify_all()

    def _offer(self, i: int, item: tuple) -> None:
        """Policy of source ``i``: newest-only replaces what waits; every-frame waits for room."""
        with self._cond:
            waiting = self._waiting[i]
            if self._stop.is_set():  # read as the run stopped: no detector call is left for it
                self._discard(i, 1)
                return
            while not self.newest[i] and len(waiting) >= self._room[i]:
                if self._abort.is_set():
                    raise Aborted
                if self._stop.is_set():
                    return  # stopping: no frame read now is detected
                self._cond.wait(POLL_S)
            if self.newest[i] and waiting:
                waiting.popleft()
                self.stats[i].on_drop()
            waiting.append(item)
            self._cond.notify_all()

    # -- infer: the batcher and the detector ---------------------------------------------------

    def _infer(self) -> None:
        while (batch := self._take_batch()) is not None:
            self.batch_sizes.append(len(batch))
            results = detect_batch(self.detector, [item for _, item in batch])
            for (i, _), result in zip(batch, results):
                self.put(self._to_render[i], result)

    def _take_batch(self) -> list[tuple[int, tuple]] | None:
        """The frames due for one detector call, as (source position, item); None at the end
        (every source ended, or the run was stopped)."""
        with self._cond:
            while not any(self._waiting):
                if self._abort.is_set():
                    raise Aborted
                if all(self._ended) or self._stop.is_set():
                    return None
                self._cond.wait(POLL_S)
            deadline = time.monotonic() + self.config.batch_timeout
            while not self._batch_due(deadline):
                if self._abort.is_set():
                    raise Aborted
                self._cond.wait(min(POLL_S, max(deadline - time.monotonic(), 0.001)))
            if self._stop.is_set():  # no new call: one more on each live source's last frame
                for i, waiting in enumerate(self._waiting):  # held the exit for seconds
                    self._discard(i, len(waiting))
                    waiting.clear()
                return None
            batch = [(i, waiting.popleft()) for i, waiting in enumerate(self._waiting)
                     for _ in range(min(len(waiting), self._share[i]))]
            self._cond.notify_all()
            return batch or None

    def _discard(self, i: int, count: int) -> None:
        """``count`` frames of source ``i`` will not be detected: live ones count as dropped."""
        for _ in range(count if self.newest[i] else 0):
            self.stats[i].on_drop()

    def _batch_due(self, deadline: float) -> bool:
        """Every source gave its share (or ended); after ``deadline``, every-frame sources
        still get theirs (they come at decoding speed) but live ones are not waited for."""
        given = [len(w) >= s or e for w, s, e in zip(self._waiting, self._share, self._ended)]
        if all(given) or self._stop.is_set():
            return True
        late = time.monotonic() >= deadline
        return late and all(g or newest for g, newest in zip(given, self.newest))

    # -- per source: stages and render, then write ---------------------------------------------

    def _render(self, i: int) -> None:
        stages, draw = self.stages[i], self.draw[i]
        while (result := self.get(self._to_render[i])) is not END:
            for stage in stages:
                result = run_stage(stage, result, self._names[i])
            draw_result(result, self.render if draw else None)
            self.stats[i].on_result(result.latency_ms, result.rendered_at)
            self.put(self._to_write[i], result)

    def _write(self, i: int) -> None:
        while (result := self.get(self._to_write[i])) is not END:
            write_result(result, self.sinks[i])
            self.put(self._results, result)


def _sources(given) -> list[Source]:
    """``given`` as a list of sources; TypeError for a path or anything else that is not
    a ``Source`` (or a sequence of them)."""
    if isinstance(given, (str, os.PathLike)):
        raise TypeError(f"Expected a Source or a sequence of them, but found a path "
                        f"({str(given)!r}); open it with drivevision.open_source(path)")
    sources = list(given) if isinstance(given, (Sequence, Iterator)) else [given]
    for source in sources:
        if not isinstance(source, Source):
            raise TypeError(f"Expected a Source (drivevision.open_source(uri)) or a sequence "
                            f"of them, but found {type(source).__name__}")
    return sources


def check_detector(detector, expected: str = "a Detector") -> None:
    """TypeError unless ``detector`` can detect: a ``Detector`` (or one like it: ``names``,
    ``infer_timed``); ``expected`` says what the caller takes, for the message."""
    if hasattr(detector, "infer_timed") and hasattr(detector, "names"):
        return
    found = type(detector).__name__
    if isinstance(detector, (str, os.PathLike)):
        found = (f"a path ({str(detector)!r}); for a checkpoint build one with "
                 "Detector.from_config(DetectorConfig(weights=path))")
    raise TypeError(f"Expected {expected}, but found {found}")


def check_stages(chain) -> None:
    """TypeError, saying how to make one, for anything in ``chain`` (one source's stages)
    that is not a ``Stage``: a tracker's name, given in their place or in it, a tracker."""
    for stage in [chain] if isinstance(chain, str) else chain:
        if callable(stage):
            continue
        found = type(stage).__name__
        if isinstance(stage, str):
            found = (f"a str ({stage!r}); for a tracker: stages=track_stages({stage!r}) "
                     "(drivevision.pipeline.track_stage)")
        elif hasattr(stage, "update"):
            found += (", a tracker: run it as a stage, stages=[TrackStage(tracker)] "
                      "(drivevision.pipeline.track_stage)")
        raise TypeError(f"Expected a stage, a Result -> Result callable, but found {found}")


def _per_source(what: str, given: Sequence, n: int, single: bool) -> list[list]:
    """``given`` as one list per source: a single source's flat list, or one per source."""
    if single:
        return [_listed(given)]
    given = list(given)
    if not given:
        return [[] for _ in range(n)]
    if len(given) != n:
        raise ValueError(f"Expected one sequence of {what} per source ({n}), "
                         f"but got {len(given)}")
    return [_listed(g) for g in given]


def _listed(given) -> list:
    """A sequence as a list; a str (a tracker's name, say) stays whole, for the message."""
    return [given] if isinstance(given, str) else list(given)


def _keeps_newest(source: Source, policy: str) -> bool:
    return source.live if policy == "auto" else policy == "newest"


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
        result.timings["encode"] = (time.perf_counter() - start) * 1000.0


def _group(ms: dict[str, float]) -> dict[str, float]:
    """Detector stage times as the pipeline reports them (dense parts = inference)."""
    grouped = {"preprocess": ms.get("preprocess", 0.0), "postprocess": ms.get("postprocess", 0.0)}
    grouped["inference"] = sum(v for k, v in ms.items() if k not in grouped)
    return grouped
