"""MOTChallenge ground truth: a sequence's ``gt/gt.txt``.

A line is ``frame,id,x,y,w,h[,flag,class,visibility]``, frames from 1 (frame 1 is our frame
0), the box its top-left corner, width and height in the image's pixels. A flag of 0 marks a
box to ignore; the class column, if any, is not read: every box is of one class
(``MOT_CLASS``), which every prediction is scored against.
"""

from __future__ import annotations

import math

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes

MOT_CLASS = "object"  # the one class of a MOTChallenge file, which names none


def read_mot(path, lines: list[tuple[int, str]]) -> Annotations:
    """The numbered non-blank ``lines`` of the MOTChallenge file ``path`` as ground truth:
    frames 0 up to the last labelled one (a frame without a line has no objects)."""
    rows: dict[int, list] = {}
    for n, line in lines:
        frame, track, box, flag = _row(path, n, line)
        rows.setdefault(frame, []).append((box, track, flag == 0))
    frames = {f: FrameBoxes(np.array([r[0] for r in rs]), (MOT_CLASS,) * len(rs), None,
                            np.array([r[1] for r in rs], np.int64),
                            np.array([r[2] for r in rs], bool))
              for f, rs in rows.items()}
    for f in range(max(frames) + 1):  # frames with nothing in them have no line
        frames.setdefault(f, FrameBoxes(np.zeros((0, 4)), (), None, np.zeros(0, np.int64)))
    return Annotations(str(path), dict(sorted(frames.items())), (MOT_CLASS,), one_class=True)


def _row(path, n: int, line: str) -> tuple[int, int, list[float], float]:
    """Line ``n``'s frame (from 0), track id, xyxy box and flag (1 when the line has none)."""
    where = f"{path} line {n}"
    try:
        values = [float(v) for v in line.replace(" ", "").split(",")]
    except ValueError:
        values = []
    if len(values) < 6 or not all(map(math.isfinite, values)) or values[0] < 1 \
            or values[0] != int(values[0]) or values[1] != int(values[1]):
        raise ValueError(f"{where}: expected frame,id,x,y,w,h[,flag,class,visibility] "
                         f"with integer frame >= 1 and id, but got {line.strip()[:80]}")
    x, y, w, h = values[2:6]
    if w < 0 or h < 0:
        raise ValueError(f"{where}: expected a box width and height >= 0, but got "
                         f"{w:g} and {h:g}")
    flag = values[6] if len(values) > 6 else 1
    return int(values[0]) - 1, int(values[1]), [x, y, x + w, y + h], flag
