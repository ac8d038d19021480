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

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from drivevision.config import PipelineConfig
from drivevision.io.frames import Source
from drivevision.pipeline.checks import (
    check_detector,
    check_sinks,
    check_sources,
    check_stages,
    per_source,
)
from drivevision.pipeline.result import (
    Result,
    Stage,
    detect_batch,
    draw_result,
    read_timing,
    run_stage,
    write_result,
)
from drivevision.pipeline.stats import SourceStats
from drivevision.pipeline.threads import END, POLL_S, Aborted, StageThreads, release_openmp_workers
from drivevision.render import annotate

__all__ = ["Pipeline", "Result", "Stage"]  # Result and Stage stay importable from here


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
        sources = [sources] if single else check_sources(sources)
        if not sources:
            raise ValueError("Expected at least one source")
        check_detector(detector)
        super().__init__(sources)
        n = len(sources)
        self.sources, self.detector, self.config = sources, detector, config
        self.sinks = per_source("sinks", sinks, n, single)
        for chain in self.sinks:
            check_sinks(chain)
        self.stages = ([list(stages(i)) for i in range(n)] if callable(stages)
                       else per_source("stages", stages, n, single))
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
            self.spawn(self._names[i].format("capture"), self._capture, i,
                       reader=self.sources[i].can_lose_input)
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


def _keeps_newest(source: Source, policy: str) -> bool:
    return source.live if policy == "auto" else policy == "newest"
