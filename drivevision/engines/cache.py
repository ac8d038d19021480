"""On-disk cache of built engines, keyed by everything that makes a built engine valid.

Each entry is ``<name>-<key>.<suffix>`` plus a ``.json`` sidecar holding the key fields
(weights id, input shape, precision, tool version, GPU name, ...) and the SHA-256 of the
file. An entry is used only when its sidecar matches the fields asked for and its bytes
match the hash; a missing, corrupt, stale or foreign entry is rebuilt with a message (the
message goes to ``log``), never run. Processes sharing the cache take turns on an entry
(a lock file beside it) and build into a temporary name first, so a reader never sees a
half-written file; what a killed build left under such a name is removed by the next build
of that entry (it holds the lock, so no live build owns them).

A run that uses an entry touches its record, so the record's time is when the entry was
last used; ``entries``, ``stale`` and ``remove`` are what ``drivevision cache`` lists and
clears with.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import re
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from drivevision.engines.locks import held, hold
from drivevision.hashing import file_sha256
from drivevision.labels import counted

_log = logging.getLogger(__name__)
FORMAT = 1  # bump when the cache layout or export wrapping changes
KINDS = ("onnx", "int8", "compiled", "tensorrt")  # its folders; nothing else is the cache's


def cache_root() -> Path:
    """``$DRIVEVISION_CACHE`` (``~`` expanded, made absolute) or ``~/.cache/drivevision``;
    ValueError, naming where it came from, when that is something other than a folder or
    cannot become one (a file in its path)."""
    env = os.environ.get("DRIVEVISION_CACHE")
    root = Path(env).expanduser().absolute() if env else Path.home() / ".cache" / "drivevision"
    there = next(p for p in (root, *root.parents) if p.exists())
    if not there.is_dir():
        raise ValueError(f"Expected {_root_name()} to be a folder (made if missing), but "
                         f"{there} is not a folder")
    return root


def _root_name() -> str:
    return "DRIVEVISION_CACHE" if os.environ.get("DRIVEVISION_CACHE") else "the engine cache"


def _make_folder(folder: Path) -> None:
    """``folder`` made if missing; PermissionError, naming the cache, where this user cannot
    write there (a build needs to)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise PermissionError(f"Expected {_root_name()} to be a folder this user can write, "
                              f"but {e.filename or folder}: {e.strerror}") from e
    if not os.access(folder, os.W_OK):
        raise PermissionError(f"Expected {_root_name()} to be a folder this user can write, "
                              f"but {folder} is read-only")


def check_usable(kinds: Sequence[str]) -> None:
    """ValueError, before a model loads (cheap; makes nothing), where builds of ``kinds``
    (onnx, int8, ...) could not be kept: a file in the cache's path, or a folder that can be
    neither made nor written to. A read-only folder holding files passes: a valid entry is
    used without writing (``get_or_build``), and a build there is refused as it starts."""
    for folder in (cache_root() / kind for kind in kinds):
        with contextlib.suppress(OSError):  # missing, or not a folder: said below
            if any(folder.iterdir()):
                continue
        there = next(p for p in (folder, *folder.parents) if p.exists())
        if not there.is_dir() or not os.access(there, os.W_OK | os.X_OK):
            raise ValueError(f"Expected {_root_name()} to be a folder this user can write, but "
                             f"{there} is {'read-only' if there.is_dir() else 'not a folder'}")


def entry_key(fields: dict) -> str:
    """16 hex digits identifying ``fields`` (JSON-able key/values)."""
    text = json.dumps({"format": FORMAT, **fields}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def entry_path(folder: str | os.PathLike, name: str, fields: dict, suffix: str) -> Path:
    return Path(folder) / f"{name}-{entry_key(fields)}.{suffix}"


def check(path: Path, fields: dict) -> str | None:
    """None when ``path`` is a valid entry for ``fields``, else why it is not."""
    if not path.is_file():
        return "not built yet"
    sidecar = path.with_suffix(".json")
    try:
        stored = json.loads(sidecar.read_text())
    except (OSError, ValueError):
        stored = None
    if not isinstance(stored, dict) or not isinstance(stored.get("fields", {}), dict):
        return f"its record {sidecar.name} is missing or unreadable"
    want = {"format": FORMAT, **fields}
    diff = [k for k in sorted(set(want) | set(stored.get("fields", {})))
            if stored.get("fields", {}).get(k) != want.get(k)]
    if diff:
        got = stored.get("fields", {})
        detail = ", ".join(f"{k}: {got.get(k)!r} != {want.get(k)!r}" for k in diff[:3])
        return f"it was built for something else ({detail})"
    try:
        digest = file_sha256(path)
    except FileNotFoundError:  # removed since (``drivevision cache --clear``)
        return "not built yet"
    if stored.get("sha256") != digest:
        return "its bytes do not match the recorded hash (corrupt or truncated)"
    return None


def store(path: Path, fields: dict, data: bytes | None = None, *,
          about: dict | None = None) -> Path:
    """Record ``path`` (after writing ``data`` there atomically, if given) as valid;
    ``about`` (JSON-able) is kept in the record for people, outside the key (the name of
    the footage a calibration ran on, whose digest is in the key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        tmp = temp_name(path)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    record = {"fields": {"format": FORMAT, **fields}, "sha256": file_sha256(path),
              "bytes": path.stat().st_size, **({"about": about} if about else {})}
    tmp = temp_name(path.with_suffix(".json"))
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path.with_suffix(".json"))
    return path


def temp_name(path: Path) -> Path:
    """A hidden name beside ``path`` that no other process uses (write there, then
    ``os.replace`` into place)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


@contextlib.contextmanager
def scratch(target: Path) -> Iterator[Path]:
    """A folder for a build's intermediate files, removed after: named after the build's
    temporary name ``target``, so that what a killed build left there goes with the rest
    (``remove_leftovers``, ``abandon_builds``), never into the system's temporary folder."""
    folder = target.with_name(target.name + ".work")
    folder.mkdir()
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def remove_leftovers(path: Path) -> None:
    """Deletes the temporary files of killed builds of ``path``'s entry (its file and its
    sidecar, and a folder beside them: ``<temporary name>.export``, ``.work``), with a line
    saying how much space came back. Call with the entry's lock."""
    stale = [p for name in (path.name, path.with_suffix(".json").name)
             for pattern in (f".{glob_escape(name)}.*.tmp", f".{glob_escape(name)}.*.tmp.*")
             for p in path.parent.glob(pattern)]
    if stale:
        size = sum(_size(p) for p in stale)
        for p in stale:
            _delete(p)
        _log.warning(f"Removed {counted(len(stale), 'unfinished file')} of an interrupted build of "
                  f"{path.name} ({size / 1e6:.1f} MB)")


def _size(path: Path) -> int:
    """Bytes in ``path``: a file's, or a (real, not linked) folder's files'."""
    try:
        if path.is_symlink() or not path.is_dir():
            return path.lstat().st_size
        return sum(p.lstat().st_size for p in path.rglob("*") if not p.is_dir())
    except FileNotFoundError:  # removed meanwhile
        return 0


def _delete(path: Path) -> None:
    """Remove the file, link (never what it points to) or folder ``path``."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def invalidate(path: Path) -> None:
    for p in (path, path.with_suffix(".json")):
        p.unlink(missing_ok=True)


def get_or_build(path: Path, fields: dict, build: Callable[[Path], None], *,
                 what: str, log: Callable[[str], None] | None = None,
                 reused: Callable[[Path], None] | None = None,
                 about: dict | None = None) -> Path:
    """``path`` when valid, else ``build(path)`` writes it and it is recorded.

    ``build`` writes to the path it is given (a temporary name, renamed into place after).
    ``log`` gets one line when an existing entry is rejected (default: a logging warning);
    ``reused`` gets ``path`` when it was valid (built by an earlier run, or by another
    process this run waited for), so the caller can say so (``say_reused``); ``about``
    goes into the record of what is built (``store``).
    A valid entry is used without writing anything (the cache may be read-only); the lock
    is taken only to build.
    """
    if check(path, fields) is None:  # no lock needed to read: a read-only cache works
        return _used(path, reused)
    _make_folder(path.parent)
    with _locked(path, what):
        reason = check(path, fields)
        if reason is None:
            return _used(path, reused)
        if reason != "not built yet":
            (log or _log.warning)(f"Rebuilding {what}: cached {path.name} is not usable: "
                                  f"{reason}")
            invalidate(path)
        remove_leftovers(path)
        tmp = temp_name(path)
        _building[tmp] = path.with_name(path.name + ".lock")
        try:
            build(tmp)
            os.replace(tmp, path)
        finally:
            _building.pop(tmp, None)
            tmp.unlink(missing_ok=True)
        return store(path, fields, about=about)


_building: dict[Path, Path] = {}  # this process's builds: temporary name -> held lock file


def abandon_builds() -> None:
    """Remove what this process's builds in progress wrote (temporary files, an export's
    staging folder) and their lock files: for a process about to quit at once (Ctrl-C
    while a command starts), which runs no ``finally``."""
    for tmp, lock in list(_building.items()):
        for leftover in tmp.parent.glob(f"{glob_escape(tmp.name)}*"):
            _delete(leftover)
        lock.unlink(missing_ok=True)  # held by this process: no one else's


def _used(path: Path, reused: Callable[[Path], None] | None = None) -> Path:
    """``path``, its record's time set to now: when the entry was last used."""
    with contextlib.suppress(OSError):  # a read-only cache is still used as it is
        os.utime(path.with_suffix(".json"))
    if reused is not None:
        reused(path)
    return path


def say_reused(what: str, paths: Sequence[Path]) -> None:
    """One line on stderr, as a build says it is building: ``what`` comes from the cache,
    built by an earlier run, and where (the file, or the folder of several)."""
    where = str(paths[0]) if len(paths) == 1 else \
        ", ".join(sorted({str(p.parent) for p in paths}))
    print(f"Loaded {what} from the cache ({where}; built by an earlier run, listed by "
          "drivevision cache)", file=sys.stderr, flush=True)


# -- what the cache holds: listing and clearing (``drivevision cache``) -----------------------

# an entry's files: <stem>.<suffix>, <stem>.json, <stem>.<suffix>.lock, a TensorRT engine's
# <stem>.runtime-cache, and killed builds' .<stem>.<suffix>.<pid>.tmp (an ONNX export's also
# a staging folder .<stem>.<suffix>.<pid>.tmp.export); <stem> ends in its key
_ENTRY_FILE = re.compile(r"^\.?(?P<stem>.+-[0-9a-f]{16})\.[^/]+$")
_LEFTOVER_FOLDER = re.compile(r"^\..+\.[0-9]+\.tmp\.[a-z]+$")
# the record's fields that name a library version, and the distribution that has it
_VERSIONED = {"torch": "torch", "onnxruntime": "onnxruntime", "torchao": "torchao"}


@dataclass
class Entry:
    """One cached item: its files, kind (the folder: onnx, int8, compiled, tensorrt), the
    key fields of its record (empty without a record: an unfinished or interrupted build),
    its size and when it was last used (seconds since the epoch)."""

    stem: Path
    kind: str
    files: list[Path] = field(default_factory=list)
    fields: dict = field(default_factory=dict)
    about: dict = field(default_factory=dict)  # the record's notes for people (``store``)
    bytes: int = 0
    used: float = 0.0
    built: bool = False  # its file is in place (not only a killed build's temporary one)
    building: bool = False  # a process holds its lock file now (not one a killed one left)

    @property
    def name(self) -> str:
        """What it is, without its key: ``r50-fpn-dense_a-int8-cpu``."""
        return self.stem.name[:-17]


def entries(root: Path | None = None) -> list[Entry]:
    """Every entry under ``root`` (default ``cache_root()``), by kind, then name: in the
    ``KINDS`` folders only, so that a cache folder shared with other files (or a mistyped
    ``DRIVEVISION_CACHE``) never lists, or clears, what the engines did not write. A lock
    file alone is an unfinished build: one that is running (``building``), or one a killed
    process left."""
    root = cache_root() if root is None else root
    found: dict[Path, Entry] = {}
    newest: dict[Path, float] = {}
    for folder in (root / kind for kind in sorted(KINDS)):
        if not folder.is_dir():
            continue
        for path in sorted(folder.iterdir()):
            match = _ENTRY_FILE.match(path.name)
            try:
                if match is None or not (path.is_file() or _LEFTOVER_FOLDER.match(path.name)
                                         and path.is_dir() and not path.is_symlink()):
                    continue
                stat = path.stat()
            except FileNotFoundError:  # a build renamed or removed it just now
                continue
            stem = folder / match["stem"]
            entry = found.setdefault(stem, Entry(stem, folder.name))
            entry.files.append(path)
            entry.bytes += _size(path)
            if path.name.endswith(".lock"):
                entry.building = held(path)
                newest.setdefault(stem, stat.st_mtime)
                continue
            newest[stem] = max(newest.get(stem, 0.0), stat.st_mtime)
            if path.name == stem.name + ".json":
                with contextlib.suppress(OSError, ValueError, AttributeError, TypeError):
                    record = json.loads(path.read_text())
                    entry.fields = dict(record.get("fields", {}))
                    entry.about = dict(record.get("about", {}))
                entry.used = stat.st_mtime  # touched by every run that uses it
            else:
                entry.built = entry.built or not path.name.startswith(".")
    kept = [e for e in found.values() if e.stem in newest]
    for entry in kept:
        entry.used = entry.used or newest[entry.stem]  # no record: its newest file
    return sorted(kept, key=lambda e: (e.kind, e.name, -e.used))


def stale(entry: Entry) -> str | None:
    """Why no run of this install can use ``entry`` (None: one may, or a process builds it
    now): no record or no file (a build that never finished), an older cache layout, or
    built with another version of torch, ONNX Runtime or torchao than the one installed."""
    if entry.building:  # another process's, which it will finish
        return None
    if not entry.fields or not entry.built:
        return "unfinished build"
    if entry.fields.get("format") != FORMAT:
        return "older cache layout"
    for key, dist in _VERSIONED.items():
        if key in entry.fields and _release(entry.fields[key]) != _installed(dist):
            return f"built with {dist} {entry.fields[key]}"
    return None


def _release(version) -> str:
    """``2.14.1+cu130`` -> ``2.14.1``: a build's local label is not always in its metadata."""
    return str(version).split("+")[0]


@functools.cache  # a metadata lookup reads the path's folders: once per process
def _installed(dist: str) -> str | None:
    try:
        return _release(metadata.version(dist))
    except metadata.PackageNotFoundError:
        return None


def remove(entry: Entry) -> bool:
    """Delete ``entry``'s files, its lock file last, while holding that lock; False (nothing
    deleted) while a process builds it. A process waiting for the lock finds it removed and
    locks the new file of that name (see ``locks.hold``). A run that has loaded the entry keeps
    what it loaded; the next run that needs it builds it again."""
    lock = next((p for p in entry.files if p.name.endswith(".lock")), None)
    with hold(lock) as free:
        if not free:
            return False
        for path in entry.files:
            if path != lock:
                _delete(path)
        if lock is not None:
            lock.unlink(missing_ok=True)
    return True


@contextlib.contextmanager
def _locked(path: Path, what: str) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively (POSIX); say so when another process has it."""
    with hold(path.with_name(path.name + ".lock"), waiting_for=what):
        yield
