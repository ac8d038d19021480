"""What the commands that write files share: checks of their outputs before the model loads
(overwrites, folders, streams, claims), what killed runs left beside them, stdout, a new
folder for the results of a run given no output."""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path


def check_outputs(inputs: list[str], outputs: list[str], videos: list[str], *,
                  clean: bool = False, options: list[str] | None = None,
                  folders: list[str] = ()) -> contextlib.ExitStack:
    """Refuse, before the model loads, outputs that would overwrite an input or each other,
    that land in a missing or read-only folder, that another run is writing, or videos in a
    format we cannot write. Returns the run's claims on its outputs (a context to hold for
    the run). Says which part files killed runs left in the output folders, or removes them
    when ``clean`` is set (beside the folder outputs ``folders`` too). ``options`` names the
    option that gave each output, for messages.
    """
    from drivevision.io.claims import (
        STDOUT,
        Claim,
        check_distinct,
        is_stream,
        missing_folder,
        target_of,
    )
    from drivevision.io.leftovers import leftovers
    from drivevision.io.video_sink import check_video_name

    check_distinct(outputs, options)
    files = [target_of(p).resolve() for p in outputs if not is_stream(p)]
    for stream in outputs:
        if is_stream(stream) and stream != STDOUT:
            _check_stream(stream)
    for path in files:
        if not path.parent.is_dir():
            raise ValueError(f"Output folder {path.parent} {missing_folder(path.parent)}")
        if path.is_dir() or not os.access(path.parent, os.W_OK):
            raise ValueError(f"Cannot write {path}: " + (
                "it is a folder; give a file name" if path.is_dir() else "its folder is read-only"))
        if any(Path(s).exists() and Path(s).resolve() == path for s in inputs):
            raise ValueError(f"An output path is an input ({path}); refusing to overwrite it")
    for video in videos:
        if video == STDOUT:
            raise ValueError("Expected a video file name, but got - (stdout is for JSONL)")
        check_video_name(video)
    clean_or_warn(leftovers([p.parent for p in files] + [Path(f).parent for f in folders]), clean)
    claims = contextlib.ExitStack()
    with claims:
        for path in files:
            claims.enter_context(Claim(path))
        return claims.pop_all()


def clean_or_warn(found: list[Path], clean: bool) -> None:
    """What killed runs left (``leftovers.leftovers``): removed with ``--clean``, saying what,
    else named in a warning."""
    from drivevision.io.leftovers import leftover_names, leftover_warning, remove_leftovers

    if found and clean:
        remove_leftovers(found)
        print(f"drivevision: removed {leftover_names(found)}", file=sys.stderr)
    elif found:
        print(f"drivevision: warning: {leftover_warning(found)}", file=sys.stderr)


def _check_stream(path: str) -> None:
    """Refuse an output written straight through (a device, a FIFO, a path under /dev or
    /proc) that cannot be opened to write: a missing one must be one we may create (the
    probe is removed again). A FIFO is not opened: that would wait for its reader."""
    if os.path.exists(path):
        if not os.access(path, os.W_OK):
            raise ValueError(f"Cannot write {path}: permission denied")
        return
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
    except OSError as e:
        raise ValueError(f"Cannot write {path}: {e.strerror or e}") from None
    with contextlib.suppress(OSError):
        os.unlink(path)


def writes_stdout(outputs: list[str | None]) -> bool:
    """True when an output goes to stdout: then reports must go to stderr."""
    return any(p is not None and (p == "-" or os.path.realpath(p) == os.path.realpath(
        "/dev/stdout")) for p in outputs)


def new_folder(parent: Path, stem: str) -> Path:
    """A new folder ``parent/STEM`` (``STEM2``, ... where that exists); ValueError in one
    line where it cannot be made (``runs`` a file, a read-only folder)."""
    for n in range(1, 10_000):
        folder = parent / (stem if n == 1 else f"{stem}{n}")
        try:
            parent.mkdir(parents=True, exist_ok=True)
            folder.mkdir()
        except (FileExistsError, NotADirectoryError):
            if folder.is_dir():
                continue
            raise ValueError(f"Cannot make {folder} for the results: {_blocker(folder)} is "
                             "a file, not a folder; give the outputs (-o, --jsonl) or run "
                             "elsewhere") from None
        except OSError as e:
            raise ValueError(f"Cannot make {folder} for the results: {e.strerror or e}; give "
                             "the outputs (-o, --jsonl) or run elsewhere") from None
        return folder
    raise ValueError(f"No free folder name for {stem} in {parent}; clean it up")


def _blocker(path: Path) -> Path:
    """The first of ``path`` and its parents that exists and is not a folder."""
    return next((p for p in reversed([path, *path.parents]) if p.exists() and not p.is_dir()),
                path)
