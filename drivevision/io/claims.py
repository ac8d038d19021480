"""Who writes an output, and where it is while being written.

A run claims each output for itself: an advisory lock (``fcntl.flock``) on a hidden lock
file beside it, which the operating system releases when the process dies, so a second run
naming the same output is refused at start and a killed run never blocks the next. While
the run lasts the output is written under a hidden name unique to the process,
``.NAME.part.PID.EXT`` (the final name keeps its last complete version until the run ends);
the part file is locked too, so a later run can tell the part files that killed runs left
(unlocked) from those of runs still going (locked), and report them
(``drivevision.io.leftovers``).

What a run that did not finish wrote is kept beside its output as ``NAME.partial.EXT``
(``keep_beside``; never over a file), a text file cut after its last whole line.

Outputs that are not regular files (``-`` for stdout, ``/dev/null``, a FIFO, a device) are
written straight through; a symbolic link is written through to its target, in the
target's folder.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import threading
from collections.abc import Sequence
from pathlib import Path

from drivevision.errors import SinkError

try:
    import fcntl
except ImportError:  # Windows: no locks; names unique per process still keep files whole
    fcntl = None

STDOUT = "-"
FOLDER_LOCK = ".drivevision-images.lock"
# the empty file that marks a part or staging folder as a run's (``hold_folder``): only a
# folder holding it is a killed run's leftover, never a user's hidden folder of that name
PART_MARK = ".drivevision-part"
NAME_MAX = 255
_DEVICE_ROOTS = ("/dev/", "/proc/")
# what ``part_name`` makes: .STEM.part.PID.EXT, .STEM.part.PID.copy.EXT (never a user's
# .notes.part.txt, which --clean must leave alone)
PART = re.compile(r"\..+\.part\.\d+(\.copy)?(\.[^.]+)?")


def is_stream(path: str | os.PathLike) -> bool:
    """True for outputs written straight through: ``-``, a device, a FIFO, ``/dev/stdout``."""
    if str(path) == STDOUT:
        return True
    real = os.path.realpath(path)
    if real.startswith(_DEVICE_ROOTS) or str(path).startswith(_DEVICE_ROOTS):
        return True
    return os.path.exists(real) and not (os.path.isfile(real) or os.path.isdir(real))


def target_of(path: str | os.PathLike) -> Path:
    """The file an output really lands in: a symbolic link's target (followed to the end),
    else the path itself."""
    p = Path(path)
    return Path(os.path.realpath(p)) if p.is_symlink() else p


def check_distinct(outputs: Sequence[str | os.PathLike],
                   options: Sequence[str | None] | None = None) -> None:
    """ValueError for two outputs that are one file (or one stream; /dev/null may take many),
    naming it and the options that gave it."""
    seen: dict[str, str | None] = {}
    for path, option in zip(outputs, options or [None] * len(outputs), strict=True):
        if is_stream(path):
            key = "/dev/stdout" if str(path) == STDOUT else os.path.realpath(path)
        else:
            key = str(target_of(path).resolve())
        if key == "/dev/null":
            continue
        if key in seen:
            which = f"{seen[key]} and {option} are both " if option and seen[key] else ""
            raise ValueError(f"Two outputs have the same path: {which}{path}; give each "
                             "its own")
        seen[key] = option


def missing_folder(folder: Path) -> str:
    """Why ``folder`` (not a folder) cannot hold an output: ``does not exist`` or
    ``is a file, not a folder``."""
    return "is a file, not a folder" if folder.exists() else "does not exist"


def check_not_input(inputs: Sequence[str | os.PathLike],
                    outputs: Sequence[str | os.PathLike]) -> None:
    """ValueError for an output that is one of ``inputs`` (an existing file or folder)."""
    for path in outputs:
        if is_stream(path):
            continue
        target = target_of(path).resolve()
        if any(Path(s).exists() and Path(s).resolve() == target for s in inputs):
            raise ValueError(f"An output path is an input ({target}); refusing to overwrite it")


def hidden_name(target: Path, tag: str) -> Path:
    """``.STEM.TAG.EXT`` beside ``target``; a long stem is shortened (with a hash of it)
    so that the name fits the file system's 255 bytes whenever ``target``'s own name does."""
    stem, suffix = target.stem, target.suffix
    tag = f".{tag}" if tag else ""
    name = f".{stem}{tag}{suffix}"
    if len(os.fsencode(name)) <= NAME_MAX:
        return target.with_name(name)
    digest = hashlib.sha256(os.fsencode(stem)).hexdigest()[:10]
    room = NAME_MAX - len(os.fsencode(f".{tag}{suffix}~{digest}"))
    while len(os.fsencode(stem)) > room:
        stem = stem[:-1]
    return target.with_name(f".{stem}~{digest}{tag}{suffix}")


def part_name(target: Path, extra: str = "") -> Path:
    """The hidden name this process writes ``target`` under."""
    return hidden_name(target, f"part.{os.getpid()}{extra}")


def lock_name(target: Path) -> Path:
    return hidden_name(target.with_name(target.name + ".lock"), "")


class Claim:
    """This process's exclusive claim on one output; ``release()`` (or ``with``) ends it.

    Claims are counted per path within a process, so the command and its sinks may claim
    the same output. ``lock``: the lock file, if not the hidden one beside ``target``;
    ``what``: how messages name the output (default: ``target``)."""

    _held: dict[Path, list] = {}  # lock path -> [fd, count]
    _mutex = threading.RLock()  # reentrant: see ``sinks._Syncer``

    def __init__(self, target: Path, lock: Path | None = None, *, what: str | None = None):
        self.lock = _one_spelling(lock) if lock else lock_name(_one_spelling(target))
        self.target = target
        self._released = False
        with self._mutex:
            held = self._held.get(self.lock)
            if held is not None:
                held[1] += 1
                return
            self._held[self.lock] = [_take(self.lock, what or str(target)), 1]

    def release(self) -> None:
        if self._released:
            return
        self._released = True
        with self._mutex:
            held = self._held[self.lock]
            held[1] -= 1
            if held[1] == 0:
                del self._held[self.lock]
                if held[0] is not None:
                    with contextlib.suppress(OSError):
                        self.lock.unlink()  # while still locked: see _take
                    os.close(held[0])

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _one_spelling(path: Path) -> Path:
    """``path`` with its folder as the real path (``..`` and links resolved), so that
    every way of naming one output (``../x.jsonl`` from a subfolder, or through a linked
    folder) claims the same lock, which this process then holds once."""
    path = path.absolute()
    return path.parent.resolve() / path.name


def claim_folder(folder: str | os.PathLike) -> Claim:
    """This process's claim on a folder output (one image per frame), as on a file: the
    lock beside the folder, or inside it (``FOLDER_LOCK``) when only the folder is
    writable. The folder need not exist yet."""
    folder = Path(folder).resolve()
    if folder.is_dir() and not os.access(folder.parent, os.W_OK):
        return Claim(folder, folder / FOLDER_LOCK)
    return Claim(folder)


def _take(lock: Path, target: str) -> int | None:
    """Lock ``lock`` for good (a lock file unlinked by its last holder before we locked it
    is no lock: then try the new one; one no run holds that this user may not write, a
    killed run's of another user, is replaced)."""
    if fcntl is None:
        return None
    while True:
        fd, writable = _open_lock(lock, target)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            other = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise SinkError(f"{target} is being written by another run (pid {other}); wait "
                            "for it to end or choose another name") from None
        try:
            same = os.fstat(fd).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:
            same = False
        if same and writable:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
            return fd
        try:
            if same:  # held by us now, as Claim.release holds it while it removes it
                lock.unlink()
        except OSError as e:
            raise SinkError(f"Cannot write {target}: its lock file {lock}, which no run holds, "
                            f"cannot be replaced ({e.strerror or e}): remove it") from e
        finally:
            os.close(fd)


def _open_lock(lock: Path, target: str) -> tuple[int, bool]:
    """(fd, writable) of ``lock``, made if missing; read-only where this user may not write
    it (a read-only fd takes a lock as well). SinkError, naming the lock file, where there
    is none to open: a folder or a link in its place (never followed: the file it points
    to would be emptied), a file this user may not read, a folder that takes no file."""
    try:
        return os.open(lock, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644), True
    except OSError as e:
        error = e
    if isinstance(error, PermissionError) and not lock.is_symlink() and lock.is_file():
        with contextlib.suppress(OSError):
            return os.open(lock, os.O_RDONLY | os.O_NOFOLLOW), False
    why = error.strerror or str(error)
    if lock.is_symlink() or lock.is_dir():
        kind = "link" if lock.is_symlink() else "folder"
        why = f"its lock file {lock} is a {kind}, which no run makes: move it away"
    elif lock.exists():
        why = (f"its lock file {lock} cannot be opened ({why}): remove it if no run is "
               f"writing {target}")
    elif lock.parent.is_dir():
        why = f"no file can be made in {lock.parent} ({why})"
    raise SinkError(f"Cannot write {target}: {why}") from error


def hold_part(path: Path) -> int | None:
    """Create ``path`` (empty) and hold a shared lock on it for this process's life or until
    the fd is closed: a locked part file belongs to a run still going."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    return fd


def hold_folder(path: Path) -> int | None:
    """Mark the folder ``path``, just made, as this run's (``PART_MARK``) and hold a shared
    lock on it until the returned fd is closed (or the process ends): a locked staging
    folder belongs to a run still going; a marked one no run holds, to a killed run."""
    (path / PART_MARK).touch()
    if fcntl is None:
        return None
    fd = os.open(path, os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    return fd


def whole_lines(path: Path) -> None:
    """Cut a text file after its last line end: a write that failed part way (a full disk)
    leaves a torn line that would stop its reader."""
    with path.open("rb+") as f:
        end = f.seek(0, os.SEEK_END)
        while end > 0:
            start = max(0, end - 65536)
            f.seek(start)
            cut = f.read(end - start).rfind(b"\n")
            if cut >= 0:
                end = start + cut + 1
                break
            end = start
        f.truncate(end)


def partial_name(target: Path, n: int = 1) -> Path:
    """``NAME.partial.EXT`` beside ``target`` (``NAME.partialN.EXT`` for ``n`` > 1), its
    stem shortened where the name would pass the file system's 255 bytes."""
    tag, stem = f".partial{n if n > 1 else ''}{target.suffix}", target.stem
    while len(os.fsencode(stem + tag)) > NAME_MAX and stem:
        stem = stem[:-1]
    return target.with_name(stem + tag)


def keep_beside(tmp: Path, target: Path) -> Path:
    """Move ``tmp`` to the first free ``partial_name`` of ``target`` and return it: never
    over a file, an earlier run's ``.partial`` included (it may be all a user has)."""
    for n in range(1, 1000):
        dest = partial_name(target, n)
        try:
            os.link(tmp, dest)  # fails where dest exists: no window to clobber it
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links
            if dest.exists():
                continue
            os.replace(tmp, dest)
            return dest
        tmp.unlink()
        return dest
    raise SinkError(f"No free name beside {target} for the unfinished output ({tmp} is "
                    "kept): remove old .partial files")
