"""Local worker processes: each (started with multiprocessing's ``spawn``) loads the detector
once, then takes one input at a time from the driver over its own pipe and answers with
progress and the input's ``JobResult``.

The driver always knows which input each worker holds, so a worker that dies (killed, out
of memory, a decoder crash) costs only that input: it goes to the next free worker, and an
input whose worker died twice is recorded as failed. Workers ignore Ctrl-C (the driver
decides) and leave on their own when the driver is gone (their pipe breaks).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from pathlib import Path

from drivevision.batch.jobs import Job
from drivevision.batch.work import BatchSettings, Event, JobResult, load_detector, one_line, run_job
from drivevision.errors import DriveVisionError

PROGRESS_SECONDS = 0.5  # a worker reports frames done at most this often
POLL_SECONDS = 0.25  # the driver looks at its stop request at least this often
JOIN_SECONDS = 10.0  # a worker told to leave gets this long before it is killed
ATTEMPTS = 2  # an input whose worker died this many times is recorded as failed


@dataclass
class _Worker:
    process: multiprocessing.process.BaseProcess
    conn: object  # the driver's end of the pipe
    slot: int
    ready: bool = False
    job: Job | None = None
    announced: bool = True  # its job's "started" event was given


class LocalWorkers:
    """Up to ``count`` worker processes, never more than the jobs; worker ``i`` runs on
    ``devices[i]`` (None: the settings' device), the ``cpus`` cores shared out among those
    started as torch threads."""

    def __init__(self, settings: BatchSettings, out_dir: Path, count: int,
                 devices: list[str | None], cpus: int):
        self.settings, self.out_dir, self.count = settings, out_dir, count
        self.devices, self.cpus, self.threads = devices, cpus, max(1, cpus // count)
        self._ctx = multiprocessing.get_context("spawn")

    def share(self, jobs: int) -> tuple[int, int]:
        """(workers started for ``jobs`` jobs, torch CPU threads each): a resumed batch with
        one input left runs it on one worker with every core."""
        started = max(1, min(self.count, jobs))
        return started, max(1, self.cpus // started)

    def run(self, jobs: list[Job], stopping: Callable[[], bool]) -> Iterator[Event]:
        """Yield events ("started", "frames", "retry", "result") until every job has a
        result or ``stopping()`` turns true (then the workers are killed at once and the jobs
        they held come back "interrupted"). Raises DriveVisionError when the detector cannot
        be loaded."""
        todo, deaths, load_deaths = deque(jobs), {}, 0
        _, self.threads = self.share(len(jobs))
        workers = [self._start(i) for i in range(min(self.count, len(jobs)))]
        try:
            while todo or any(w.job for w in workers):
                if stopping():
                    yield from self._interrupt(workers)
                    return
                self._assign(workers, todo)
                yield from self._assigned(workers)
                wait([w.conn for w in workers] + [w.process.sentinel for w in workers],
                     timeout=POLL_SECONDS)
                for i, w in enumerate(workers):
                    yield from self._read(w)
                    if w.process.exitcode is None:
                        continue
                    load_deaths += not w.ready
                    if load_deaths >= ATTEMPTS:
                        raise DriveVisionError(f"A worker process died while loading the "
                                               f"detector ({_exit_reason(w.process)})")
                    if w.job is not None:
                        yield self._died(w, todo, deaths)
                    w.conn.close()
                    workers[i] = self._start(w.slot)
        finally:
            self._end(workers)

    def _assign(self, workers: list[_Worker], todo: deque) -> None:
        for w in workers:
            if w.ready and w.job is None and todo:
                w.job = todo.popleft()
                w.conn.send(w.job)
                w.announced = False

    def _assigned(self, workers: list[_Worker]) -> Iterator[Event]:
        for w in workers:
            if w.job is not None and not w.announced:
                w.announced = True
                yield Event("started", w.job, worker=w.process.pid)

    def _read(self, w: _Worker) -> Iterator[Event]:
        """Every message waiting on ``w``'s pipe, as events."""
        try:
            while w.conn.poll():
                message = w.conn.recv()
                if message[0] == "fatal":
                    raise DriveVisionError(f"A worker could not load the detector: {message[1]}")
                if message[0] == "ready":
                    w.ready = True
                    yield Event("ready", None, worker=w.process.pid, detail=message[1])
                elif message[0] == "frames" and w.job is not None:
                    yield Event("frames", w.job, worker=w.process.pid, frames=message[1])
                elif message[0] == "result":
                    job, w.job = w.job, None
                    yield Event("result", job, worker=w.process.pid, result=message[1])
        except (EOFError, OSError):
            w.process.join(JOIN_SECONDS)  # its pipe closed: it is ending, or dead already
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join()

    def _died(self, w: _Worker, todo: deque, deaths: dict) -> Event:
        """The event for the input a dead worker held: retried first, or failed the second
        time."""
        job, w.job = w.job, None
        deaths[job] = deaths.get(job, 0) + 1
        reason = f"its worker process died ({_exit_reason(w.process)})"
        if deaths[job] < ATTEMPTS:
            todo.appendleft(job)
            return Event("retry", job, worker=w.process.pid, error=reason)
        result = JobResult(job.rel, job.source, "failed", worker=str(w.process.pid),
                           error=f"{reason}, {ATTEMPTS} times")
        return Event("result", job, worker=w.process.pid, result=result)

    def _interrupt(self, workers: list[_Worker]) -> Iterator[Event]:
        for w in workers:
            w.process.kill()
        for w in workers:
            w.process.join()
            yield from self._read(w)  # a result it sent before the kill still counts
            if w.job is not None:
                result = JobResult(w.job.rel, w.job.source, "interrupted",
                                   worker=str(w.process.pid), error="interrupted")
                yield Event("result", w.job, worker=w.process.pid, result=result)
                w.job = None

    def _start(self, slot: int) -> _Worker:
        ours, theirs = self._ctx.Pipe()
        process = self._ctx.Process(
            target=serve, name=f"drivevision-batch-{slot}", daemon=True,
            args=(theirs, self.settings, self.out_dir, self.devices[slot], self.threads))
        with _sigint_ignored():  # a Ctrl-C while it starts up is the driver's alone
            process.start()
        theirs.close()
        return _Worker(process, ours, slot)

    def _end(self, workers: list[_Worker]) -> None:
        """Tell every worker to leave, give them JOIN_SECONDS, kill those still there."""
        for w in workers:
            with contextlib.suppress(OSError):
                w.conn.send(None)
        deadline = time.monotonic() + JOIN_SECONDS
        for w in workers:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join()
            w.conn.close()


def serve(conn, settings: BatchSettings, out_dir: Path, device: str | None,
          threads: int) -> None:
    """A worker process's life: load the detector, then run the jobs that come until told
    to leave (None) or the driver is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_decoders()
    try:
        detector = load_detector(settings, device=device, threads=threads)
    except Exception as e:  # noqa: BLE001 -- said to the driver, which stops the batch
        _send(conn, ("fatal", one_line(e)))
        return
    _send(conn, ("ready", detector.describe()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        reporter = _Reporter(conn)
        result = run_job(detector, job, settings, out_dir, reporter)
        reporter.flush()
        _send(conn, ("result", result))


class _Reporter:
    """Counts frames; sends the count to the driver at most every PROGRESS_SECONDS."""

    def __init__(self, conn):
        self.conn, self.frames, self.sent = conn, 0, time.monotonic()

    def __call__(self, _result) -> None:
        self.frames += 1
        if time.monotonic() - self.sent >= PROGRESS_SECONDS:
            self.flush()

    def flush(self) -> None:
        if self.frames:
            _send(self.conn, ("frames", self.frames))
            self.frames, self.sent = 0, time.monotonic()


def _send(conn, message) -> None:
    """Send to the driver; when it is gone, leave at once (its part files, hidden, are
    removed by the next run that completes the input)."""
    try:
        conn.send(message)
    except OSError:
        os._exit(1)


def _quiet_decoders() -> None:
    """FFmpeg's per-packet errors would bury the batch's own lines (as ``detect`` does):
    OpenCV's are turned down; PyAV's logging is off unless a user turned it on
    (``options.quiet_opencv`` says why it stays off)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")


@contextlib.contextmanager
def _sigint_ignored():
    """SIGINT ignored while a worker starts (it inherits that, and would otherwise die of a
    Ctrl-C during its imports, with a traceback); main thread only."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def _exit_reason(process) -> str:
    code = process.exitcode
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


def local_workers(settings: BatchSettings, out_dir: Path, count: int | None) -> LocalWorkers:
    """Workers for this machine: ``count`` of them, or by default one per GPU the settings'
    device may use (``auto``, ``cuda``; worker ``i`` on GPU ``i`` mod GPUs) and one on a
    CPU-only machine; each started gets its share of the CPU cores as torch threads."""
    gpus = _gpus() if settings.config.device in ("auto", "cuda") else 0
    count = count or max(1, gpus)
    devices = [f"cuda:{i % gpus}" if gpus else None for i in range(count)]
    return LocalWorkers(settings, out_dir, count, devices, os.cpu_count() or 1)


def _gpus() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
