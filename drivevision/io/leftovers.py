"""What killed runs left beside their outputs: hidden part files and part folders
(``claims.part_name``), export staging folders and claims' lock files that no running
process holds; named in a warning, removed with ``--clean``."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from pathlib import Path

from drivevision.io.claims import PART, PART_MARK
from drivevision.labels import counted

try:
    import fcntl
except ImportError:  # Windows: no locks, so nothing is known to be in use
    fcntl = None


def _in_use(path: Path) -> bool:
    if fcntl is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return True  # gone, or not ours to judge
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def leftovers(folders) -> list[Path]:
    """Hidden part files (``.NAME.part.PID.EXT``, as ``part_name`` makes them), part
    folders (a folder output written aside, ``.NAME.part.PID``) and export staging folders
    (``.export-*``), each marked as a run's (``PART_MARK``), and claims' lock files
    (``.NAME.lock``) in ``folders`` that no running process holds: what killed runs left."""
    found = []
    for folder in sorted({Path(f).absolute() for f in folders}):
        with contextlib.suppress(OSError):
            for entry in sorted(folder.iterdir()):
                name = entry.name
                part = PART.fullmatch(name) is not None  # a file, or a folder output's
                staging = name.startswith(".export-") and entry.is_dir()
                if entry.is_dir() and not (entry / PART_MARK).is_file():
                    part = staging = False  # a user's folder of such a name
                if (part or staging or _stale_lock(entry)) and not _in_use(entry):
                    found.append(entry)
    return found


def _stale_lock(path: Path) -> bool:
    """Whether ``path`` is the lock file of a claim whose process is gone: ``.NAME.lock``
    holding the pid ``_take`` wrote, of no running process (another program's lock file of
    that shape names a live one)."""
    if not (path.name.startswith(".") and path.name.endswith(".lock")) or not path.is_file():
        return False
    try:
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeError):
        return False
    if not re.fullmatch(r"\d{1,9}\n", text):
        return False
    try:
        os.kill(int(text), 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass
    return False


def _is_lock(path: Path) -> bool:
    return path.name.endswith(".lock") and not PART.fullmatch(path.name) and not path.is_dir()


def remove_leftovers(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        elif _is_lock(path):
            _remove_lock(path)
        else:
            path.unlink(missing_ok=True)


def _remove_lock(path: Path) -> None:
    """Remove a lock file no process holds, holding it meanwhile (as ``Claim.release``
    does), so that a run taking it at this moment never holds a lock that is gone."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            if os.fstat(fd).st_ino == os.stat(path).st_ino:
                path.unlink()
        finally:
            os.close(fd)


def leftover_warning(paths: list[Path]) -> str:
    """One line naming what killed runs left, and what to do with each kind of it: a part
    file, a part folder (a folder output's), an export's staging folder, a lock file."""
    folders = [p for p in paths if p.is_dir()]
    parts = [p for p in folders if not p.name.startswith(".export-")]
    locks = [p for p in paths if _is_lock(p)]
    advice = []
    if len(folders) + len(locks) < len(paths):
        advice.append("a part file plays or reads as it is: rename it to keep it")
    if parts:
        advice.append("a part folder's files are each whole: rename the folder to keep them")
    if locks:
        advice.append("a lock file holds nothing")
    return f"{leftover_names(paths)} ({'; '.join([*advice, '--clean removes them'])})"


def leftover_names(paths: list[Path]) -> str:
    """How many outputs (and lock files) killed runs left, and the first few."""
    names = ", ".join(str(p) for p in paths[:4]) + (f" and {len(paths) - 4} more"
                                                   if len(paths) > 4 else "")
    locks = sum(map(_is_lock, paths))
    kinds = [counted(n, what) for n, what in ((len(paths) - locks, "unfinished output"),
                                              (locks, "lock file")) if n]
    return f"{' and '.join(kinds)} left by a killed run: {names}"
