"""Lock files beside the engine cache's entries: processes that share the cache take
turns building an entry (POSIX ``flock``; a lock dies with its process), and clearing the
cache leaves an entry alone while another process builds it."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path

_log = logging.getLogger(__name__)


@contextlib.contextmanager
def hold(lock: Path | None, waiting_for: str | None = None) -> Iterator[bool]:
    """Hold the lock file ``lock`` exclusively; yields whether it could. Held by another
    process: wait for it (saying so) when ``waiting_for`` names what it builds, else yield
    False at once. The holder removes the file before letting go, however it leaves; a lock
    file removed while this waited for it is no lock any more: the file now at ``lock`` is
    locked instead. One a killed process left is locked by nobody: taken at once, then
    removed. Without POSIX locks (Windows), or no ``lock`` to take: True (temporary names
    still keep files whole)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if lock is None or fcntl is None:
        yield True
        return
    while True:
        with open(lock, "a") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if waiting_for is None:
                    yield False
                    return
                _log.warning(f"Waiting for another process to finish building {waiting_for}")
                fcntl.flock(f, fcntl.LOCK_EX)
            if not is_at(f, lock):
                fcntl.flock(f, fcntl.LOCK_UN)
                continue
            try:
                yield True
            finally:
                # removed while held (a build that failed or was interrupted too), so no
                # empty lock file stays behind; a process waiting on it finds it gone and
                # locks the file of that name anew
                if is_at(f, lock):
                    lock.unlink(missing_ok=True)
                fcntl.flock(f, fcntl.LOCK_UN)
            return


def is_at(f, path: Path) -> bool:
    """Whether the open file ``f`` is still the file at ``path`` (not removed or replaced)."""
    try:
        here = os.stat(path)
    except FileNotFoundError:
        return False
    there = os.fstat(f.fileno())
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def held(lock: Path) -> bool:
    """Whether a process holds ``lock`` now (a build is running); False for a lock file a
    killed process left, a missing one, or without POSIX locks. Opened read-only: never
    made, never taken for longer than the test."""
    try:
        import fcntl
    except ImportError:
        return False
    try:
        with open(lock, "rb") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return True
            fcntl.flock(f, fcntl.LOCK_UN)
    except OSError:
        pass
    return False
