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

from drivevision.errors import StageError
from drivevision.livestats import SourceStats
from drivevision.pipeline import _END, Result, _Aborted, _group, _interrupt
from drivevision.render import annotate
from drivevision.sinks import Sink
from drivevision.sources import Source

_POLL_S = 0.05


class MultiSourcePipeline:
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
        self._abort, self._stop = threading.Event(), threading.Event()
        self._threads: list[threading.Thread] = []
        self.error: StageError | None = None
        self.interrupted = False

    @property
    def dropped(self) -> int:
        return sum(s.dropped for s in self.stats)

    # -- control (as Pipeline) ---------------------------------------------------------------

    def start(self) -> None:
        n = len(self.sources)
        plan = [(f"capture[{i}]", self._capture, (i,), None) for i in range(n)]
        plan.append(("infer", self._mux, (), "outs"))
        plan += [(f"write[{i}]", self._output, (i,), "results") for i in range(n)]
        for name, body, args, ends in plan:
            thread = threading.Thread(target=self._stage, args=(name, body, args, ends),
                                      name=f"drivevision-{name}", daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> None:
        """Stop reading the sources; frames already taken still reach the sinks."""
        self._stop.set()
        for source in self.sources:
            _interrupt(source)
        with self._cond:
            self._cond.notify_all()

    def abort(self) -> None:
        self._abort.set()
        self.stop()

    def join(self, timeout: float = 10.0) -> bool:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in self._threads)

    def results(self) -> Iterator[Result]:
        """Results as they are written; raises ``StageError`` if a stage failed."""
        if not self._threads:
            self.start()
        ends = 0
        try:
            while ends < len(self.sources):
                try:
                    item = self._get(self._results)
                except _Aborted:
                    break
                except KeyboardInterrupt:
                    if self._stop.is_set():
                        self.abort()
                    self.interrupted = True
                    self.stop()
                    continue
                if item is _END:
                    ends += 1
                else:
                    yield item
        finally:
            if not self._abort.is_set() and ends < len(self.sources):
                self.abort()  # the caller stopped iterating early
            self.join()
        if self.error is not None:
            raise self.error

    def run(self, on_result: Callable[[Result], None] | None = None) -> int:
        count = 0
        for result in self.results():
            count += 1
            if on_result is not None:
                on_result(result)
        return count

    # -- helpers -------------------------------------------------------------------------------

    def _stage(self, name: str, body, args: tuple, ends: str | None) -> None:
        try:
            body(*args)
        except _Aborted:
            pass
        except BaseException as e:  # noqa: BLE001 - every failure must reach the caller
            with self._cond:
                if self.error is None:
                    self.error = StageError(name, e)
                    self.error.__cause__ = e
            self.abort()
        finally:
            try:
                if ends == "outs":
                    for out in self._outs:
                        self._put(out, _END)
                elif ends == "results":
                    self._put(self._results, _END)
            except _Aborted:
                pass

    def _put(self, q: queue.Queue, item) -> None:
        while not self._abort.is_set():
            try:
                q.put(item, timeout=_POLL_S)
                return
            except queue.Full:
                continue
        raise _Aborted

    def _get(self, q: queue.Queue):
        while not self._abort.is_set():
            try:
                return q.get(timeout=_POLL_S)
            except queue.Empty:
                continue
        raise _Aborted

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
                item = (replace(frame, source_id=i), (time.perf_counter() - start) * 1000.0)
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
                    raise _Aborted
                self._cond.wait(_POLL_S)
            if self._slots[i] is not None:
                self.stats[i].on_drop()
            self._slots[i] = item
            self._cond.notify_all()

    def _take_batch(self) -> list[tuple[int, tuple]] | None:
        """The frames waiting in the slots once the batch is due; None when all have ended."""
        with self._cond:
            while not any(s is not None for s in self._slots):
                if self._abort.is_set():
                    raise _Aborted
                if all(self._ended):
                    return None
                self._cond.wait(_POLL_S)
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
            detections, ms = self.detector.infer_timed([item[0].image for _, item in batch])
            self.batch_sizes.append(len(batch))
            share = {k: v / len(batch) for k, v in _group(ms).items()}
            for (i, (frame, decode_ms)), det in zip(batch, detections):
                self._put(self._outs[i], Result(frame, det, {"decode": decode_ms, **share}))

    def _output(self, i: int) -> None:
        while (result := self._get(self._outs[i])) is not _END:
            if self.draw[i]:
                start = time.perf_counter()
                result.annotated = self.render(result.frame.image, result.detections)
                result.timings["render"] = (time.perf_counter() - start) * 1000.0
            result.rendered_at = time.monotonic()
            self.stats[i].on_result(result.latency_ms, result.rendered_at)
            if self.sinks[i]:
                start = time.perf_counter()
                for sink in self.sinks[i]:
                    sink.write(result.frame, result.detections, result.annotated)
                result.timings["encode"] = (time.perf_counter() - start) * 1000.0
            self._put(self._results, result)
