"""KITTI tracking labels as ground truth: one file a sequence (``label_02/0000.txt``), as the
KITTI tracking benchmark gives them and labelling tools export them.

A line is ``frame track_id type truncated occluded alpha left top right bottom h w l x y z
rotation_y`` separated by spaces, frames from 0, the box ``left top right bottom`` in the
image's pixels (xyxy), ``type`` the class (``Car``, ``Pedestrian``, ``Cyclist``, ...).
``DontCare`` lines (track id -1) are regions left unlabelled: a detection on one is neither
a hit nor a false positive, whatever its class, as KITTI's own evaluation treats them. The
3D columns are not read.
"""

from __future__ import annotations

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes

DONT_CARE = "dontcare"
COLUMNS = 17  # a score column after them (results) is refused: this is ground truth


def is_kitti_line(line: str) -> bool:
    """A KITTI tracking label line: space-separated, a class name in its third column (a
    MOTChallenge line is commas and numbers only)."""
    fields = line.split()
    return "," not in line and len(fields) >= 10 and not _number(fields[2]) \
        and _number(fields[0])


def read_kitti(path, lines: list[tuple[int, str]]) -> Annotations:
    """The numbered non-blank ``lines`` of the KITTI tracking file ``path`` as ground truth:
    frames 0 up to the last labelled one (a frame without a line has no objects)."""
    rows: dict[int, list] = {}
    classes: dict[str, None] = {}
    for n, line in lines:
        frame, track, label, box = _row(path, n, line)
        if label != DONT_CARE:
            classes[label] = None
        rows.setdefault(frame, []).append((box, label, track))
    frames = {f: FrameBoxes(np.zeros((0, 4)), (), None, np.zeros(0, np.int64))
              for f in range(max(rows) + 1)}
    for f, rs in rows.items():
        frames[f] = FrameBoxes(np.array([r[0] for r in rs], np.float64), tuple(r[1] for r in rs),
                               None, np.array([r[2] for r in rs], np.int64),
                               np.array([r[1] == DONT_CARE for r in rs], bool))
    return Annotations(str(path), frames, tuple(classes))


def _row(path, n: int, line: str) -> tuple[int, int, str, list[float]]:
    fields = line.split()
    where = f"{path} line {n}"
    ok = len(fields) == COLUMNS and all(_number(v) for i, v in enumerate(fields) if i != 2)
    if not ok or not float(fields[0]).is_integer() or float(fields[0]) < 0 \
            or not float(fields[1]).is_integer():
        raise ValueError(f"{where}: expected a KITTI tracking label of {COLUMNS} values, frame "
                         "track_id type truncated occluded alpha left top right bottom h w l "
                         f"x y z rotation_y (frame >= 0), but got {line.strip()[:80]}")
    x1, y1, x2, y2 = (float(v) for v in fields[6:10])
    if x2 < x1 or y2 < y1:
        raise ValueError(f"{where}: box left {x1:g} top {y1:g} right {x2:g} bottom {y2:g} "
                         "ends before it starts")
    return int(float(fields[0])), int(float(fields[1])), fields[2].lower(), [x1, y1, x2, y2]


def _number(text: str) -> bool:
    try:
        return np.isfinite(float(text))
    except ValueError:
        return False
