"""A batch's dataset folders (``--yolo``, ``--crops``): one of each for the whole run, every
input a part of it under its outputs' name (``dataset_part``: ``images/REL/frame_000123.jpg``,
``labels/REL/frame_000123.txt``, ``CLASS/REL/frame_000123_0.jpg``), written by the
workers at once (``recorded.SharedPart``, a journal each) and claimed, checked and tidied
here, by the driver.

What keeps a dataset right across reruns: it holds the inputs the manifest records as
done with this run's settings (those settings include the dataset folders) and the inputs
in progress, nothing else. So a run starts by removing every other input's files (an
interrupted one's, those about to be redone, another run's), an input that fails or is
interrupted loses its files at once, a retried one starts afresh, and ``data.yaml`` and
``classes.txt``, the same for every input done with the same settings, are written whole
when the first input is done.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from drivevision.errors import SinkError
from drivevision.io.claims import STDOUT, check_distinct, check_not_input, claim_folder
from drivevision.io.dataset_sinks import (
    CROPS_FOLDER,
    YOLO_FOLDER,
    YOLO_TOP,
    frame_stems,
    yolo_top,
)
from drivevision.io.images import folder_images
from drivevision.io.recorded import (
    Layout,
    SharedPart,
    check_folder_output,
    remove_empty_parents,
)
from drivevision.labels import counted

KINDS = (("yolo", "--yolo", YOLO_FOLDER), ("crops", "--crops", CROPS_FOLDER))


def dataset_folders(settings) -> list[tuple[str, str, Path, Layout]]:
    """(kind, option, folder, layout) of each dataset a ``BatchSettings`` asks for."""
    return [(kind, option, Path(getattr(settings, kind)), layout)
            for kind, option, layout in KINDS if getattr(settings, kind)]


def dataset_part(rel: str) -> str:
    """Input ``rel``'s name in a dataset: ``rel``, but a folder in it named ``images``
    (or that and underscores) gets one more ``_``: trainers (Ultralytics) find an image's
    labels by the last ``/images/`` of its path."""
    return "/".join(p + "_" if re.fullmatch(r"images_*", p) else p for p in rel.split("/"))


def part_of(name: str) -> str | None:
    """The ``dataset_part`` a dataset file (``/``-separated, relative to the folder) belongs
    to: its folders but the first (``images/PART/NAME``: ``PART``; ``""`` for a ``detect``
    run's ``images/NAME``); None for a file at the top (``data.yaml``)."""
    parts = name.split("/")
    return "/".join(parts[1:-1]) if len(parts) > 1 else None


def part_files(folder: Path, part: str, *, hidden: bool = False) -> list[Path]:
    """The files of ``part`` in a dataset ``folder``: those right in ``SUB/PART`` for
    each of its top folders ``SUB`` (``images``, ``labels``, a class); with ``hidden``, the
    hidden ones too (a file a killed worker was writing)."""
    found = []
    with contextlib.suppress(OSError):
        for sub in sorted(folder.iterdir()):
            if not sub.is_dir() or sub.name.startswith("."):
                continue
            with contextlib.suppress(OSError):
                found += [e for e in sorted((sub / part).iterdir())
                          if e.is_file() and (hidden or not e.name.startswith("."))]
    return found


def part_counts(settings, rel: str) -> dict[str, int]:
    """How many files input ``rel`` has in each dataset folder, by kind."""
    return {kind: len(part_files(folder, dataset_part(rel)))
            for kind, _, folder, _ in dataset_folders(settings)}


def check_datasets(settings, out_dir: Path, jobs) -> None:
    """ValueError, in one line, for dataset folders that cannot be made, are an input, are
    ``out_dir`` or hold it, or would take in an input's other outputs, and for a folder of
    images two of which would share a name there (``a.png`` and ``a.jpg``). (A missing
    folder is made, with its parents, as ``--out`` is.)"""
    folders = dataset_folders(settings)
    check_distinct([out_dir, *(f for _, _, f, _ in folders)],
                   ["--out", *(option for _, option, _, _ in folders)])
    for _, option, folder, _ in folders:
        if str(folder) == STDOUT:
            raise ValueError(f"{option} writes a folder; give a folder name, not -")
        if folder.exists() and not folder.is_dir():
            raise ValueError(f"{option} {folder} is a file; expected a folder (made if "
                             "missing)")
        check_not_input([job.source for job in jobs], [folder])
        if folder in out_dir.parents:
            raise ValueError(f"--out {out_dir} is inside {option} {folder}: the inputs' "
                             "outputs would mix with the dataset; give them separate folders")
        inside = [job for job in jobs if folder in (out_dir / job.rel).parents]
        if inside:
            raise ValueError(f"{inside[0].source}'s outputs would go into {option} {folder} "
                             "(inside --out): give the dataset another folder")
    for job in jobs if folders else ():
        if job.kind == "images" and Path(job.source).is_dir():
            try:
                frame_stems(_image_names(Path(job.source)))
            except ValueError as e:
                raise ValueError(f"{job.source}: {e}") from None


def _image_names(folder: Path) -> list[str]:
    """The names of a folder's images, as its source reads them."""
    return sorted(p.name for p in folder_images(folder))


@contextlib.contextmanager
def claim_datasets(settings):
    """This run's hold on its dataset folders; a ValueError for one holding files no run
    wrote, a SinkError for one another run writes into."""
    with contextlib.ExitStack() as stack:
        for _, option, folder, layout in dataset_folders(settings):
            folder.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(claim_folder(folder))
            check_folder_output(option, folder, layout)
        yield


class Datasets:
    """The run's dataset folders, as the driver keeps them (see the module's doc)."""

    def __init__(self, settings):
        self.folders = dataset_folders(settings)
        self.top_written = False
        self.notes: list[str] = []

    def prepare(self, plan) -> None:
        """Before any work: remove the files of every input not done with these settings
        (and the top files, if no input is), and merge the journals into the record."""
        keep = {rel for rel, row in plan.rows.items() if row["status"] == "skipped"}
        keep = {dataset_part(rel) for rel in keep} | {
            dataset_part(rel) for rel, record in plan.manifest.records.items()
            if rel not in plan.rows and record.get("settings") == plan.key}
        for kind, option, folder, layout in self.folders:
            folder.mkdir(parents=True, exist_ok=True)
            earlier, foreign = layout.earlier(folder)
            if foreign:
                raise SinkError(layout.foreign_message(option, folder, foreign))
            gone = {part_of(n) for n in earlier} - keep - {None}
            gone |= {dataset_part(job.rel) for job in plan.todo}
            removed = sum(self._drop(folder, rel, set(earlier)) for rel in gone)
            if kind == "yolo" and not keep:  # they may name other classes
                for name in set(YOLO_TOP) & set(earlier):
                    (folder / name).unlink(missing_ok=True)
                    removed += 1
            layout.rewrite(folder, layout.earlier(folder)[0])  # no worker writes yet
            if removed:
                self.notes.append(f"{option} {folder}: removed {counted(removed, 'file')} "
                                  "of inputs not done with these settings (interrupted, "
                                  "redone now, or of an earlier run)")

    def drop(self, rel: str) -> None:
        """Remove input ``rel``'s files (it failed, was interrupted, or is tried again)."""
        for _, _, folder, layout in self.folders:
            self._drop(folder, dataset_part(rel), layout.recorded(folder))

    def done(self, result) -> None:
        """An input is done: write ``data.yaml`` and ``classes.txt`` once, whole, unless
        they already say the same."""
        if self.top_written or not result.classes:
            return
        for kind, _, folder, layout in self.folders:
            if kind != "yolo":
                continue
            changed = {name: text for name, text in yolo_top(result.classes).items()
                       if _text(folder / name) != text}
            if changed:
                part = SharedPart(folder, "", layout)
                try:
                    for name, text in changed.items():
                        part.put(name, text.encode())
                finally:
                    part.close()
        self.top_written = True

    def summary(self, rows: list[dict]) -> dict[str, dict]:
        """kind -> the folder and the files every input listed has in it."""
        return {kind: {"path": os.fspath(folder),
                       "files": sum(r["dataset"].get(kind, 0) for r in rows)}
                for kind, _, folder, _ in self.folders}

    @staticmethod
    def _drop(folder: Path, part: str, recorded: set[str]) -> int:
        removed = 0
        for path in part_files(folder, part, hidden=True):
            name = path.relative_to(folder).as_posix()
            if name in recorded or (path.name.startswith(".") and ".part" in path.name):
                path.unlink(missing_ok=True)
                removed += not path.name.startswith(".")
                remove_empty_parents(path, folder)
        return removed


def _text(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
