"""Outputs for building a dataset from one's own footage: YOLO labels and object crops.

``YoloSink`` writes a YOLO detection dataset (``images/``, ``labels/``, ``data.yaml``,
``classes.txt``): the frames with at least one detection and one label file each, class ids
renumbered 0..n-1 over the classes the detector keeps. ``CropSink`` cuts each detection out
of the unannotated frame into ``CLASS/NAME_INDEX.jpg``.

Both are folder outputs kept as ``ImageFolderSink`` keeps its folder (``RecordedTree``): the
folder is claimed for the run, a hidden ``RECORD`` lists every file a run wrote into it
(each name before its file lands), a folder holding files no run recorded is refused, and
the files of an earlier run that this one does not write again are removed when it closes.
Each file is written under a hidden name and moved into place, so a file in the folder is
always whole.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.claims import STDOUT, claim_folder
from drivevision.io.frames import Frame
from drivevision.io.sinks import Sink
from drivevision.labels import counted, name_of

RECORD = ".drivevision-files.txt"
_RECORD_HEADER = ("# the files drivevision wrote into this folder: the next run into it "
                  "replaces them, and touches no other file\n")
JPEG_QUALITY = 95
YOLO_TOP = ("data.yaml", "classes.txt")  # the dataset's own files beside images/ and labels/


def kept_classes(names: Sequence[str], class_ids: Sequence[int] | None) -> tuple[int, ...]:
    """The label ids a dataset's classes 0..n-1 stand for, in order: the detector's kept
    ``class_ids`` (``Detector.class_ids``), or (None) every class but the background and
    COCO's unused "N/A" slots."""
    if class_ids is not None:
        return tuple(sorted(class_ids))
    return tuple(i for i, n in enumerate(names) if n not in ("__background__", "N/A"))


def yolo_lines(detections: Detections, index: dict[int, int], width: int,
               height: int) -> list[str]:
    """One YOLO label line per box: ``CLASS x_center y_center width height``, coordinates
    divided by the frame's ``width``/``height`` (0..1); ``index`` maps a label id to its
    dataset class. No score column: trainers (Ultralytics) refuse labels with a sixth."""
    lines = []
    for box, class_id in zip(detections.xyxy, detections.class_ids, strict=True):
        x1, y1, x2, y2 = (float(v) for v in box)
        values = ((x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width,
                  (y2 - y1) / height)
        lines.append(f"{index[int(class_id)]} " + " ".join(f"{min(max(v, 0.0), 1.0):.6f}"
                                                             for v in values))
    return lines


def crop_box(box: Sequence[float], width: int, height: int) -> tuple[int, int, int, int]:
    """The pixels a box ``[x1, y1, x2, y2]`` covers, as integer ``x1, y1, x2, y2`` (each edge
    rounded to the nearest pixel border, inside the frame, at least 1x1): no margin, so a
    crop is its box to within a pixel."""
    def span(a: float, b: float, size: int) -> tuple[int, int]:
        lo, hi = min(max(round(a), 0), size), min(max(round(b), 0), size)
        if hi <= lo:
            hi = min(lo + 1, size)
            lo = hi - 1
        return lo, hi

    (x1, x2), (y1, y2) = span(box[0], box[2], width), span(box[1], box[3], height)
    return x1, y1, x2, y2


def class_folder(class_id: int, names: Sequence[str]) -> str:
    """A class's name as a folder name: no path separators, never hidden or empty."""
    name = name_of(class_id, names).replace("/", "_").replace("\\", "_").replace("\0", "")
    name = name.strip()
    return f"_{name}" if not name or name.startswith(".") else name


def frame_stems(names: Sequence[str] | None) -> list[str] | None:
    """The stems of a folder's images (``names``), as a dataset names their files; a
    ValueError naming two images that would share one (``a.png`` and ``a.jpg``)."""
    if names is None:
        return None
    seen: dict[str, str] = {}
    for name in names:
        stem = Path(name).stem
        if stem in seen:
            raise ValueError(f"{seen[stem]} and {name} would both be labelled {stem}.txt in "
                             "a dataset; rename one of them")
        seen[stem] = name
    return [Path(n).stem for n in names]


def earlier_files(folder: str | os.PathLike,
                  top: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """The files already in ``folder``'s subfolders and of its top-level ``top`` names, as
    ``/``-separated paths relative to it, sorted, as two lists: those an earlier run recorded
    writing (a new run replaces them) and the others (no run may touch them). Hidden files
    and folders are not counted; other top-level files are left to their owner."""
    folder = Path(folder)
    if not folder.is_dir():
        return [], []
    try:
        recorded = set((folder / RECORD).read_text(encoding="utf-8").splitlines())
    except OSError:
        recorded = set()
    found = [name for name in top if (folder / name).is_file()]
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            found += _files_under(entry, folder)
    found.sort()
    return [n for n in found if n in recorded], [n for n in found if n not in recorded]


def _files_under(path: Path, root: Path) -> list[str]:
    found = []
    for parent, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [(Path(parent) / f).relative_to(root).as_posix() for f in files
                  if not f.startswith(".")]
    return found


def foreign_files_message(option: str, folder: str | os.PathLike, names: list[str]) -> str:
    """One line refusing a folder output that holds files no run recorded writing."""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"{option} {folder} already holds {counted(len(names), 'file')} that no "
            f"drivevision run wrote there ({shown}); ours would mix with them: choose a new "
            "or empty folder")


def check_folder_output(option: str, folder: str | os.PathLike, top: Iterable[str] = ()) -> None:
    """ValueError, naming ``option``, for a folder output that cannot be made (a file, a
    missing parent, stdout) or that holds files no run wrote (``earlier_files``)."""
    folder = Path(folder)
    if str(folder) == STDOUT:
        raise ValueError(f"{option} writes a folder; give a folder name, not -")
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{option} {folder} is a file; expected a folder (made if missing)")
    if not folder.resolve().parent.is_dir():
        raise ValueError(f"Output folder {folder.resolve().parent} does not exist")
    if not folder.exists():
        try:  # fail now, not at the first detection
            folder.mkdir()
            folder.rmdir()
        except OSError as e:
            raise ValueError(f"Cannot make {option} folder {folder}: {e.strerror or e}") from None
    foreign = earlier_files(folder, top)[1]
    if foreign:
        raise ValueError(foreign_files_message(option, folder, foreign))


class RecordedTree:
    """A claimed folder output whose files this run writes by relative path (``put``) and
    lists in ``RECORD``; ``close`` removes the earlier run's files this run did not write
    again. ``option`` names the output in messages; ``top``: the top-level files it writes
    (see ``earlier_files``)."""

    def __init__(self, path: str | os.PathLike, option: str, top: Iterable[str] = ()):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"{option} {path} is a file; expected a folder")
        if not self.path.parent.is_dir():
            raise SinkError(f"Output folder {self.path.parent} does not exist")
        self.option = option
        self._claim = claim_folder(self.path)
        try:
            self._open(tuple(top))
        except BaseException:
            self._claim.release()
            raise
        self.notes: list[str] = []
        self._closed = False

    def _open(self, top: tuple[str, ...]) -> None:
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as e:
            raise SinkError(f"Cannot make {self.option} folder {self.path}: "
                            f"{e.strerror or e}") from e
        earlier, foreign = earlier_files(self.path, top)
        if foreign:
            raise SinkError(foreign_files_message(self.option, self.path, foreign))
        self.earlier, self.written = set(earlier), set()
        try:
            self._record = (self.path / RECORD).open("a", encoding="utf-8")
        except OSError as e:
            raise SinkError(f"Cannot write {self.path / RECORD}: {e.strerror or e}") from e
        if self._record.tell() == 0:
            self._record.write(_RECORD_HEADER)

    def put(self, rel: str, data: bytes) -> None:
        """Write ``data`` as the file ``rel`` (``/``-separated, below the folder): listed in
        the record first, written under a hidden name, then moved into place."""
        if rel not in self.written and rel not in self.earlier:
            self._record.write(f"{rel}\n")  # first, so a killed run leaves none unlisted
            self._record.flush()
        self.written.add(rel)
        target = self.path / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.stem}.part{target.suffix}")
        try:
            tmp.write_bytes(data)
            os.replace(tmp, target)
        except OSError as e:
            tmp.unlink(missing_ok=True)
            raise SinkError(f"Cannot write {target}: {e.strerror or e}") from e

    def remove_earlier(self, rel: str) -> None:
        """Remove an earlier run's ``rel`` now, before this run writes what replaces it."""
        if rel in self.earlier and rel not in self.written:
            (self.path / rel).unlink(missing_ok=True)

    def close(self) -> None:
        """Remove the earlier run's files this run did not write again (and the folders that
        leaves empty), and leave the record listing what the folder holds."""
        if self._closed:
            return
        self._closed = True
        try:
            self._tidy()
        finally:
            self._claim.release()

    def _tidy(self) -> None:
        self._record.close()
        kept = set(self.written)
        for rel in sorted(self.earlier - self.written):
            try:
                (self.path / rel).unlink(missing_ok=True)
            except OSError:
                kept.add(rel)
                continue
            _remove_empty_parents(self.path / rel, self.path)
        removed = len(self.earlier - kept)
        if removed:
            self.notes.append(f"{self.path}: replaced the files of an earlier run into it "
                              f"({removed} of them not written again "
                              f"{'was' if removed == 1 else 'were'} removed)")
        record = self.path / RECORD
        tmp = record.with_name(f"{RECORD}.part.{os.getpid()}")
        try:  # the appended record already lists them all: this only drops the removed
            tmp.write_text(_RECORD_HEADER + "".join(f"{n}\n" for n in sorted(kept)),
                           encoding="utf-8")
            os.replace(tmp, record)
        except OSError:
            tmp.unlink(missing_ok=True)


def _remove_empty_parents(path: Path, root: Path) -> None:
    for parent in path.parents:
        if parent == root:
            return
        try:
            parent.rmdir()
        except OSError:
            return


def encode_image(image: np.ndarray, suffix: str) -> bytes:
    """``image`` (BGR uint8 HxWx3) in the format of ``suffix``; JPEG at quality 95."""
    try:
        ok, data = cv2.imencode(suffix, image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    except cv2.error as e:
        raise SinkError(f"Cannot encode an image as {suffix}: "
                        f"{str(e).strip().splitlines()[-1]}") from e
    if not ok:
        raise SinkError(f"Cannot encode an image as {suffix}")
    return data.tobytes()


class _TreeSink(Sink):
    """A sink writing a ``RecordedTree``; frames of a folder of images are named by their
    image's stem (``names``: the image names, ``Frame.file``), a video's ``frame_000123``."""

    option = ""
    top: tuple[str, ...] = ()

    def __init__(self, path: str | os.PathLike, names: Sequence[str] | None = None):
        super().__init__()
        try:
            frame_stems(names)
        except ValueError as e:
            raise SinkError(str(e)) from None
        self.tree = RecordedTree(path, self.option, self.top)
        self.path = self.final_path = self.tree.path
        self.notes = self.tree.notes

    @staticmethod
    def stem(frame: Frame) -> str:
        return Path(frame.file).stem if frame.file else f"frame_{frame.index:06d}"

    def close(self, complete: bool = True) -> None:
        """Whatever ended the run, every file written is in place; tidy up the folder."""
        if not self._closed:
            self._closed = True
            self.tree.close()


class YoloSink(_TreeSink):
    """A YOLO detection dataset in a folder: ``images/NAME.EXT`` for each frame with at
    least one detection and ``labels/NAME.txt`` beside it (``yolo_lines``), ``data.yaml``
    (Ultralytics) and ``classes.txt`` naming the classes 0..n-1 (``kept_classes``).

    A video's frames are JPEGs (quality 95); a folder's images keep their format. The label
    lands before its image, and an earlier run's image of that name goes first, so a killed
    run never leaves an image beside another run's label or without its own (an image with
    no label file trains as one with no objects).
    """

    option = "--yolo"
    top = YOLO_TOP

    def __init__(self, path: str | os.PathLike, names: Sequence[str],
                 class_ids: Sequence[int] | None, files: Sequence[str] | None = None):
        super().__init__(path, files)
        self.kept = kept_classes(names, class_ids)
        self.index = {c: i for i, c in enumerate(self.kept)}
        self.class_names = [name_of(c, names) for c in self.kept]
        self._earlier_images = {Path(r).stem: r for r in self.tree.earlier
                                if r.startswith("images/")}
        self.tree.put("classes.txt", "".join(f"{n}\n" for n in self.class_names).encode())
        self.tree.put("data.yaml", data_yaml(self.class_names).encode())

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        if not len(detections):
            return
        stem = self.stem(frame)
        suffix = Path(frame.file).suffix.lower() if frame.file else ".jpg"
        height, width = frame.image.shape[:2]
        if stem in self._earlier_images:
            self.tree.remove_earlier(self._earlier_images[stem])
        lines = yolo_lines(detections, self.index, width, height)
        self.tree.put(f"labels/{stem}.txt", "".join(f"{ln}\n" for ln in lines).encode())
        self.tree.put(f"images/{stem}{suffix}", encode_image(frame.image, suffix))


def data_yaml(class_names: Sequence[str]) -> str:
    """Ultralytics' dataset file: no ``path``, so the folder it lies in is the dataset's root
    wherever the folder moves; every image is in ``train`` and ``val`` (split it yourself)."""
    names = "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(class_names))
    return ("# a YOLO dataset drivevision detect wrote: pre-labels, to be checked before "
            "training\n# train and val are the same images: split them for a real "
            "validation set\ntrain: images\nval: images\n"
            f"nc: {len(class_names)}\nnames:\n{names}")


class CropSink(_TreeSink):
    """Each detection cut out of the unannotated frame (``crop_box``: no margin) into
    ``CLASS/NAME_INDEX.jpg``: INDEX is the box's place in its frame's detections, as in
    the JSONL's ``detections`` list."""

    option = "--crops"

    def __init__(self, path: str | os.PathLike, names: Sequence[str],
                 files: Sequence[str] | None = None):
        super().__init__(path, files)
        self.names = names

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        stem = self.stem(frame)
        height, width = frame.image.shape[:2]
        for i, (box, class_id) in enumerate(zip(detections.xyxy, detections.class_ids,
                                                strict=True)):
            x1, y1, x2, y2 = crop_box(box, width, height)
            folder = class_folder(int(class_id), self.names)
            self.tree.put(f"{folder}/{stem}_{i}.jpg",
                          encode_image(frame.image[y1:y2, x1:x2], ".jpg"))
