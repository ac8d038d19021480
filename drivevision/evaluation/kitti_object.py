"""KITTI object detection labels as ground truth: a folder (``label_2/``) of one ``.txt`` an
image, ``000123.txt`` for ``image_2/000123.png``, as the KITTI object benchmark gives them and
labelling tools export them.

A line is ``type truncated occluded alpha left top right bottom h w l x y z rotation_y``
separated by spaces, the box ``left top right bottom`` in the image's pixels (xyxy), ``type``
the class (``Car``, ``Van``, ``Truck``, ``Pedestrian``, ``Cyclist``, ...). ``DontCare`` lines
are regions left unlabelled, ignored for every class (``kitti.DONT_CARE``, as for KITTI
tracking). The 3D columns are not read. A 16th column (a score) is a detector's results,
refused as ground truth.

The images are frames in natural order, named by their stems, so predictions and an INPUT
folder are matched to them by file name as to a COCO file's images (``yolo.match_files``).
A folder of YOLO label files (``CLASS cx cy w h``) is told from it by its lines and refused
with the way to give it.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes
from drivevision.evaluation.kitti import DONT_CARE, is_kitti_line
from drivevision.evaluation.yolo import natural_key

COLUMNS = 15
FIELDS = "type truncated occluded alpha left top right bottom h w l x y z rotation_y"
IMAGE_SUFFIX = ".png"  # KITTI's images (image_2/000123.png): how errors and notes name them


def is_label_folder(path: str | Path) -> bool:
    """A folder of ``.txt`` files whose first label line is separated by spaces (KITTI's
    labels, or YOLO's or KITTI tracking's, which ``read_kitti_objects`` refuses saying what
    they are), or whose files are all empty. A folder of other files (images, MOTChallenge's
    comma-separated text) is not one."""
    files = _label_files(path)
    if not files:
        return False
    first = next((line for f in files for line in _read(f).splitlines() if line.strip()), None)
    return first is None or "," not in first


def read_kitti_objects(path: str | Path) -> Annotations:
    """The label folder ``path`` as ground truth: frame i the i-th label file in natural
    order, named ``STEM.png`` (matched to images by the stem), without sizes (the labels
    state none)."""
    frames, files, classes = {}, {}, {}
    for f, label in enumerate(_label_files(path)):
        rows = [_row(label, n, line) for n, line in enumerate(_read(label).splitlines(), 1)
                if line.strip()]
        classes.update(dict.fromkeys(name for name, _ in rows if name != DONT_CARE))
        frames[f] = FrameBoxes(np.array([box for _, box in rows], np.float64).reshape(-1, 4),
                               tuple(name for name, _ in rows), None, None,
                               np.array([name == DONT_CARE for name, _ in rows], bool))
        files[f] = label.stem + IMAGE_SUFFIX
    return Annotations(str(path), frames, tuple(classes), file_names=files)


def _label_files(path: str | Path) -> list[Path]:
    folder = Path(path)
    if not folder.is_dir():
        return []
    return sorted((p for p in folder.iterdir() if p.suffix.lower() == ".txt"
                   and not p.name.startswith(".") and p.is_file()),
                  key=lambda p: natural_key(p.name))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read {path}: {getattr(e, 'strerror', None) or e}") from None


def _row(path: Path, n: int, line: str) -> tuple[str, list[float]]:
    """Line ``n``'s class (lower case) and box; ValueError saying what it is if not a KITTI
    object label."""
    fields, where = line.split(), f"{path} line {n}"
    if is_kitti_line(line):
        raise ValueError(f"{where}: a KITTI tracking label (frame track_id type ...), not an "
                         "object label: give each sequence's file (label_02/0000.txt) as --gt")
    if all(_number(v) for v in fields):
        raise ValueError(f"{where}: a YOLO label (CLASS cx cy w h), not KITTI's: give the YOLO "
                         "dataset, the folder holding data.yaml or classes.txt beside images/ "
                         "and labels/")
    numbers = len(fields) > 1 and not _number(fields[0]) and all(_number(v) for v in fields[1:])
    if numbers and len(fields) == COLUMNS + 1:
        raise ValueError(f"{where}: {COLUMNS + 1} values, a score after {FIELDS}: these are a "
                         "detector's results, not ground truth labels")
    if not numbers or len(fields) != COLUMNS:
        raise ValueError(f"{where}: expected a KITTI object label of {COLUMNS} values, "
                         f"{FIELDS}, but got {line.strip()[:80]}")
    x1, y1, x2, y2 = (float(v) for v in fields[4:8])
    if x2 < x1 or y2 < y1:
        raise ValueError(f"{where}: box left {x1:g} top {y1:g} right {x2:g} bottom {y2:g} "
                         "ends before it starts")
    return fields[0].lower(), [x1, y1, x2, y2]


def _number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
