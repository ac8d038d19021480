"""The batch on a Ray cluster: one actor per GPU (``num_gpus=1``), or per CPU worker, each
holding a loaded detector; each input is one actor call (a task), and the driver asks each
busy actor for its frames done while it works (the progress's frames/s). When an actor or
its node dies, its input goes to another actor (a new one replaces the dead), and an input
whose actor died twice is recorded as failed. The driver keeps the progress and the manifest;
inputs and the output folder must be on storage every node sees, at the same path.

Ray is optional (``pip install 'drivevision[ray]'``) and imported only here.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path

from drivevision.batch.jobs import Job
from drivevision.batch.work import BatchSettings, Event, JobResult, load_detector, one_line, run_job
from drivevision.errors import DriveVisionError

INSTALL = "pip install 'drivevision[ray]'"
POLL_SECONDS = 0.25  # the driver looks at its stop request at least this often
PROGRESS_SECONDS = 0.5  # the driver asks each busy actor for its frames done this often
START_SECONDS = 600.0  # the longest wait for a first actor (a cluster scaling up, a model load)
REACH_SECONDS = 10.0  # the longest wait for a cluster address to answer at all
ATTEMPTS = 2  # an input whose actor died this many times is recorded as failed
# A notice, as a warning, that a local instance has token authentication on (Ray's default);
# the warning that it is off (anyone who reaches the cluster can run code on it) stays.
TOKEN_LOGGER = "ray._private.authentication.authentication_token_setup"
TOKEN_NOTICE = "Token authentication is enabled for this Ray cluster"


def import_ray():
    """Ray, or a one-line DriveVisionError saying how to install it."""
    try:
        import ray
    except ImportError:
        raise DriveVisionError(f"--ray needs Ray, which is not installed: {INSTALL}") from None
    return ray


class DetectorActor:
    """What each Ray actor holds: the detector, loaded once, and the batch's settings."""

    def __init__(self, settings: BatchSettings, out_dir: str, threads: int):
        from drivevision.batch.local import _quiet_decoders

        _quiet_decoders()
        self.detector = load_detector(settings, threads=threads)
        self.settings, self.out_dir = settings, Path(out_dir)
        self.counter: _Counter | None = None

    def ready(self) -> str:
        """What runs where (``Detector.describe``), once the detector is loaded."""
        return self.detector.describe()

    def run(self, job: Job) -> JobResult:
        counter = _Counter(job.rel)
        self.counter = counter
        return run_job(self.detector, job, self.settings, self.out_dir, counter)

    def progress(self) -> tuple[str, int] | None:
        """(the input it runs, or ran last, and its frames done so far; None before the
        first): called while ``run`` works, as the actor runs two calls at a time."""
        counter = self.counter
        return None if counter is None else (counter.rel, counter.frames)


class _Counter:
    """Frames done of one input, read by ``DetectorActor.progress`` from another thread."""

    def __init__(self, rel: str):
        self.rel, self.frames = rel, 0

    def __call__(self, _result) -> None:
        self.frames += 1


class RayWorkers:
    """The batch's workers as Ray actors. ``address``: None starts a local Ray instance,
    ``auto`` joins the cluster this machine belongs to, else a cluster address
    (``ray.init(address=...)``; a Ray already initialized in this process is used as it
    is). ``count``: actors (default: one per GPU, or one per node of a CPU-only cluster).
    A cluster named (``auto``, an address) is joined here, so that one not there stops the
    command before any output is written; a local instance starts only when there is work."""

    def __init__(self, settings: BatchSettings, out_dir: Path, address: str | None,
                 count: int | None):
        self.settings, self.out_dir, self.address, self.count = settings, out_dir, address, count
        self._ray = import_ray()
        self._started = False  # whether this object started (and so shuts down) Ray
        if not self._ray.is_initialized():
            _check_reachable(address)
            if address is not None:
                self._init()
        self._actor_class = None
        self._threads = 1
        self._gpu = False

    def run(self, jobs: list[Job], stopping: Callable[[], bool]) -> Iterator[Event]:
        """As ``LocalWorkers.run``: events until every job has a result, or killed actors
        and "interrupted" results when ``stopping()`` turns true. Nothing to run starts
        nothing: no Ray instance, no actor holding a GPU while its detector loads."""
        ray = self._ray
        if not jobs:
            self._shutdown()
            return
        if not ray.is_initialized():
            self._init()
        actors: list = []
        try:
            count = self._size(len(jobs))
            starting = [self._new_actor(actors) for _ in range(count)]
            yield from _Dispatch(ray, jobs, stopping, starting, lambda: self._new_actor(actors)
                                 ).events()
        finally:
            for actor in actors:
                ray.kill(actor)
            self._shutdown()

    def _init(self) -> None:
        with _signals_kept():
            _init(self._ray, self.address)
        self._started = True

    def _shutdown(self) -> None:
        if self._started:
            self._ray.shutdown()
            self._started = False

    def _size(self, jobs: int) -> int:
        """Actors to start (at most one per job), and each one's resources."""
        ray = self._ray
        nodes = [n for n in ray.nodes() if n.get("Alive")]
        gpus = ray.cluster_resources().get("GPU", 0) if self.settings.config.device != "cpu" \
            else 0
        self._gpu = gpus >= 1
        count = self.count or (int(gpus) if self._gpu else max(1, len(nodes)))
        node_cpus = max((n["Resources"].get("CPU", 1) for n in nodes), default=1)
        cpus = ray.cluster_resources().get("CPU", 1)
        self._threads = max(1, int(min(node_cpus, cpus // count)))
        return max(1, min(count, jobs))

    def _new_actor(self, actors: list):
        """Start one more actor; returns the reference that resolves when it is ready."""
        ray = self._ray
        if self._actor_class is None:
            self._actor_class = ray.remote(DetectorActor)
        resources = {"num_gpus": 1, "num_cpus": 1} if self._gpu else {"num_cpus": self._threads}
        actor = self._actor_class.options(max_restarts=0, max_task_retries=0,
                                          max_concurrency=2,  # ``progress`` while ``run``
                                          **resources).remote(self.settings,
                                                              os.fspath(self.out_dir),
                                                              self._threads)
        actors.append(actor)
        return actor, actor.ready.remote()


class _Dispatch:
    """One input per idle actor at a time, until all have results."""

    def __init__(self, ray, jobs: list[Job], stopping, starting: list[tuple], new_actor):
        self.ray, self.todo, self.stopping, self.new_actor = ray, deque(jobs), stopping, new_actor
        self.starting = {ref: actor for actor, ref in starting}  # ready ref -> actor
        self.since = time.monotonic()  # when the last actor became ready, or the start
        self.idle: deque = deque()
        self.running: dict = {}  # run ref -> (actor, job)
        self.asking: dict = {}  # progress ref -> run ref it asks about
        self.asked: dict = {}  # run ref -> (when last asked, frames reported)
        self.deaths: dict[Job, int] = {}
        self.load_failures = 0

    def events(self) -> Iterator[Event]:
        while self.todo or self.running:
            if self.stopping():
                yield from self._interrupt()
                return
            while self.idle and self.todo:
                actor, job = self.idle.popleft(), self.todo.popleft()
                self.running[actor.run.remote(job)] = (actor, job)
                yield Event("started", job, worker=actor)
            refs = [*self.running, *self.starting]
            if not refs:
                raise DriveVisionError("No Ray worker is left to run the batch")
            if not self.running and not self.idle \
                    and time.monotonic() - self.since > START_SECONDS:
                raise DriveVisionError(f"No Ray worker started within {START_SECONDS:.0f} s: "
                                       "the cluster lacks the CPUs or GPUs asked for")
            self._ask()
            done, _ = self.ray.wait([*refs, *self.asking], num_returns=1,
                                    timeout=POLL_SECONDS)
            for ref in done:
                if ref in self.asking:
                    yield from self._progress(ref)
                else:
                    yield from self._finished(ref)

    def _ask(self) -> None:
        """Ask each busy actor, not asked within PROGRESS_SECONDS, for its frames done
        (as local workers send theirs); an actor that dies answers with an error."""
        now, waiting = time.monotonic(), set(self.asking.values())
        for ref, (actor, _) in self.running.items():
            when, frames = self.asked.get(ref, (0.0, 0))
            if ref not in waiting and now - when >= PROGRESS_SECONDS:
                self.asking[actor.progress.remote()] = ref
                self.asked[ref] = now, frames

    def _progress(self, ref) -> Iterator[Event]:
        """A "frames" event for the frames an actor did since it last said."""
        run = self.asking.pop(ref)
        try:
            answer = self.ray.get(ref)
        except self.ray.exceptions.RayError:
            return  # its actor died: the run's own ref says so
        if run not in self.running or answer is None:
            return  # its input finished meanwhile
        actor, job = self.running[run]
        when, reported = self.asked[run]
        rel, frames = answer
        if rel == job.rel and frames > reported:
            self.asked[run] = when, frames
            yield Event("frames", job, worker=actor, frames=frames - reported)

    def _finished(self, ref) -> Iterator[Event]:
        errors = self.ray.exceptions
        if ref in self.starting:
            actor = self.starting.pop(ref)
            try:
                detail = self.ray.get(ref)
            except errors.RayError as e:
                self.load_failures += 1
                if self.load_failures >= ATTEMPTS or not (self.running or self.starting):
                    raise DriveVisionError(f"A Ray worker could not load the detector: "
                                           f"{_cause(e)}") from None
                return
            self.idle.append(actor)
            self.since = time.monotonic()
            yield Event("ready", None, worker=actor, detail=detail)
            return
        actor, job = self.running.pop(ref)
        self.asked.pop(ref, None)
        try:
            result = self.ray.get(ref)
        except errors.RayActorError as e:
            yield self._died(job, e)
            replacement, ready = self.new_actor()
            self.starting[ready] = replacement
            return
        except errors.RayError as e:  # the call itself failed (run_job never raises)
            result = JobResult(job.rel, job.source, "failed", error=_cause(e))
        self.idle.append(actor)
        yield Event("result", job, worker=actor, result=result)

    def _died(self, job: Job, error: BaseException) -> Event:
        self.deaths[job] = self.deaths.get(job, 0) + 1
        reason = f"its Ray actor died ({_cause(error)})"
        if self.deaths[job] < ATTEMPTS:
            self.todo.appendleft(job)
            return Event("retry", job, error=reason)
        result = JobResult(job.rel, job.source, "failed", error=f"{reason}, {ATTEMPTS} times")
        return Event("result", job, result=result)

    def _interrupt(self) -> Iterator[Event]:
        for actor, job in self.running.values():
            self.ray.kill(actor)
            result = JobResult(job.rel, job.source, "interrupted", error="interrupted")
            yield Event("result", job, worker=actor, result=result)
        self.running.clear()


def _init(ray, address: str | None) -> None:
    """``ray.init``, with Ray's "no running instance" (which names Ray's own ``--address``
    flag) said in this command's terms. Ray's notices (``Started a local Ray instance``,
    that token authentication is on by default) stay off the batch's stderr; its warnings
    and errors, and every line in Ray's own logs (``/tmp/ray/session_latest/logs``), stay."""
    try:
        with _notice_dropped(TOKEN_LOGGER, TOKEN_NOTICE):
            ray.init(address=address or None, log_to_driver=False, logging_level=logging.WARNING)
    except ConnectionError as e:
        if "Could not find any running Ray instance" not in str(e):
            raise
        raise DriveVisionError(
            f"--ray {address} found no running Ray cluster: start one with `ray start --head` "
            "(or set RAY_ADDRESS), give its address, or use --ray alone for a Ray instance "
            "here") from None


@contextlib.contextmanager
def _notice_dropped(name: str, start: str):
    """Logger ``name`` leaves out the records whose message begins with ``start``."""

    def keep(record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(start)

    logger = logging.getLogger(name)
    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)


def _check_reachable(address: str | None) -> None:
    """A one-line error for a cluster address nothing answers at (Ray itself would retry
    for minutes); ``auto``, ``local`` and none are Ray's to resolve."""
    if address in (None, "auto", "local"):
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not port.isdigit():
        return  # not host:port: Ray says what it expected
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=REACH_SECONDS).close()
    except OSError as e:
        raise DriveVisionError(
            f"Cannot reach a Ray cluster at {address} ({e.strerror or e}): give the address "
            "`ray start --head` printed, or --ray alone for a Ray instance here") from None


def _cause(error: BaseException) -> str:
    """Ray's errors carry tracebacks and advice; the line that says what happened (that of
    the error raised inside the actor, where there is one)."""
    for _ in range(8):  # an actor's error wraps its creation task's, which wraps the cause
        cause = getattr(error, "cause", None)
        if not isinstance(cause, BaseException) or cause is error:
            break
        error = cause
    return one_line(error)


@contextlib.contextmanager
def _signals_kept():
    """Leave this process's SIGINT and SIGTERM handlers as they were: Ray's driver puts in
    its own SIGTERM handler (exit at once), which would take the batch's stop request (finish
    the reports, keep the manifest) away and outlive the batch."""
    kept = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        if threading.current_thread() is threading.main_thread():
            for signum, handler in kept.items():
                if handler is not None:
                    signal.signal(signum, handler)
