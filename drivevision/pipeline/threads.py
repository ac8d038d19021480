"""Stage threads that cannot hang: the machinery under ``Pipeline``.

Every blocking put/get polls an abort event; every stage runs its end action (usually
sending an end marker downstream) in ``finally``; the first error of any stage is kept,
aborts the others and is raised to the caller as a ``StageError`` naming the stage.
"""

from __future__ import annotations

import ctypes
import logging
import os
import queue
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence

from drivevision.errors import StageError
from drivevision.pipeline import signals

_log = logging.getLogger(__name__)
END = object()  # the stop marker a stage sends downstream when it ends
POLL_S = 0.05
# how long a thread reading a camera or stream is waited for once the others have ended: its
# read can block in OpenCV until the stream's timeout (--stall-timeout), which no stop
# request shortens; it ends by itself then, and releases its capture
READER_GRACE_S = 1.0


def release_openmp_workers() -> bool:
    """Let the calling thread's idle OpenMP workers (GNU libgomp, which torch uses on Linux)
    end; True if it had any to release. They come back by themselves on its next parallel
    region.

    libgomp keeps a team of workers for every thread that ran a parallel region, and lets
    waiting workers spin (ready within microseconds) only while the workers of all teams
    fit the CPUs; beyond that, every worker sleeps at every barrier. The thread that loaded and
    warmed up the model holds such a team: without this, the pipeline's detector, whose
    thread gets its own team, ran with sleeping workers, 5-10% slower on two cores.
    """
    mode = getattr(os, "RTLD_NOLOAD", None)
    path = _loaded_libgomp()
    if mode is None or path is None:  # no GNU OpenMP in this process
        return False
    try:
        gomp = ctypes.CDLL(path, mode=mode)  # the loaded copy, never a second one
    except OSError:
        return False
    pause = getattr(gomp, "omp_pause_resource_all", None)  # OpenMP 5.0, GCC 9 and later
    if pause is None:
        return False
    before = _thread_count()
    if pause(1) != 0:  # omp_pause_soft; on the host libgomp ends the caller's team
        return False
    return _thread_count() < before


def _loaded_libgomp() -> str | None:
    """The path of the libgomp this process has loaded (wheels may rename it), or None."""
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split(maxsplit=5)[-1].strip()
                if os.path.basename(path).startswith("libgomp"):
                    return path
    except OSError:
        pass
    return None


def _thread_count() -> int:
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return 0


class Aborted(Exception):
    """Raised inside a stage when another stage failed or the run was aborted."""


class StageThreads:
    """Threads sharing one stop event (finish what was taken), one abort event (drop
    everything now) and the first error. ``sources`` get ``interrupt()`` on stop."""

    def __init__(self, sources: Sequence = ()):
        self._abort, self._stop = threading.Event(), threading.Event()
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._readers: set[threading.Thread] = set()  # blocked reads end by themselves
        self._interruptible = list(sources)
        self.error: StageError | None = None
        self.interrupted = False
        # the one drain() gave, closed on exit; weak, so that a loop left early still
        # closes it at once (it holds self: a strong reference would make a cycle)
        self._iterator: weakref.ref | None = None

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        """Leaving the block, by a ``break``, a return or an exception, ends every stage now
        and waits for it; a half-read ``results()`` is closed (the signals come back)."""
        self.close()

    def close(self) -> None:
        """Abort every stage and join its thread; what was not yet written is dropped. From
        another thread too: the loop reading ``results()`` there then ends."""
        self.abort()
        iterator = self._iterator() if self._iterator is not None else None
        if iterator is not None:
            try:
                iterator.close()  # runs drain's own clean-up: join, signals back
            except ValueError:  # being read on another thread: it ends there, on the abort
                pass
        self._join_or_warn()

    def spawn(self, name: str, body: Callable, *args, on_exit: Callable[[], None] | None = None,
              reader: bool = False):
        """Run ``body(*args)`` on a thread of its own; ``reader``: it reads a camera or
        stream, whose read may block until the stream's own timeout, and is waited for only
        ``READER_GRACE_S`` once the others have ended (Ctrl-C on a frozen stream waited the
        whole timeout, then 10 s)."""
        thread = threading.Thread(target=self._run_stage, args=(name, body, args, on_exit),
                                  name=f"drivevision-{name}", daemon=True)
        self._threads.append(thread)
        if reader:
            self._readers.add(thread)
        thread.start()

    def _run_stage(self, name: str, body: Callable, args: tuple, on_exit) -> None:
        try:
            body(*args)
        except Aborted:
            pass
        except BaseException as e:  # noqa: BLE001 - every failure must reach the caller
            with self._lock:
                if self.error is None and isinstance(e, StageError):
                    self.error = e  # a part of the stage named itself
                elif self.error is None:
                    self.error = StageError(name, e)
                    self.error.__cause__ = e
            self.abort()
        finally:
            if on_exit is not None:
                try:
                    on_exit()
                except Aborted:
                    pass

    def stop(self) -> None:
        """Stop reading the sources; what was already taken still reaches the sinks."""
        self._stop.set()
        for source in self._interruptible:
            hook = getattr(source, "interrupt", None)  # wakes a source blocked in a read
            if hook is not None:
                hook()

    def abort(self) -> None:
        """Stop every stage now."""
        self._abort.set()
        self.stop()

    def join(self, timeout: float = 10.0) -> bool:
        """Wait for every stage thread (a ``reader`` only briefly, see ``spawn``); True when
        all but such readers have ended."""
        deadline = time.monotonic() + timeout
        for thread in sorted(self._threads, key=lambda t: t in self._readers):
            left = max(0.0, deadline - time.monotonic())
            thread.join(min(left, READER_GRACE_S) if thread in self._readers else left)
        return not any(t.is_alive() for t in self._threads if t not in self._readers)

    def _join_or_warn(self) -> None:
        if not self.join():
            stuck = [t.name for t in self._threads if t.is_alive() and t not in self._readers]
            _log.warning("still running after 10 s, left behind: %s", ", ".join(stuck))

    def put(self, q: queue.Queue, item) -> None:
        while not self._abort.is_set():
            try:
                q.put(item, timeout=POLL_S)
                return
            except queue.Full:
                continue
        raise Aborted

    def get(self, q: queue.Queue):
        while not self._abort.is_set():
            try:
                return q.get(timeout=POLL_S)
            except queue.Empty:
                continue
        raise Aborted

    def drain(self, q: queue.Queue, ends: int) -> Iterator:
        """``_drain(q, ends)``, kept so that ``close()`` can end it."""
        iterator = self._drain(q, ends)
        self._iterator = weakref.ref(iterator)
        return iterator

    def _drain(self, q: queue.Queue, ends: int) -> Iterator:
        """Items from ``q`` on the caller's thread until ``ends`` end markers came.

        While it runs on the main thread, Ctrl-C (and a SIGTERM the program took over) is a
        stop request: the sources stop, what was detected still reaches the sinks; a second
        one aborts (``drivevision.pipeline.signals``). Leaving the loop early aborts; either
        way every thread is joined, and a stage's error is raised.
        """
        seen = 0
        try:
            with signals.requests(lambda _signum: self._on_interrupt()):
                while seen < ends:
                    try:
                        item = self.get(q)
                    except Aborted:
                        break
                    except KeyboardInterrupt:  # raised by a handler of the caller's own
                        self._on_interrupt()
                        continue
                    if item is END:
                        seen += 1
                    else:
                        yield item
        finally:
            self.abort()  # ends a caller's early exit, and any stage still blocked after a stop
            self._join_or_warn()
        if self.error is not None:
            raise self.error

    def run(self, on_result: Callable | None = None) -> int:
        """Run to the end; returns the number of results."""
        count = 0
        for result in self.results():
            count += 1
            if on_result is not None:
                on_result(result)
        return count

    def results(self) -> Iterator:
        raise NotImplementedError

    def _on_interrupt(self) -> None:
        if self._stop.is_set():
            self.abort()
        self.interrupted = True
        self.stop()
