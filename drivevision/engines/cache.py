"""On-disk cache of built engines, keyed by everything that makes a built engine valid.

Each entry is ``<name>-<key>.<suffix>`` plus a ``.json`` sidecar holding the key fields
(weights id, input shape, precision, tool version, GPU name, ...) and the SHA-256 of the
file. An entry is used only when its sidecar matches the fields asked for and its bytes
match the hash; a missing, corrupt, stale or foreign entry is rebuilt with a message (the
message goes to ``log``), never run. Processes sharing the cache take turns on an entry
(a lock file beside it) and build into a temporary name first, so a reader never sees a
half-written file; what a killed build left under such a name is removed by the next build
of that entry (it holds the lock, so no live build owns them).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from drivevision.model import file_sha256

_log = logging.getLogger(__name__)
FORMAT = 1  # bump when the cache layout or export wrapping changes


def cache_root() -> Path:
    """``$DRIVEVISION_CACHE`` or ``~/.cache/drivevision``."""
    env = os.environ.get("DRIVEVISION_CACHE")
    return Path(env) if env else Path.home() / ".cache" / "drivevision"


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
    if stored.get("sha256") != file_sha256(path):
        return "its bytes do not match the recorded hash (corrupt or truncated)"
    return None


def store(path: Path, fields: dict, data: bytes | None = None) -> Path:
    """Record ``path`` (after writing ``data`` there atomically, if given) as valid."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if data is not None:
        tmp = temp_name(path)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    record = {"fields": {"format": FORMAT, **fields}, "sha256": file_sha256(path),
              "bytes": path.stat().st_size}
    tmp = temp_name(path.with_suffix(".json"))
    tmp.write_text(json.dumps(record, indent=1) + "\n")
    os.replace(tmp, path.with_suffix(".json"))
    return path


def temp_name(path: Path) -> Path:
    """A hidden name beside ``path`` that no other process uses (write there, then
    ``os.replace`` into place)."""
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_leftovers(path: Path) -> None:
    """Deletes the temporary files of killed builds of ``path``'s entry (its file and its
    sidecar), with a line saying how much space came back. Call with the entry's lock."""
    stale = [p for name in (path.name, path.with_suffix(".json").name)
             for p in path.parent.glob(f".{glob_escape(name)}.*.tmp") if p.is_file()]
    if stale:
        size = sum(p.stat().st_size for p in stale)
        for p in stale:
            p.unlink(missing_ok=True)
        _log.warning(f"Removed {len(stale)} unfinished file(s) of an interrupted build of "
                  f"{path.name} ({size / 1e6:.1f} MB)")


def glob_escape(name: str) -> str:
    """``name`` with glob's special characters taken literally."""
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)


def invalidate(path: Path) -> None:
    for p in (path, path.with_suffix(".json")):
        p.unlink(missing_ok=True)


def get_or_build(path: Path, fields: dict, build: Callable[[Path], None], *,
                 what: str, log: Callable[[str], None] | None = None) -> Path:
    """``path`` when valid, else ``build(path)`` writes it and it is recorded.

    ``build`` writes to the path it is given (a temporary name, renamed into place after).
    ``log`` gets one line when an existing entry is rejected (default: a logging warning).
    A valid entry is used without writing anything (the cache may be read-only); the lock
    is taken only to build.
    """
    if check(path, fields) is None:  # no lock needed to read: a read-only cache works
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path, what):
        reason = check(path, fields)
        if reason is None:
            return path
        if reason != "not built yet":
            (log or _log.warning)(f"Rebuilding {what}: cached {path.name} is not usable: "
                                  f"{reason}")
            invalidate(path)
        remove_leftovers(path)
        tmp = temp_name(path)
        try:
            build(tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return store(path, fields)


@contextlib.contextmanager
def _locked(path: Path, what: str) -> Iterator[None]:
    """Hold ``<path>.lock`` exclusively (POSIX); say so when another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows: no lock; temporary names still keep files whole
        yield
        return
    with open(path.with_name(path.name + ".lock"), "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log.warning(f"Waiting for another process to finish building {what}")
            fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
