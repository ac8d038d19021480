"""What becomes of an output whose sink is never closed: no ``with``, no ``close()``.

A sink dropped by its last reference, or still open when the interpreter exits, is
finished as an interrupted run's output is (``Sink.interrupted``): what was written becomes
a whole file (a video's encoder flushed, its fragments copied into an ordinary MP4) that
takes the output's name, unless a file of that name exists: that one is left as it was,
and the sink's output goes beside it as ``NAME.partial.EXT`` (never over an earlier
``.partial`` either). A ``ResourceWarning`` names the output and where it went, as an
unclosed Python file warns (shown with ``-W default`` or ``-X dev``; hidden by default).

Interrupted, not complete: a sink left open cannot know that its last frame was written
(a script that raised half way drops its sinks the same way), so it counts as a run stopped
part way: nothing it was given is lost, and no file the user had is replaced.

The finalizer (``weakref.finalize``, which also runs at exit) holds the sink's attributes
(its ``__dict__``) and class, never the sink, so it keeps no sink alive: a stand-in of that
class over those attributes closes the output. ``Sink.close`` detaches it, from any
thread; a failure to finish becomes part of the warning, never an exception at exit.
"""

from __future__ import annotations

import os
import warnings
import weakref
from pathlib import Path

from drivevision.labels import counted


def watch(sink) -> weakref.finalize:
    """A finalizer that finishes ``sink``'s output if it is collected or still open at exit,
    unless ``detach()``-ed first (``Sink.close`` does)."""
    return weakref.finalize(sink, _finish, type(sink), sink.__dict__, os.getpid())


def _finish(cls: type, state: dict, pid: int) -> None:
    if os.getpid() != pid or state.get("_closed"):  # a forked child's copy: not its output
        return
    sink = object.__new__(cls)
    sink.__dict__ = state  # the same attributes: closing it closes the dropped sink's output
    sink.interrupted = True
    failure = None
    try:
        sink.close()
    except Exception as e:  # noqa: BLE001 - in the collector or at exit none could catch it
        failure = e
    # at the line that dropped the sink (past weakref.finalize), as an unclosed file warns
    warnings.warn(message(sink, failure), ResourceWarning, stacklevel=3)


def message(sink, failure: Exception | None = None) -> str:
    """The warning for ``sink``, closed by its finalizer: where what it was given went."""
    head = f"unclosed {type(sink).__name__} {sink.path}"
    tail = "call close() or use 'with' to finish an output"
    given = counted(sink.frames, "frame")
    if failure is not None:
        return f"{head}: finishing it failed: {failure}; {tail}"
    where = sink.path if getattr(sink, "stream", False) else sink.final_path
    if where is None:
        return f"{head}: {given} written, so no file was made; {tail}"
    if Path(where) in (Path(sink.path), sink.target):
        return f"{head}: finished as {where} ({given}); {tail}"
    return (f"{head}: {sink.path} exists and was left as it was; what was written "
            f"({given}) is in {where}; {tail}")
