"""MOTChallenge ground truth: a sequence's ``gt/gt.txt`` and, beside ``gt/``, its
``seqinfo.ini``, scored as MOTChallenge's own evaluation (TrackEval's ``MotChallenge2DBox``)
scores them.

A line is ``frame,id,x,y,w,h[,flag,class,visibility]``, frames from 1 (frame 1 is our frame
0), the box its top-left corner, width and height in the image's pixels. A flag of 0 marks a
box to ignore. Every box scored is of one class (``MOT_CLASS``), which every prediction is
scored against.

The class column of MOT16, MOT17 and MOT20 (``CLASSES``) says which boxes are: pedestrians
(1); distractors (``DISTRACTORS``: persons on a vehicle, static persons, distractors,
reflections; in MOT20 also non-motorized vehicles) are ignored regions whatever their flag,
a detection on one neither a hit nor a false positive, as TrackEval removes the detections
matched to them; the other classes (vehicles, occluders, crowds) are left out of the ground
truth, as TrackEval removes them, so a detection on one is a false positive. A file whose
8th column holds no such class (MOT15's, a 3D coordinate, -1 in its 2D files; what ``detect
--mot`` writes) and one of fewer columns have every box scored, flag 0 aside.

``seqinfo.ini`` gives the frames' size (``imWidth``, ``imHeight``), which predictions stating
theirs are checked against, and the sequence's length (``seqLength``): frames after the last
labelled one are frames with nothing in them.
"""

from __future__ import annotations

import configparser
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes

MOT_CLASS = "object"  # the one class of a MOTChallenge file, which names none
PEDESTRIAN = 1
CLASSES = frozenset(range(1, 14))  # 1 pedestrian, 2 person on vehicle, ..., 13 crowd (MOT20)
DISTRACTORS = frozenset({2, 7, 8, 12})  # person on vehicle, static person, distractor, reflection
MOT20_DISTRACTORS = DISTRACTORS | {6}  # and non-motorized vehicles, in MOT20
SEQINFO = "seqinfo.ini"
SEQINFO_KEYS = ("MOTChallenge's seqinfo.ini, a [Sequence] section with integers imWidth, "
                "imHeight and seqLength > 0")


def read_mot(path, lines: list[tuple[int, str]]) -> Annotations:
    """The numbered non-blank ``lines`` of the MOTChallenge file ``path`` as ground truth:
    frames 0 up to the last labelled one (a frame without a line has no objects), or with a
    ``seqinfo.ini`` (``read_seqinfo``) all the sequence's frames, each of its size."""
    rows = [_row(path, n, line) for n, line in lines]
    rows_of: dict[int, list] = {}
    for (frame, track, box, _, _), ignored in zip(rows, _scoring(path, lines, rows)):
        if ignored is not None:
            rows_of.setdefault(frame, []).append((box, track, ignored))
    last = max(r[0] for r in rows)
    info = read_seqinfo(path)
    if info is not None and last >= info.length:
        n = next(n for (n, _), row in zip(lines, rows) if row[0] == last)
        raise ValueError(f"{path} line {n} labels frame {last + 1}, past the {info.length} "
                         f"frames (seqLength) of {info.path}: the seqinfo.ini of another "
                         "sequence?")
    frames = {f: _frame(rows_of.get(f, [])) for f in range(last + 1 if info is None
                                                            else info.length)}
    sizes = {} if info is None else dict.fromkeys(frames, info.size)
    return Annotations(str(path), frames, (MOT_CLASS,), sizes, one_class=True)


def _frame(rows: list[tuple]) -> FrameBoxes:
    """A frame of (box, track id, ignored) rows; one without is a frame with nothing in it."""
    if not rows:
        return FrameBoxes(np.zeros((0, 4)), (), None, np.zeros(0, np.int64))
    return FrameBoxes(np.array([r[0] for r in rows], np.float64), (MOT_CLASS,) * len(rows),
                      None, np.array([r[1] for r in rows], np.int64),
                      np.array([r[2] for r in rows], bool))


def _scoring(path, lines: list[tuple[int, str]], rows: list[tuple]) -> list[bool | None]:
    """Each row's part: False scored, True ignored, None left out (see the module's note).
    ValueError for a file whose class column holds a class on some lines only."""
    first = next((i for i, row in enumerate(rows) if row[4] in CLASSES), None)
    if first is None:  # no class column (MOT15, fewer columns): every box, flag 0 ignored
        return [flag == 0 for _, _, _, flag, _ in rows]
    for (n, line), row in zip(lines, rows):
        if row[4] not in CLASSES:
            raise ValueError(f"{path} line {n}: expected a MOTChallenge class 1-13 in the 8th "
                             f"column, as line {lines[first][0]} has ({rows[first][4]:g}), but "
                             f"got {line.strip()[:80]}")
    distractors = MOT20_DISTRACTORS if _mot20(path) else DISTRACTORS
    return [True if cls in distractors else flag == 0 if cls == PEDESTRIAN else None
            for _, _, _, flag, cls in rows]


def _mot20(path) -> bool:
    """Whether ``path`` is the ``gt/gt.txt`` of a MOT20 sequence (``MOT20-01/gt/gt.txt``)."""
    folder = _sequence_folder(path)
    return folder is not None and folder.name.upper().startswith("MOT20")


def _sequence_folder(path) -> Path | None:
    """The sequence's folder, ``SEQ`` of ``SEQ/gt/gt.txt``; None for a file not in ``gt/``."""
    folder = Path(path).parent
    if folder.name.lower() != "gt":
        folder = folder.resolve()  # "gt.txt", given in gt/ itself
    return folder.parent if folder.name.lower() == "gt" else None


def _row(path, n: int, line: str) -> tuple[int, int, list[float], float, float | None]:
    """Line ``n``'s frame (from 0), track id, xyxy box, flag (1 when the line has none) and
    class (None when it has none)."""
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
    cls = values[7] if len(values) > 7 else None
    return int(values[0]) - 1, int(values[1]), [x, y, x + w, y + h], flag, cls


@dataclass(frozen=True)
class SeqInfo:
    """A sequence's ``seqinfo.ini``: ``size`` (width, height) of its frames in pixels and
    ``length``, its number of frames."""

    path: Path
    size: tuple[int, int]
    length: int


def read_seqinfo(gt_path) -> SeqInfo | None:
    """The ``seqinfo.ini`` beside the ``gt`` folder holding ``gt_path`` (``SEQ/gt/gt.txt``,
    ``SEQ/seqinfo.ini``), None without one; a ValueError, in one line, for one that does not
    state ``imWidth``, ``imHeight`` and ``seqLength`` (``frameRate`` is not read)."""
    folder = _sequence_folder(gt_path)
    ini = None if folder is None else folder / SEQINFO
    if ini is None or not ini.is_file():
        return None
    section = _section(ini)
    values = {key: section.get(key, "").strip() for key in ("imWidth", "imHeight", "seqLength")}
    for key, value in values.items():
        if not (value.isdecimal() and int(value) > 0):
            got = f"{key} = {value!r}" if value else f"no {key}"
            raise ValueError(f"{ini}: expected {SEQINFO_KEYS}, but it has {got}")
    width, height, length = map(int, values.values())
    return SeqInfo(ini, (width, height), length)


def _section(ini: Path) -> configparser.SectionProxy:
    """The ``[Sequence]`` section of ``ini``; ValueError in one line for a file without."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(ini.read_text(encoding="utf-8"), source=str(ini))
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read {ini}: {getattr(e, 'strerror', None) or 'not text'}"
                         ) from None
    except configparser.Error as e:
        errors = getattr(e, "errors", None)
        line = getattr(e, "lineno", None) or (errors[0][0] if errors else None)
        raise ValueError(f"{ini}: expected {SEQINFO_KEYS}, but it is not INI text"
                         + (f" (line {line})" if line else "")) from None
    if not parser.has_section("Sequence"):
        raise ValueError(f"{ini}: expected {SEQINFO_KEYS}, but it has no [Sequence] section")
    return parser["Sequence"]
