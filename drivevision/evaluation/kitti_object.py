"""KITTI object detection labels as ground truth: a folder (``label_2/``) of one ``.txt`` an
image, ``000123.txt`` for ``image_2/000123.png``, as the KITTI object benchmark gives them and
labelling tools export them.

A line is ``type truncated occluded alpha left top right bottom h w l x y z rotation_y``
separated by spaces, the box ``left top right bottom`` in the image's pixels (xyxy), ``type``
the class (``Car``, ``Van``, ``Truck``, ``Pedestrian``, ``Cyclist``, ...). ``DontCare`` lines
are regions left unlabelled, ignored for every class (``kitti.DONT_CARE``, as for KITTI
tracking). The 3D columns are not read. A 16th column (a score) is a detector's results,
refused as ground truth.

KITTI's benchmark scores each class at a difficulty level (``LEVELS``, its devkit's
``evaluate_object.cpp``): an object as short as the level's height or shorter, or more
occluded or truncated than it allows, is ignored (neither missed nor a false positive when
found), and so are a ``Van`` for ``Car`` and a ``Person_sitting`` for ``Pedestrian``
(``NEUTRAL``). ``read_kitti_objects`` marks them as ignored boxes at the level asked for;
``all`` ignores none of them. The devkit also ignores a detection shorter than the level's
height that finds no object (``Annotations.min_height``): no false positive either.

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
from drivevision.labels import counted

COLUMNS = 15
FIELDS = "type truncated occluded alpha left top right bottom h w l x y z rotation_y"
IMAGE_SUFFIX = ".png"  # KITTI's images (image_2/000123.png): how errors and notes name them
# level -> (an object must be taller than this, in px; most occlusion: 0 fully visible,
# 1 partly occluded, 2 largely occluded, 3 unknown; most truncation, 0..1): the devkit's
LEVELS = {"easy": (40, 0, 0.15), "moderate": (25, 1, 0.30), "hard": (25, 2, 0.50)}
DIFFICULTIES = (*LEVELS, "all")
DEFAULT_DIFFICULTY = "moderate"  # the level KITTI's leaderboard ranks by
NEUTRAL = {"van": "car", "person_sitting": "pedestrian"}  # neither hit nor miss for that class
OCCLUDED = ("occluded at all", "occluded more than partly", "occluded more than largely")


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


def read_kitti_objects(path: str | Path, difficulty: str | None = None) -> Annotations:
    """The label folder ``path`` as ground truth: frame i the i-th label file in natural
    order, named ``STEM.png`` (matched to images by the stem), without sizes (the labels
    state none), scored at KITTI's ``difficulty`` (one of ``DIFFICULTIES``, None:
    ``DEFAULT_DIFFICULTY``; a note says which and what it left out)."""
    difficulty = difficulty or DEFAULT_DIFFICULTY
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"Expected a KITTI difficulty of {', '.join(DIFFICULTIES)}, but got "
                         f"{difficulty!r}")
    labels = _label_files(path)
    rows = [[_row(label, n, line) for n, line in enumerate(_read(label).splitlines(), 1)
             if line.strip()] for label in labels]
    classes = tuple(dict.fromkeys(r[0] for rs in rows for r in rs if r[0] != DONT_CARE))
    level = LEVELS.get(difficulty)
    neutral = {} if level is None else {k: v for k, v in NEUTRAL.items() if v in classes}
    frames, left_out, stand_ins = {}, 0, {}
    for f, frame_rows in enumerate(rows):
        boxes = [(name, box, name == DONT_CARE or _outside(level, box, trunc, occl))
                 for name, box, trunc, occl in frame_rows]
        left_out += sum(ignored for name, _, ignored in boxes if name != DONT_CARE)
        boxes += [(neutral[name], box, True) for name, box, _, _ in frame_rows
                  if name in neutral]
        stand_ins[f] = len(boxes) - len(frame_rows)
        frames[f] = FrameBoxes(np.array([b for _, b, _ in boxes], np.float64).reshape(-1, 4),
                               tuple(n for n, _, _ in boxes), None, None,
                               np.array([i for _, _, i in boxes], bool))
    objects = sum(r[0] != DONT_CARE for rs in rows for r in rs)
    if objects and left_out == objects:
        raise ValueError(f"{path}: every one of its {counted(objects, 'object')} is ignored at "
                         f"KITTI difficulty {difficulty} (too short, occluded or truncated), "
                         "so there is nothing to score: --kitti-difficulty all counts them")
    files = {f: label.stem + IMAGE_SUFFIX for f, label in enumerate(labels)}
    return Annotations(str(path), frames, classes, file_names=files, stand_ins=stand_ins,
                       notes=(_level_note(difficulty, left_out, objects, neutral),),
                       min_height=0.0 if level is None else level[0])


def _outside(level: tuple | None, box: list[float], truncated: float, occluded: float) -> bool:
    """Whether the object is ignored at ``level`` (None: ``all``, none is), as the devkit
    tells it: its height at most the level's, or more occluded or truncated than it allows."""
    if level is None:
        return False
    height, occlusion, truncation = level
    return box[3] - box[1] <= height or occluded > occlusion or truncated > truncation


def _level_note(difficulty: str, left_out: int, objects: int, neutral: dict) -> str:
    """Which level the labels were scored at, and what it ignored."""
    if difficulty == "all":
        return ("KITTI difficulty all: every labelled object counts, whatever its height, "
                "occlusion or truncation (--kitti-difficulty moderate ignores those KITTI's "
                "leaderboard leaves out)")
    height, occlusion, truncation = LEVELS[difficulty]
    also = "".join(f"; a {c} detection on a {v} is neither hit nor false positive"
                   for v, c in neutral.items())
    return (f"KITTI difficulty {difficulty}: {left_out} of {counted(objects, 'object')} "
            f"ignored (neither missed nor false positives when found): {height} px tall or "
            f"less, {OCCLUDED[occlusion]} or truncated more than {truncation:.0%}{also}; "
            f"a detection shorter than {height} px that finds no object is no false "
            "positive; --kitti-difficulty all counts every object and detection")


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


def _row(path: Path, n: int, line: str) -> tuple[str, list[float], float, float]:
    """Line ``n``'s class (lower case), box, truncation and occlusion; ValueError saying what
    it is if not a KITTI object label."""
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
    return fields[0].lower(), [x1, y1, x2, y2], float(fields[1]), float(fields[2])


def _number(text: str) -> bool:
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False
