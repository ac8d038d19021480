"""Outputs for building a dataset from one's own footage: YOLO labels and object crops.

``YoloSink`` writes a YOLO detection dataset (``images/``, ``labels/``, ``data.yaml``,
``classes.txt``): the frames with at least one detection and one label file each, class ids
renumbered 0..n-1 over the classes the detector keeps. ``CropSink`` cuts each detection out
of the unannotated frame into ``CLASS/NAME_INDEX.jpg``.

Both are recorded folder outputs, as ``ImageFolderSink``'s is (``recorded.RecordedTree``):
the folder is claimed for the run, a hidden ``RECORD`` lists every file a run wrote into it
(each name before its file lands), a folder holding files no run recorded is refused, and
the files of an earlier run that this one does not write again are removed when it closes.
Each file is written under a hidden name and moved into place, so a file in the folder is
always whole. In a batch, each input is a ``part`` of folders shared by all (``SharedPart``):
its files go one folder deeper, under its name (``images/PART/NAME.jpg``,
``CLASS/PART/NAME_INDEX.jpg``), and the batch claims and tidies the folders
(``drivevision.batch.datasets``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path

import cv2
import numpy as np

from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.frames import Frame
from drivevision.io.recorded import Layout, RecordedSink
from drivevision.labels import name_of

RECORD = ".drivevision-files.txt"
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


def dataset_layout(top: Iterable[str] = ()) -> Layout:
    """A dataset folder's layout: its files are those in its subfolders and its top-level
    ``top`` names; other top-level files are left to their owner."""
    return Layout(RECORD, "file", partial(_dataset_files, top=tuple(top)))


def _dataset_files(folder: Path, top: tuple[str, ...]) -> list[str]:
    found = [name for name in top if (folder / name).is_file()]
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and not entry.name.startswith("."):
            found += _files_under(entry, folder)
    return found


def _files_under(path: Path, root: Path) -> list[str]:
    found = []
    for parent, dirs, files in os.walk(path):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        found += [(Path(parent) / f).relative_to(root).as_posix() for f in files
                  if not f.startswith(".")]
    return found


YOLO_FOLDER, CROPS_FOLDER = dataset_layout(YOLO_TOP), dataset_layout()


def earlier_files(folder: str | os.PathLike,
                  top: Iterable[str] = ()) -> tuple[list[str], list[str]]:
    """The files already in ``folder``'s subfolders and of its top-level ``top`` names, as
    ``/``-separated paths relative to it, sorted, as two lists: those an earlier run recorded
    writing and the others (``recorded.Layout.earlier``)."""
    return dataset_layout(top).earlier(folder)


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


class _TreeSink(RecordedSink):
    """A dataset folder; frames of a folder of images are named by their image's stem
    (``names``: the image names, ``Frame.file``), a video's ``frame_000123``, under the
    ``part``'s folder when given."""

    def __init__(self, path: str | os.PathLike, names: Sequence[str] | None = None,
                 part: str | None = None):
        try:
            frame_stems(names)
        except ValueError as e:
            raise SinkError(str(e)) from None
        super().__init__(path, part)
        self.sub = f"{part}/" if part else ""

    def stem(self, frame: Frame) -> str:
        stem = Path(frame.file).stem if frame.file else f"frame_{frame.index:06d}"
        return self.sub + stem


class YoloSink(_TreeSink):
    """A YOLO detection dataset in a folder: ``images/NAME.EXT`` for each frame with at
    least one detection and ``labels/NAME.txt`` beside it (``yolo_lines``), ``data.yaml``
    (Ultralytics) and ``classes.txt`` naming the classes 0..n-1 (``kept_classes``).

    A video's frames are JPEGs (quality 95); a folder's images keep their format. The label
    lands before its image, and an earlier run's image of that name goes first, so a killed
    run never leaves an image beside another run's label or without its own (an image with
    no label file trains as one with no objects). Both are written whole before either
    lands (``put_together``): a failure on the way (a full disk, an image that cannot be
    encoded) leaves neither, so each label file always has its image.
    """

    label = "--yolo"
    layout = YOLO_FOLDER

    def __init__(self, path: str | os.PathLike, names: Sequence[str],
                 class_ids: Sequence[int] | None, files: Sequence[str] | None = None,
                 part: str | None = None):
        super().__init__(path, files, part)
        try:
            self._begin(names, class_ids, part)
        except BaseException:  # the caller gets no sink to close: closed here
            self.close(complete=False)
            raise

    def _begin(self, names: Sequence[str], class_ids: Sequence[int] | None,
               part: str | None) -> None:
        self.class_names = dataset_classes(names, class_ids)
        self.index = {c: i for i, c in enumerate(kept_classes(names, class_ids))}
        self._earlier_images = {r.removeprefix("images/").rsplit(".", 1)[0]: r
                                for r in self.tree.earlier if r.startswith("images/")}
        if part is None:  # a batch writes them once for all its parts
            for name, text in yolo_top(self.class_names).items():
                self.tree.put(name, text.encode())

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        if not len(detections):
            return
        stem = self.stem(frame)
        suffix = Path(frame.file).suffix.lower() if frame.file else ".jpg"
        height, width = frame.image.shape[:2]
        if stem in self._earlier_images:
            self.tree.remove_earlier(self._earlier_images[stem])
        lines = yolo_lines(detections, self.index, width, height)
        self.tree.put_together({
            f"labels/{stem}.txt": "".join(f"{ln}\n" for ln in lines).encode(),
            f"images/{stem}{suffix}": lambda tmp: tmp.write_bytes(encode_image(frame.image,
                                                                           suffix))})


def dataset_classes(names: Sequence[str], class_ids: Sequence[int] | None) -> list[str]:
    """The names of a dataset's classes 0..n-1 (``kept_classes``)."""
    return [name_of(c, names) for c in kept_classes(names, class_ids)]


def yolo_top(class_names: Sequence[str]) -> dict[str, str]:
    """A YOLO dataset's own files (``YOLO_TOP``) for its classes, name -> text."""
    return {"classes.txt": "".join(f"{n}\n" for n in class_names),
            "data.yaml": data_yaml(class_names)}


def data_yaml(class_names: Sequence[str]) -> str:
    """Ultralytics' dataset file: no ``path``, so the folder it lies in is the dataset's root
    wherever the folder moves; every image is in ``train`` and ``val`` (split it yourself)."""
    names = "".join(f"  {i}: {json.dumps(n)}\n" for i, n in enumerate(class_names))
    return ("# a YOLO dataset drivevision wrote: pre-labels, to be checked before "
            "training\n# train and val are the same images: split them for a real "
            "validation set\ntrain: images\nval: images\n"
            f"nc: {len(class_names)}\nnames:\n{names}")


class CropSink(_TreeSink):
    """Each detection cut out of the unannotated frame (``crop_box``: no margin) into
    ``CLASS/NAME_INDEX.jpg``: INDEX is the box's place in its frame's detections, as in
    the JSONL's ``detections`` list."""

    label = "--crops"
    layout = CROPS_FOLDER

    def __init__(self, path: str | os.PathLike, names: Sequence[str],
                 files: Sequence[str] | None = None, part: str | None = None):
        super().__init__(path, files, part)
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
