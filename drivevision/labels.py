"""Class names of torchvision's COCO detectors, the driving subset, per-class colours, and
counts of things named for people (``counted``)."""

from __future__ import annotations

import difflib
import logging
import numbers
from collections.abc import Iterable, Sequence

# torchvision's 91-entry COCO category list (index == label id its detectors emit), written
# out so that drawing and writing detections never import torch; a test checks it against
# torchvision's own list.
COCO_NAMES: tuple[str, ...] = (
    "__background__", "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train",
    "truck", "boat", "traffic light", "fire hydrant", "N/A", "stop sign", "parking meter",
    "bench", "bird", "cat", "dog", "horse", "sheep", "cow", "elephant", "bear", "zebra",
    "giraffe", "N/A", "backpack", "umbrella", "N/A", "N/A", "handbag", "tie", "suitcase",
    "frisbee", "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove",
    "skateboard", "surfboard", "tennis racket", "bottle", "N/A", "wine glass", "cup", "fork",
    "knife", "spoon", "bowl", "banana", "apple", "sandwich", "orange", "broccoli", "carrot",
    "hot dog", "pizza", "donut", "cake", "chair", "couch", "potted plant", "bed", "N/A",
    "dining table", "N/A", "N/A", "toilet", "N/A", "tv", "laptop", "mouse", "remote",
    "keyboard", "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "N/A",
    "book", "clock", "vase", "scissors", "teddy bear", "hair drier", "toothbrush",
)

_log = logging.getLogger(__name__)

DRIVING_CLASSES: tuple[str, ...] = (
    "person", "bicycle", "car", "motorcycle", "bus", "truck", "traffic light", "stop sign",
)

# BGR colours for the driving classes; other classes get a stable colour from their id.
_COLOURS: dict[str, tuple[int, int, int]] = {
    "person": (60, 20, 220), "bicycle": (0, 170, 255), "car": (255, 140, 0),
    "motorcycle": (180, 0, 180), "bus": (0, 200, 200), "truck": (40, 200, 40),
    "traffic light": (0, 230, 255), "stop sign": (30, 30, 255),
}


def colour_for(class_id: int, names: Sequence[str]) -> tuple[int, int, int]:
    """BGR colour of a class, the same in every frame, video and viewer."""
    name = names[class_id] if 0 <= class_id < len(names) else ""
    if name in _COLOURS:
        return _COLOURS[name]
    h = (class_id * 2654435761) & 0xFFFFFF  # Knuth hash: spreads neighbouring ids apart
    return (64 + (h & 0xBF), 64 + ((h >> 8) & 0xBF), 64 + ((h >> 16) & 0xBF))


def track_colour(track_id: int) -> tuple[int, int, int]:
    """BGR colour of a track: stable for its id, neighbouring ids far apart, never dark."""
    h = (int(track_id) * 2654435761 + 0x9E3779B9) & 0xFFFFFF
    return (64 + (h & 0xBF), 64 + ((h >> 8) & 0xBF), 64 + ((h >> 16) & 0xBF))


def counted(n: int, noun: str, plural: str | None = None) -> str:
    """``n`` and ``noun``, plural unless ``n`` is 1: ``1 frame``, ``0 frames``, ``2 frames``."""
    return f"{n} {noun if n == 1 else plural or noun + 's'}"


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``5th``, ``12th``, ``22nd``."""
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def clock(seconds: float) -> str:
    """A time in the input as a clock reads it, ffmpeg's way: ``0:05``, ``1:30``, ``1:02:03``,
    with the fraction where there is one (``1:30.5``, to the millisecond)."""
    whole, fraction = divmod(round(seconds * 1000), 1000)
    hours, rest = divmod(whole, 3600)
    text = f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
    return text + (f".{fraction:03d}".rstrip("0") if fraction else "")


def name_of(class_id: int, names: Sequence[str]) -> str:
    return names[class_id] if 0 <= class_id < len(names) else f"class {class_id}"


def _driving_ids(names: Sequence[str], *, warn: bool = False) -> tuple[int, ...] | None:
    """Label ids of the driving classes in ``names``; None (every class) if it has none."""
    ids = tuple(i for i, n in enumerate(names) if n in DRIVING_CLASSES)
    missing = [c for c in DRIVING_CLASSES if c not in names]
    if warn and missing:
        kept = ", ".join(names[i] for i in ids) if ids else "every class it has"
        _log.warning(f"classes 'driving': the model has no {', '.join(missing)}; "
                     f"keeping {kept}")
    return ids or None


_UNUSED = ("N/A", "__background__")  # COCO's empty slots and the background: never a class


def resolve_classes(spec: str | int | Sequence[str | int] | None,
                    names: Sequence[str]) -> tuple[int, ...] | None:
    """Turn a class selection into label ids of ``names``; None means keep every class.

    ``spec`` is "all", "driving", a comma list of names or ids, a sequence of them, or one
    id alone (as Ultralytics' ``classes=2``); anything else is a TypeError. Names match
    whatever their case ("Car" is "car"), otherwise exactly; an unknown name is a ValueError
    that suggests close ones. None, the default, is "driving" for a model with COCO's class
    names and "all" for a model with its own. "all" leaves out COCO's unused "N/A" slots.
    "driving" on a model that lacks some driving classes warns which; on one that knows none
    of them it keeps every class.
    """
    if spec is None:
        return _driving_ids(names) if tuple(names) == COCO_NAMES else None
    if isinstance(spec, numbers.Integral) and not isinstance(spec, bool):
        spec = [int(spec)]
    elif isinstance(spec, bool) or not isinstance(spec, (str, Iterable)):
        raise TypeError("Expected classes as 'driving', 'all', a class name or id, or a comma "
                        f"list or sequence of them, but got {spec!r} ({type(spec).__name__})")
    if isinstance(spec, str) and spec.strip().lower() in ("all", "driving"):
        spec = spec.strip().lower()
    if spec == "all":
        used = tuple(i for i, n in enumerate(names) if n not in _UNUSED)
        return used if "N/A" in names else None
    if spec == "driving":
        return _driving_ids(names, warn=True)
    items = [s.strip() for s in spec.split(",")] if isinstance(spec, str) else list(spec)
    lookup = {n.lower(): i for i, n in enumerate(names) if n not in _UNUSED}
    ids = []
    for item in items:
        if str(item).isdigit() and 0 < int(item) < len(names) and names[int(item)] != "N/A":
            ids.append(int(item))
        elif str(item).lower() in lookup:
            ids.append(lookup[str(item).lower()])
        else:
            raise ValueError(_unknown_class(str(item), names))
    return tuple(sorted(set(ids)))


def classes_text(class_ids: Sequence[int] | None, names: Sequence[str]) -> str:
    """What ``resolve_classes`` kept, as a user would ask for it: "all", "driving", or the
    kept classes' names comma-separated ("driving" only where the model has them all)."""
    if class_ids is None or tuple(class_ids) == resolve_classes("all", names):
        return "all"
    if tuple(class_ids) == _driving_ids(names) and set(DRIVING_CLASSES) <= set(names):
        return "driving"
    return ",".join(name_of(i, names) for i in class_ids)


_LISTED = 10  # classes an unknown-class message names; COCO's 80 on one line are unreadable


def _unknown_class(item: str, names: Sequence[str], expected: str = "'driving', 'all', or "
                   "names or ids of the model's classes") -> str:
    known = [(i, n) for i, n in enumerate(names) if n not in _UNUSED]
    close = difflib.get_close_matches(item.lower(), [n.lower() for _, n in known], n=3,
                                      cutoff=0.6)
    if close:
        return f"Unknown class {item!r}; did you mean {' or '.join(close)}?"
    listed = ", ".join(f"{n} ({i})" for i, n in known[:_LISTED])
    if len(known) > _LISTED:
        where = ("docs/detect.md#coco-class-ids lists them all" if tuple(names) == COCO_NAMES
                 else "the checkpoint or its names file lists them all")
        listed += f", ... ({len(known)} in all; {where})"
    return f"Unknown class {item!r}; expected {expected}: {listed}"


class ClassNames(tuple):
    """A model's class names, by class id: a tuple whose ``index(name)``, for a name it does
    not hold, is a ValueError naming the close ones or listing the classes."""

    __slots__ = ()

    def index(self, name, *args) -> int:
        try:
            return super().index(name, *args)
        except ValueError:
            raise ValueError(_unknown_class(str(name), self, "one of the model's classes")) \
                from None
