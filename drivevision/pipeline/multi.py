"""Several sources, one detector: the newest frame of each source batched into one call.

One capture thread per source keeps that source's newest frame in a slot (a live source
replaces and counts the one waiting; a file waits for the slot to empty, dropping nothing).
The muxer thread takes a batch as soon as every running source has a frame, or when
``batch_timeout`` has passed since the first one arrived, as DeepStream's stream muxer
does, and runs the detector once on it. Each source then has its own render-and-write
thread, sinks and stats, so each output keeps its own frames in order.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace

import numpy as np

from drivevision.io.frames import Source
from drivevision.io.sinks import Sink
from drivevision.pipeline.livestats import SourceStats
from drivevision.pipeline.pipeline import (
    Result,
    detect_batch,
    draw_result,
    read_timing,
    write_result,
)
from drivevision.pipeline.threads import END, POLL_S, Aborted, StageThreads
from drivevision.render import annotate


class MultiSourcePipeline(StageThreads):
    """Runs ``detector`` over ``sources`` (one or more) into per-source ``sinks``.

    Args:
        sources: opened sources; frames get ``source_id`` = their position here.
        detector: anything with ``names`` and ``infer_timed(list of (H, W, 3) uint8 BGR)``.
        sinks: one sequence of sinks per source (or empty: no outputs).
        batch_timeout: seconds the muxer waits for the other sources once one has a frame.
        draw / render: as ``Pipeline``; frames are drawn when ``draw`` or a sink needs it.

    Same control as ``Pipeline``: ``start``, ``results`` (every source's results, each
    source's in order), ``run``, ``stop``, ``abort``, ``join``; ``stats[i]`` per source.
    """

    def __init__(self, sources: Sequence[Source], detector,
                 sinks: Sequence[Sequence[Sink]] = (), *, batch_timeout: float = 0.04,
                 draw: bool = False, render: Callable[..., np.ndarray] | None = None):
        if not sources:
            raise ValueError("Expected at least one source")
        sinks = list(sinks) or [[] for _ in sources]
        if len(sinks) != len(sources):
            raise ValueError(f"Expected one list of sinks per source ({len(sources)}), "
                             f"but got {len(sinks)}")
        if batch_timeout < 0:
            raise ValueError(f"Expected batch_timeout >= 0 s, but got {batch_timeout}")
        super().__init__(sources)
        self.sources, self.detector, self.sinks = list(sources), detector, sinks
        self.batch_timeout = batch_timeout
        self.draw = [draw or any(s.needs_annotated for s in ss) for ss in sinks]
        self.render = render or (lambda image, det: annotate(image, det, detector.names))
        self.stats = [SourceStats() for _ in sources]
        self.batch_sizes: deque[int] = deque(maxlen=1000)  # frames per detector call, newest
        n = len(sources)
        self._slots: list[tuple | None] = [None] * n
        self._ended = [False] * n
        self._cond = threading.Condition()
        self._outs = [queue.Queue(maxsize=2) for _ in range(n)]
        self._results = queue.Queue(maxsize=2 * n)

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.stats)

    def start(self) -> None:
        for i in range(len(self.sources)):
            self.spawn(f"capture[{i}]", self._capture, i)
        self.spawn("infer", self._mux, on_exit=self._end_outputs)
        for i in range(len(self.sources)):
            self.spawn(f"write[{i}]", self._output, i,
                       on_exit=lambda: self.put(self._results, END))

    def stop(self) -> None:
        """Stop reading the sources; frames already taken still reach the sinks."""
        super().stop()
        with self._cond:
            self._cond.notify_all()

    def results(self) -> Iterator[Result]:
        """Results as they are written; raises ``StageError`` if a stage failed."""
        if not self._threads:
            self.start()
        return self.drain(self._results, ends=len(self.sources))

    def _end_outputs(self) -> None:
        for out in self._outs:
            self.put(out, END)

    # -- stages --------------------------------------------------------------------------------

    def _capture(self, i: int) -> None:
        source, stats = self.sources[i], self.stats[i]
        frames = iter(source)
        try:
            while not self._stop.is_set():
                start = time.perf_counter()
                frame = next(frames, None)
                if frame is None:
                    return
                item = (replace(frame, source_id=i), read_timing(source, start))
                stats.on_capture(frame.captured_at)
                self._offer(i, item, source.live)
        finally:
            with self._cond:
                self._ended[i] = True
                self._cond.notify_all()

    def _offer(self, i: int, item: tuple, live: bool) -> None:
        with self._cond:
            while not live and self._slots[i] is not None:
                if self._abort.is_set():
                    raise Aborted
                self._cond.wait(POLL_S)
            if self._slots[i] is not None:
                self.stats[i].on_drop()
            self._slots[i] = item
            self._cond.notify_all()

    def _take_batch(self) -> list[tuple[int, tuple]] | None:
        """The frames waiting in the slots once the batch is due; None when all have ended."""
        with self._cond:
            while not any(s is not None for s in self._slots):
                if self._abort.is_set():
                    raise Aborted
                if all(self._ended):
                    return None
                self._cond.wait(POLL_S)
            deadline = time.monotonic() + self.batch_timeout
            while not all(s is not None or e for s, e in zip(self._slots, self._ended)):
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    break
                self._cond.wait(left)
            batch = [(i, s) for i, s in enumerate(self._slots) if s is not None]
            self._slots = [None] * len(self._slots)
            self._cond.notify_all()
            return batch

    def _mux(self) -> None:
        while (batch := self._take_batch()) is not None:
            self.batch_sizes.append(len(batch))
            results = detect_batch(self.detector, [item for _, item in batch])
            for (i, _), result in zip(batch, results):
                self.put(self._outs[i], result)

    def _output(self, i: int) -> None:
        while (result := self.get(self._outs[i])) is not END:
            draw_result(result, self.render if self.draw[i] else None)
            self.stats[i].on_result(result.latency_ms, result.rendered_at)
            write_result(result, self.sinks[i])
            self.put(self._results, result)
