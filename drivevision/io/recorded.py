"""Folder outputs that record what they write, so that a later run replaces exactly that.

A recorded folder lists in a hidden file (its ``Layout.record``) every file a run wrote into
it, each name before its file lands. A later run into the folder replaces exactly those: the
earlier run's files it does not write again are removed when it closes, finished or not, so
the folder never mixes two runs; and a folder holding a file no run recorded is refused, so
a user's file is never touched. Each file is written under a hidden name and moved into
place, so a file in the folder is always whole. The folder is claimed for the run, as a file
output is (``claims.claim_folder``): a second run writing into it at once is refused.

Several processes may write one recorded folder at once (a batch's dataset, each input under
its own names: ``SharedPart``): each lists its names in a journal of its own (in the hidden
``Layout.journals`` folder), which counts as part of the record until the next run into the
folder merges the journals into it.

The ``Layout`` says which files of a folder count: ``image_sinks``' folder of images keeps
its top-level images, ``dataset_sinks``' datasets the files in subfolders and a few named
top-level ones; other files are left to their owner.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from hashlib import sha256
from pathlib import Path
from typing import TextIO

from drivevision.errors import SinkError, WriteError, unwritable
from drivevision.io.claims import (
    PART_MARK,
    STDOUT,
    claim_folder,
    hidden_name,
    hold_folder,
    missing_folder,
)
from drivevision.io.sinks import Sink
from drivevision.labels import counted


@dataclass(frozen=True)
class Layout:
    """A kind of recorded folder: the name of its ``record`` file, the ``noun`` its files
    are counted in ("image", "file"), and ``files``: the files of a folder that count, as
    ``/``-separated paths relative to it (never hidden ones)."""

    record: str
    noun: str
    files: Callable[[Path], list[str]]

    @property
    def header(self) -> str:
        return (f"# the {self.noun}s drivevision wrote into this folder: the next run into "
                "it replaces them, and touches no other file\n")

    def earlier(self, folder: str | os.PathLike) -> tuple[list[str], list[str]]:
        """The files of ``folder`` that count (none if it does not exist), sorted, as two
        lists: those an earlier run recorded writing (a new run replaces them) and the
        others (no run may overwrite or remove them)."""
        folder = Path(folder)
        if not folder.is_dir():
            return [], []
        recorded = self.recorded(folder)
        found = sorted(self.files(folder))
        return [n for n in found if n in recorded], [n for n in found if n not in recorded]

    def journals(self, folder: Path) -> Path:
        """The hidden folder of the journals of ``SharedPart`` writers."""
        return folder / f"{Path(self.record).stem}.d"

    def recorded(self, folder: Path) -> set[str]:
        """The names the record and the journals list."""
        names: set[str] = set()
        for path in [folder / self.record, *sorted(self.journals(folder).glob("*.txt"))]:
            try:
                names.update(path.read_text(encoding="utf-8").splitlines())
            except OSError:
                continue
        return names

    def rewrite(self, folder: Path, names) -> None:
        """Make the record list ``names`` (written whole), and drop the journals, which
        it now covers."""
        record = folder / self.record
        tmp = record.with_name(f"{record.name}.part.{os.getpid()}")
        try:
            tmp.write_text(self.header + "".join(f"{n}\n" for n in sorted(names)),
                           encoding="utf-8")
            os.replace(tmp, record)
        except OSError:
            tmp.unlink(missing_ok=True)
            return
        shutil.rmtree(self.journals(folder), ignore_errors=True)

    def foreign_message(self, label: str, folder: str | os.PathLike, names: list[str]) -> str:
        """One line refusing the folder output ``label`` names, which holds ``names`` that
        no run recorded writing."""
        shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3
                                        else "")
        return (f"{label} folder {folder} already holds {counted(len(names), self.noun)} "
                f"that no drivevision run wrote there ({shown}); our {self.noun}s would mix "
                "with them: choose a new or empty folder")


def check_folder_output(label: str, folder: str | os.PathLike,
                        layout: Layout | None = None) -> list[str]:
    """ValueError, naming the output by ``label`` ("Output", "--yolo"), for a folder output
    that cannot be made (stdout, a file, a missing parent) or, given its ``layout``, that
    holds files no run wrote. Returns the files an earlier run wrote there (none without a
    ``layout``)."""
    folder = Path(folder)
    if str(folder) == STDOUT:
        raise ValueError(f"{label} writes a folder; give a folder name, not -")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{label} {folder} is a file; expected a folder (made if missing)")
    parent = folder.resolve().parent
    if not parent.is_dir():
        raise ValueError(f"Output folder {parent} {missing_folder(parent)}")
    if not folder.exists():
        try:  # fail now, not at the first frame
            folder.mkdir()
            folder.rmdir()
        except OSError as e:
            raise ValueError(f"Cannot make {label.lower()} folder {folder}: "
                             f"{e.strerror or e}") from None
    if layout is None:
        return []
    earlier, foreign = layout.earlier(folder)
    if foreign:
        raise ValueError(layout.foreign_message(label, folder, foreign))
    return earlier


class _Writer:
    """Writes files into ``path`` by relative name, each listed in ``_record`` before it
    lands and written whole."""

    path: Path
    _record: TextIO

    def _start(self) -> None:
        self.earlier: set[str] = set()
        self.written: dict[str, None] = {}  # in the order written (a label before its image)
        self.root = self.path  # where files are written while the run lasts
        self.notes: list[str] = []
        self._closed = False

    def put(self, rel: str, data: bytes) -> None:
        """Write ``data`` as the file ``rel`` (``/``-separated, below the folder)."""
        self.put_with(rel, lambda tmp: tmp.write_bytes(data))

    def put_with(self, rel: str, write: Callable[[Path], None]) -> None:
        """Make the file ``rel`` with ``write(tmp)``: listed in the record first, written
        under a hidden name ``tmp``, then moved into place."""
        self.put_together({rel: write})

    def put_together(self, files: dict[str, Callable[[Path], None] | bytes]) -> None:
        """Make the files ``rel -> write(tmp)`` (or bytes) as one: each is listed in the
        record and written whole under a hidden name first, then all are moved into place in
        order, so a failure on the way (a full disk, an image that cannot be encoded) leaves
        none of them, nor an earlier run's file of their names: a YOLO label never stays
        without its image, nor an image without its label."""
        staged: list[tuple[Path, Path]] = []
        new = [rel for rel in files if rel not in self.written]
        try:
            for rel, write in files.items():
                staged.append(self._stage(rel, write))
            for tmp, target in staged:
                rel = target.relative_to(self.root).as_posix()
                os.replace(tmp, target)
        except BaseException as e:
            for tmp, target in staged:
                tmp.unlink(missing_ok=True)
                if len(files) > 1:
                    target.unlink(missing_ok=True)
            for name in new:  # not written after all
                self.written.pop(name, None)
            if isinstance(e, OSError):  # named in the folder given, not where it is written
                raise WriteError(f"Cannot write {self.path / rel}: {unwritable(e)}", e) from e
            raise

    def _stage(self, rel: str, write: Callable[[Path], None] | bytes) -> tuple[Path, Path]:
        """``rel`` listed in the record and written under its hidden name: (that, target)."""
        if rel not in self.written and rel not in self.earlier:
            self._record.write(f"{rel}\n")  # first, so a killed run leaves none unlisted
            self._record.flush()
        self.written[rel] = None
        target = self.root / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.part{target.suffix}")
        try:
            write(tmp) if callable(write) else tmp.write_bytes(write)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, target

    def remove_earlier(self, rel: str) -> None:
        """Remove an earlier run's ``rel`` now, before this run writes what replaces it
        (unless this run writes aside, and replaces the earlier run only when done)."""
        if rel in self.earlier and rel not in self.written and self.root == self.path:
            (self.path / rel).unlink(missing_ok=True)


class SharedPart(_Writer):
    """One writer's files in a recorded folder that others write at the same time, each
    under names of its own (``part``, e.g. a batch's input): its names go to its own
    journal (``Layout.journals``), so no two writers append to one file. It claims nothing,
    replaces nothing and tidies nothing: the run that claimed the folder does."""

    def __init__(self, path: str | os.PathLike, part: str, layout: Layout):
        self.path = Path(path)
        self._start()
        journal = layout.journals(self.path) / f"{sha256(part.encode()).hexdigest()[:20]}.txt"
        try:
            journal.parent.mkdir(parents=True, exist_ok=True)
            self._record = journal.open("a", encoding="utf-8")
        except OSError as e:
            raise SinkError(f"Cannot write {journal}: {e.strerror or e}") from e

    def close(self) -> None:
        self._closed = True
        self._record.close()


class RecordedTree(_Writer):
    """A claimed folder output of the kind ``layout`` describes, whose files this run writes
    by relative path (``put``) and lists in the record; ``close`` removes the earlier run's
    files this run did not write again. ``label`` names the output in messages."""

    def __init__(self, path: str | os.PathLike, label: str, layout: Layout):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"{label} {path} is a file; expected a folder")
        if not self.path.parent.is_dir():
            raise SinkError(f"Output folder {self.path.parent} does not exist")
        self.label, self.layout = label, layout
        self._start()
        self._claim = claim_folder(self.path)
        try:
            self._open()
        except BaseException:
            self._claim.release()
            raise

    def _open(self) -> None:
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as e:
            raise SinkError(f"Cannot make {self.label.lower()} folder {self.path}: "
                            f"{e.strerror or e}") from e
        earlier, foreign = self.layout.earlier(self.path)
        if foreign:
            raise SinkError(self.layout.foreign_message(self.label, self.path, foreign))
        self.earlier, self.written = set(earlier), {}
        record = self.path / self.layout.record
        try:
            self._record = record.open("a", encoding="utf-8")
        except OSError as e:
            raise SinkError(f"Cannot write {record}: {e.strerror or e}") from e
        if self._record.tell() == 0:
            self._record.write(self.layout.header)
        self._hold = self._aside() if self.earlier else None

    def _aside(self) -> int | None:
        """Write into a hidden folder beside this one, ``.NAME.part.PID`` (its lock held),
        so that the earlier run's files are replaced only by a finished run; where that
        cannot be (a parent that is read-only or on another file system), in place."""
        folder = self.path.resolve()
        staging = hidden_name(folder, f"part.{os.getpid()}")
        try:
            if folder.parent.stat().st_dev != folder.stat().st_dev:
                return None
            staging.mkdir()
            hold = hold_folder(staging)
        except OSError:
            return None
        self.root = staging
        return hold

    def close(self, finished: bool = True, why: str = "did not finish") -> None:
        """Remove the earlier run's files this run did not write again (and the folders that
        leaves empty), and leave the record listing what the folder holds. A run that did
        not finish (stopped or failed: ``why`` says which in the note) and wrote aside leaves
        the folder as it was and its own files in ``NAME.partial`` beside it (``kept``)."""
        if self._closed:
            return
        self._closed = True
        try:
            if self.root == self.path:
                self._tidy()
            elif finished:
                self._move_in()
                shutil.rmtree(self.root, ignore_errors=True)  # its empty folders
            else:
                self._keep_aside(why)
        finally:
            if self._hold is not None:
                os.close(self._hold)
            self._claim.release()

    def _move_in(self) -> None:
        """The finished run's files into the folder, in the order written (a label before
        its image), then the earlier run's others out."""
        for rel in self.written:
            target = self.path / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            os.replace(self.root / rel, target)
        self._tidy()

    def _keep_aside(self, why: str) -> None:
        self._record.close()
        self.layout.rewrite(self.path, self.earlier)  # the names this run added: not here
        if not self.written:
            shutil.rmtree(self.root, ignore_errors=True)
            return
        self.layout.rewrite(self.root, self.written)  # a folder the next run may replace
        kept = self.root  # where no free name is left: its hidden folder, named below
        for n in range(1, 1000):
            free = self.path.with_name(f"{self.path.name}.partial{n if n > 1 else ''}")
            if not free.exists():
                os.rename(self.root, free)
                (free / PART_MARK).unlink(missing_ok=True)  # no longer a part folder
                kept = free
                break
        self.kept = kept
        self.notes.append(f"{self.path} was left as it was (the run {why}); this run's "
                          f"{counted(len(self.written), self.layout.noun)} are in {kept}")

    def _tidy(self) -> None:
        self._record.close()
        kept = set(self.written)
        for rel in sorted(self.earlier - kept):
            try:
                (self.path / rel).unlink(missing_ok=True)
            except OSError:
                kept.add(rel)
                continue
            remove_empty_parents(self.path / rel, self.path)
        removed = len(self.earlier - kept)
        if removed:
            self.notes.append(f"{self.path}: replaced the {self.layout.noun}s of an earlier "
                              f"run into it ({removed} of them not written again "
                              f"{'was' if removed == 1 else 'were'} removed)")
        # the appended record already lists them all: this only drops the removed
        self.layout.rewrite(self.path, kept)


def remove_empty_parents(path: Path, root: Path) -> None:
    for parent in path.parents:
        if parent == root:
            return
        try:
            parent.rmdir()
        except OSError:
            return


class RecordedSink(Sink):
    """A sink writing a ``RecordedTree`` (``tree``), the folder ``path``: whatever ends the
    run, every file it wrote is in place when it closes, and the folder is tidied; or, given
    a ``part``, a ``SharedPart`` of a folder a batch holds."""

    label = "Output"
    layout: Layout

    def __init__(self, path: str | os.PathLike, part: str | None = None):
        super().__init__()
        self.tree = (RecordedTree(path, self.label, self.layout) if part is None
                     else SharedPart(path, part, self.layout))
        self.path = self.final_path = self.tree.path
        self.notes = self.tree.notes
        self._watch()

    def _close(self, complete: bool) -> None:
        """Remove the earlier run's files this run did not write again and rewrite the
        record, or, stopped or failed, keep the earlier run's (see ``RecordedTree.close``)."""
        if isinstance(self.tree, RecordedTree):
            self.tree.close(finished=complete and not self.interrupted,
                            why="failed" if not complete else "was interrupted")
            self.final_path = getattr(self.tree, "kept", self.tree.path)
        else:
            self.tree.close()
