"""Ctrl-C and SIGTERM as requests, handled where it is safe, never as an exception that
lands wherever the main thread happens to be (inside a queue's lock, a callback of C++
code, a sink being finished).

``requests(handler)`` is the one mechanism: while its block runs, SIGINT (and SIGTERM
where a DriveVision program took it over) call ``handler(signum)`` instead. The pipeline
turns them into a stop request (a second one aborts), ``detect_video`` holds them while
outputs are finished, the CLI quits with one line at start-up, the viewer closes its window.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def ours(handler: Callable[[int], None]) -> Callable:
    """``handler(signum)`` as a signal handler marked as DriveVision's, so that a nested
    ``requests`` block knows it may take that signal over for a while."""

    def on_signal(signum, _frame) -> None:
        handler(signum)

    on_signal.drivevision = True
    return on_signal


def install(handler: Callable[[int], None], signums=SIGNALS) -> dict:
    """Make SIGINT and SIGTERM call ``handler(signum)`` for the rest of the process (a
    program's own entry point: the CLI, the viewer); returns the previous handlers."""
    return {s: signal.signal(s, ours(handler)) for s in signums}


@contextlib.contextmanager
def requests(handler: Callable[[int], None]) -> Iterator[bool]:
    """While the block runs, SIGINT and SIGTERM call ``handler(signum)``; yields whether any
    was taken over.

    Main thread only (elsewhere Python delivers no signals: nothing changes). SIGINT is
    taken over when it would raise KeyboardInterrupt or a DriveVision program set it;
    SIGTERM only when a DriveVision program set it, so a script of yours that is killed
    still dies. The previous handlers come back on exit.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    taken = [s for s in SIGNALS if _may_take(s, signal.getsignal(s))]
    previous = {s: signal.signal(s, ours(handler)) for s in taken}
    try:
        yield bool(taken)
    finally:
        for s, old in previous.items():
            signal.signal(s, old)


@contextlib.contextmanager
def held() -> Iterator[list[int]]:
    """Signals that come while the block runs wait until it is done (outputs being moved
    into place); yields the list of those that came."""
    caught: list[int] = []
    with requests(caught.append):
        yield caught


def _may_take(signum: int, current) -> bool:
    if getattr(current, "drivevision", False):
        return True
    return signum == signal.SIGINT and current is signal.default_int_handler
