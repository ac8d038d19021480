"""A command thread for the viewer: one Python thread that runs the commands the GUI sends.

The GUI thread only queues commands (``send``) and never waits on them; the thread runs each
as ``_do_<name>(*args)`` in order, and a failure goes to ``failed`` as one line. Commands in
``interrupting`` also interrupt what runs now (``_interrupt_locked``); ``stop()`` ends the
thread with an event and waits for it (no thread is ever killed).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from PyQt6.QtCore import QObject, pyqtSignal


class Ahead:
    """A command's slow part (opening a source, loading a detector) run on a thread of its
    own, so that what runs now runs on meanwhile. ``on_done(self)`` is called on that
    thread once ``job()`` has returned (``value``) or raised (``error``); ``start()`` starts
    it. A value no one takes (``drop()``) goes to ``close``."""

    def __init__(self, job: Callable[[], object], *, on_done: Callable[[Ahead], None],
                 close: Callable[[object], None] = lambda value: None, name: str):
        self.value, self.error = None, None
        self._job, self._on_done, self._close = job, on_done, close
        self._done = threading.Event()
        self._lock = threading.Lock()
        self._dropped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        try:
            value = self._job()
        except Exception as e:  # noqa: BLE001 - raised again by ``result()``
            self.error = e
        else:
            with self._lock:
                if self._dropped:
                    self._close(value)
                else:
                    self.value = value
        self._done.set()
        self._on_done(self)

    def result(self, quit: threading.Event):
        """The value, once there; None when ``quit`` is set first (the value is dropped);
        raises the job's error."""
        while not self._done.wait(0.1):
            if quit.is_set():
                self.drop()
                return None
        if self.error is not None:
            raise self.error
        return self.value

    def drop(self) -> None:
        """No one takes the value: close it, now or once it is there."""
        with self._lock:
            self._dropped = True
            value, self.value = self.value, None
        if value is not None:
            self._close(value)


class CommandThread(QObject):
    """Runs queued commands on its own thread. Create it on the GUI thread; ``start()``,
    ``send(name, *args)``, ``stop()``. Subclasses define the ``_do_<name>`` methods, the
    ``interrupting`` command names, and ``_interrupt_locked`` / ``_finish``."""

    failed = pyqtSignal(str)
    interrupting: frozenset[str] = frozenset()

    def __init__(self, parent: QObject | None = None, *, name: str):
        super().__init__(parent)
        self._cond = threading.Condition()
        self._pending: deque[tuple[str, tuple]] = deque()
        self._quit = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    # -- GUI thread ------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 15.0) -> bool:
        """Ask the thread to end and wait for it; True when it has ended."""
        self._quit.set()
        self._interrupt()
        with self._cond:
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive()

    def is_running(self) -> bool:
        return self._thread.is_alive()

    def send(self, name: str, *args) -> None:
        """Queue a command; one in ``interrupting`` also interrupts what is running."""
        self._queue((name, args), interrupt=name in self.interrupting)

    def _queue(self, command: tuple[str, tuple], *, interrupt: bool) -> None:
        """Queue ``(name, args)``; with ``interrupt``, interrupt what is running now."""
        with self._cond:
            self._pending.append(command)
            self._cond.notify_all()
            if interrupt:
                self._interrupt_locked()

    def _withdraw(self, command: tuple[str, tuple]) -> bool:
        """Take a queued ``(name, args)`` back (from any thread); False when the thread has
        taken it to run already."""
        with self._cond:
            if not any(c is command for c in self._pending):
                return False
            self._pending = deque(c for c in self._pending if c is not command)
            return True

    def _interrupt(self) -> None:
        with self._cond:
            self._interrupt_locked()

    def _interrupt_locked(self) -> None:
        """Interrupt what runs now; called holding ``_cond``."""

    # -- the thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._quit.is_set():
                command = self._next_command()
                if command is not None:
                    self._execute(*command)
        finally:
            self._finish()

    def _finish(self) -> None:
        """Release what the commands opened; the thread's last call."""

    def _interrupting_pending(self) -> bool:
        """An interrupting command waits, or the thread is ending; called holding ``_cond``."""
        return any(n in self.interrupting for n, _ in self._pending) or self._quit.is_set()

    def _next_command(self, inline_only: bool = False) -> tuple[str, tuple] | None:
        """The next command, waiting a little for one; with ``inline_only`` (a long command
        runs others between its steps) only one that does not interrupt, without waiting."""
        with self._cond:
            if not inline_only:
                self._cond.wait_for(lambda: self._pending or self._quit.is_set(), 0.2)
            if not self._pending or self._quit.is_set():
                return None
            if inline_only and self._pending[0][0] in self.interrupting:
                return None
            return self._pending.popleft()

    def _execute(self, name: str, args: tuple) -> None:
        try:
            getattr(self, f"_do_{name}")(*args)
        except Exception as e:  # noqa: BLE001 - every failure goes to the user as one line
            self._fail(e)

    def _fail(self, error: Exception) -> None:
        """Tell ``error`` as ``failed``, in one line."""
        lines = str(error).strip().splitlines()
        self.failed.emit(lines[0] if lines else type(error).__name__)
