"""What a batch works on: the inputs a command line names, each with its outputs' place.

An input is a video file or a folder of images (one sequence). Folders given are searched
recursively; each input's outputs go under the output folder at its path relative to the
root it was found under (``footage/2026-11-28/front_0001.mp4`` found under ``footage/``:
``OUT/2026-11-28/front_0001.jsonl``). Hidden files and folders, the folders a NAS or the
system keeps (``drivevision.io.images.METADATA_FOLDERS``: thumbnails, recycle bins) and the
output folder itself are never inputs.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from drivevision.io.files import VIDEO_SUFFIXES
from drivevision.io.images import IMAGE_SUFFIXES, metadata_folder, natural_key

# a folder search takes files with VIDEO_SUFFIXES as video; a file named on the command line
# is tried whatever its suffix, unless plainly not footage (NOT_MEDIA_SUFFIXES)
# the batch's own files in the output folder are batch.json, batch.csv and
# batch-manifest.jsonl: an input's outputs (REL.jsonl, REL.csv, ...) may not take them
RESERVED = frozenset({"batch", "batch-manifest"})
# plainly not footage: a file named with one of these is refused before any model loads
# (a list of inputs given without --list, an earlier run's detections)
NOT_MEDIA_SUFFIXES = frozenset({".txt", ".csv", ".json", ".jsonl", ".yaml", ".yml", ".md",
                                ".log"})
_GLOB_CHARS = frozenset("*?[")


@dataclass(frozen=True)
class Job:
    """One input: ``source`` (absolute path of a video file or image folder), ``rel`` (its
    outputs' path under the output folder, without suffix, ``/``-separated) and ``kind``
    ("video" or "images")."""

    source: str
    rel: str
    kind: str

    def outputs(self, out_dir: Path, *, video: bool, csv: bool, mot: bool) -> dict[str, Path]:
        """Output kind -> path: always ``jsonl``; ``video`` (.mp4), ``csv``, ``mot``
        (.mot.txt, MOTChallenge text) when asked."""
        base = out_dir / self.rel
        paths = {"jsonl": base.with_name(base.name + ".jsonl")}
        for kind, wanted, suffix in (("video", video, ".mp4"), ("csv", csv, ".csv"),
                                     ("mot", mot, ".mot.txt")):
            if wanted:
                paths[kind] = base.with_name(base.name + suffix)
        return paths


def find_jobs(inputs: list[str], out_dir: Path, list_file: str | None = None,
              skip: Iterable[Path] = (), passed: list[str] | None = None,
              metadata: list[Path] | None = None) -> list[Job]:
    """The jobs for ``inputs`` (files, folders, globs) and the lines of ``list_file`` (one
    path per line; relative paths are relative to the list file's folder; blank lines and
    ``#`` comments skipped), in the order given, each input once. One input is named relative
    to itself (a folder, a glob's fixed part) or its folder (a file); several are named
    relative to the folder holding them all (``day1/ day2/``: ``day1/clip``, ``day2/clip``),
    as the lines of a list are, so that an unquoted glob the shell expanded names them as
    the quoted one does. A folder search passes
    over ``out_dir`` and the folders in ``skip`` (the batch's datasets). What a glob matches
    that is plainly not footage (``NOT_MEDIA_SUFFIXES``: ``notes.txt`` in ``footage/*``)
    or a link to nothing is passed over, and appended to ``passed`` with why. A NAS's or
    the system's folders (``metadata_folder``) under a folder searched or a glob's start
    are passed over, and appended to ``metadata`` (absolute paths), each once.

    Raises ValueError, in one line, for a name that matches nothing (or nothing but what is
    passed over), no input at all, or two inputs whose outputs would have the same name.
    """
    skipped = frozenset({out_dir.resolve(), *(Path(p).resolve() for p in skip)})
    passed = [] if passed is None else passed
    found: list[Path] = []
    jobs: list[Job] = []
    shared = _shared_root(inputs) if len(inputs) > 1 else None
    for pattern in inputs:
        jobs.extend(_expand(pattern, skipped, passed, found, shared))
    if list_file is not None:
        jobs.extend(_listed(Path(list_file), skipped, found))
    if metadata is not None:
        metadata.extend(dict.fromkeys(found))
    jobs = list({job.source: job for job in reversed(jobs)}.values())[::-1]  # first wins
    if not jobs:
        kept = (f" (passed over the folders a NAS or the system keeps: "
                f"{', '.join(map(str, dict.fromkeys(found)))})" if found else "")
        raise ValueError("No inputs: expected video files, folders with videos or images, "
                         f"globs or --list FILE{kept}")
    _check_unique(jobs)
    return jobs


def _shared_root(inputs: list[str]) -> Path | None:
    """The folder holding every input given: the deepest one above each folder, glob (its
    fixed part) and file; None where there is none (another drive) or an input is missing
    (``_expand`` says so)."""
    roots = []
    for pattern in inputs:
        if _GLOB_CHARS & set(pattern):
            roots.append(_glob_root(pattern))
            continue
        path = Path(pattern)
        if not path.exists():
            return None
        path = path.resolve()
        roots.append(path if path.is_dir() else path.parent)
    try:
        return Path(os.path.commonpath(roots))
    except ValueError:
        return None


def _expand(pattern: str, skipped: frozenset[Path], passed: list[str],
            metadata: list[Path], shared: Path | None = None) -> list[Job]:
    if not _GLOB_CHARS & set(pattern):
        path = Path(pattern)
        if not path.exists():
            raise ValueError(_missing(path, pattern))
        _check_media(path, pattern)
        if shared is not None and path.is_dir() and path.resolve() != shared \
                and _within(path.resolve(), skipped):
            return []  # the output folder or a dataset's among others: footage/* unquoted
        return _jobs_at(path.resolve(), shared, skipped, metadata)
    matches = sorted(glob.glob(pattern, recursive=True), key=lambda p: natural_key(Path(p)))
    if not matches:
        raise ValueError(f"Nothing matches {pattern}")
    root = _glob_root(pattern)
    inside = {m: _metadata_part(Path(m).resolve(), root) for m in matches}
    metadata.extend(folder for folder in inside.values() if folder)
    matches = [m for m in matches if not inside[m]]
    if not matches:
        raise ValueError(f"Nothing but folders a NAS or the system keeps (thumbnails, recycle "
                         f"bins) and what is in them matches {pattern}")
    matches = [m for m in matches if not _within(Path(m).resolve(), skipped)]
    if not matches:
        raise ValueError(f"Nothing but the output folder and what is in it matches {pattern}")
    not_footage = {m: _not_footage(Path(m)) for m in matches}
    matches = [m for m in matches if not not_footage[m]]
    passed_here = [f"{m} ({why})" for m, why in not_footage.items() if why]
    if not matches:
        raise ValueError(f"Nothing but what is not footage matches {pattern}: "
                         f"{', '.join(passed_here[:5])}{', ...' if len(passed_here) > 5 else ''}")
    passed.extend(passed_here)
    jobs = []
    for match in matches:
        jobs.extend(_jobs_at(Path(match).resolve(), shared or root, skipped, metadata))
    return jobs


def _within(path: Path, folders: frozenset[Path]) -> bool:
    """Whether ``path`` (resolved) is one of ``folders`` or lies in one."""
    return any(path.is_relative_to(folder) for folder in folders)


def _metadata_part(path: Path, root: Path) -> Path | None:
    """The NAS's or system's folder (``metadata_folder``) that ``path`` is or lies in,
    below ``root``, or None."""
    if not path.is_relative_to(root):
        return None
    folder = root
    for part in path.relative_to(root).parts:
        folder = folder / part
        if metadata_folder(part):
            return folder
    return None


def _missing(path: Path, name: str) -> str:
    if path.is_symlink():
        return f"{name} is a link to {os.readlink(path)}, which does not exist"
    return f"No such file or folder: {name}"


def _not_footage(path: Path) -> str | None:
    """Why a glob's match is passed over (a link to nothing, a file plainly not footage), or
    None."""
    if not path.exists():
        return "a link to a missing file"
    suffix = path.suffix.lower()
    return f"a {suffix} file" if suffix in NOT_MEDIA_SUFFIXES and path.is_file() else None


def _check_media(path: Path, name: str) -> None:
    """Refuse a file named on the command line that is plainly not a video or an image."""
    suffix = path.suffix.lower()
    if suffix not in NOT_MEDIA_SUFFIXES or not path.is_file():
        return
    hint = (f": if it lists inputs one path a line, give it as --list {name}"
            if suffix == ".txt" else "")
    raise ValueError(f"{name} is a {suffix} file, not a video, an image or a folder{hint}")


def _glob_root(pattern: str) -> Path:
    """The folder a glob starts from: its part before the first wildcard."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed).resolve() if fixed else Path.cwd()


def _listed(list_file: Path, skipped: frozenset[Path], metadata: list[Path]) -> list[Job]:
    try:
        lines = list_file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read --list {list_file}: {getattr(e, 'strerror', None) or e}"
                         ) from None
    names = [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]
    paths = [(list_file.parent / n).resolve() for n in names]
    for name, path in zip(names, paths):
        if not path.exists():
            raise ValueError(f"No such file or folder: {name} (in --list {list_file})")
    if not paths:
        return []
    root = Path(os.path.commonpath([p.parent for p in paths]))
    jobs = []
    for path in paths:
        jobs.extend(_jobs_at(path, root, skipped, metadata))
    return jobs


def _jobs_at(path: Path, root: Path | None, skipped: frozenset[Path],
             metadata: list[Path]) -> list[Job]:
    """The jobs at ``path`` (a file: itself; a folder: searched), named relative to
    ``root`` (None: a file's own folder, or the folder searched)."""
    if path.is_dir():
        return _search(path, root or path, skipped, metadata)
    if _is_image(path):  # a lone image: a sequence of one
        return [_job(path, root or path.parent, "images")]
    return [_job(path, root or path.parent, "video")]


def _search(folder: Path, root: Path, skipped: frozenset[Path],
            metadata: list[Path]) -> list[Job]:
    """Videos anywhere under ``folder``, and each folder holding images as one input; the
    NAS's or system's folders passed over are appended to ``metadata``. A link to a folder
    outside ``folder`` is searched as a folder is (``footage/card -> /media/sd/DCIM``), each
    once however many links lead to it; one to a folder inside is passed over (the folder is
    searched under its own name), as is one to a folder above."""
    jobs = []
    seen = {folder.resolve()}
    inside = folder.resolve()
    for here, dirs, files in os.walk(folder, followlinks=True):
        here_path = Path(here)
        metadata.extend(here_path / d for d in sorted(dirs, key=_natural)
                        if metadata_folder(d))
        dirs[:] = [d for d in sorted(dirs, key=_natural)
                   if not d.startswith(".") and not metadata_folder(d)
                   and _first_visit(here_path / d, inside, seen, skipped)]
        names = sorted((f for f in files if not f.startswith(".")), key=_natural)
        if any(_is_image(here_path / f) for f in names):
            jobs.append(_job(here_path, root, "images"))
        jobs.extend(_job(here_path / f, root, "video") for f in names
                    if Path(f).suffix.lower() in VIDEO_SUFFIXES)
    return jobs


def _first_visit(folder: Path, inside: Path, seen: set[Path],
                 skipped: frozenset[Path]) -> bool:
    """Whether a search under ``inside`` goes into ``folder``: not skipped, not a link to a
    folder inside ``inside`` or above it, and not seen before (then marked seen)."""
    target = folder.resolve()
    if target in skipped or target in seen:
        return False
    if folder.is_symlink() and (target.is_relative_to(inside) or inside.is_relative_to(target)):
        return False
    seen.add(target)
    return True


def _job(path: Path, root: Path, kind: str) -> Job:
    if kind == "images" and path.is_file():
        rel = Path(os.path.relpath(path.parent, root)) / path.stem
    elif kind == "images" and path == root:
        rel = Path(path.name or "images")  # the folder given holds the images itself
    else:
        rel = Path(os.path.relpath(path, root))
        rel = rel.with_name(rel.stem) if kind == "video" else rel
    parts = [p for p in rel.parts if p != "."]
    if not parts or ".." in parts:
        parts = [path.stem or "input"]
    return Job(str(path), "/".join(parts), kind)


def check_outputs_spare_inputs(jobs: list[Job], out_dir: Path, *, video: bool, csv: bool,
                               mot: bool) -> None:
    """Refuse, before any work, outputs that would take an input's place: ``--out`` the
    footage's own folder with ``--video`` (``clip.mp4``'s annotated video is ``clip.mp4``;
    ``CLIP.MP4``'s, ``CLIP.mp4``, is the same file where names ignore case, and an input of
    the next run where they do not). One line, naming the first and how many."""
    inputs = {job.source.casefold(): job.source for job in jobs}
    taken = [(path, inputs[str(path).casefold()]) for job in jobs
             for path in job.outputs(out_dir, video=video, csv=csv, mot=mot).values()
             if str(path).casefold() in inputs]
    if taken:
        path, source = taken[0]
        more = f" (and {len(taken) - 1} more)" if len(taken) > 1 else ""
        raise ValueError(f"--out {out_dir} would write {path} over the input {source}{more}: "
                         "give --out a folder apart from the footage")


def _check_unique(jobs: list[Job]) -> None:
    seen: dict[str, Job] = {}
    for job in jobs:
        key = job.rel.casefold()
        other = seen.get(key)
        if other is not None:
            raise ValueError(f"{other.source} and {job.source} would write the same outputs "
                             f"({job.rel}.*); give them in separate batches or rename one")
        if key in RESERVED:
            raise ValueError(f"{job.source}'s outputs would take the name of the batch's own "
                             f"report ({job.rel}.*); rename it")
        seen[key] = job


def _is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and path.is_file()


def _natural(name: str) -> list:
    return natural_key(Path(name))
