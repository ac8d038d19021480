"""Exit codes of every command, and leaving at once on Ctrl-C while a command starts.

Standard library only: ``main`` takes Ctrl-C over before the command modules (and torch,
behind them) load.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

EXIT_OK = 0
EXIT_FAILED = 1  # a stage failed at run time, or the system refused (full disk, ...)
EXIT_USAGE = 2  # bad input or options
EXIT_INPUT_DAMAGED = 3  # also: a live source was lost for good
EXIT_SOME_FAILED = 3  # batch: some inputs failed, the others completed
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM
EXIT_READER_LEFT = 141  # the reader of stdout went away (128 + SIGPIPE, as a shell says)

_AT_QUIT: list[Callable[[], None]] = []


def quit_now(signum: int) -> None:
    """Outside a pipeline there is nothing to finish: undo what ``undo_on_quit`` names, say
    so and leave at once. Raising KeyboardInterrupt instead could land inside C++ code that
    calls back into Python (model loading, ONNX export) and abort with a C++ error."""
    for undo in reversed(_AT_QUIT):
        undo()
    os.write(2, b"drivevision: interrupted\n")
    os._exit(EXIT_INTERRUPTED)


@contextlib.contextmanager
def undo_on_quit(undo: Callable[[], None]) -> Iterator[None]:
    """While the block runs, a Ctrl-C that quits the command at once runs ``undo`` first
    (an export's half-written staging folder is removed, say)."""
    _AT_QUIT.append(undo)
    try:
        yield
    finally:
        _AT_QUIT.remove(undo)
