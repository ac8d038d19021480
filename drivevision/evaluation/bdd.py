"""BDD100K detection labels as ground truth: a ``.json`` list of frames, ``[{"name":
"b1c66a42-6f7d68ca.jpg", "labels": [{"category": "car", "box2d": {"x1": ..., "y1": ...,
"x2": ..., "y2": ...}, "attributes": {...}, "id": ...}, ...]}, ...]`` (BDD100K's det_20
files, the 2018 ``bdd100k_labels_images_*.json`` and Scalabel exports, also as a Scalabel
dataset ``{"frames": [...], ...}``). Told from a COCO file, an object of images,
annotations and categories, by its text opening with a list.

Read as BDD100K's own detection evaluation reads it (its ``det`` config and Scalabel's COCO
conversion):

- a label without ``box2d`` (drivable area, lanes: polygons) is passed over; a frame whose
  ``labels`` is null or missing has no objects;
- ``box2d``'s ``x2``, ``y2`` are the last pixel column and row inside the box, so the box is
  ``x1, y1, x2 + 1, y2 + 1`` in pixels (Scalabel's COCO width is ``x2 - x1 + 1``);
- the 2018 names are renamed as BDD100K renames them (``NAME_MAPPING``: ``person`` is
  ``pedestrian``, ``bike`` ``bicycle``, ``motor`` ``motorcycle``), and ``other person``,
  ``other vehicle`` and ``trailer`` are ignored regions of ``pedestrian``, ``car`` and
  ``truck`` (``IGNORE_MAPPING``), as are labels with the attribute ``crowd`` or ``ignored``;
- a label with a ``score`` is a detector's result, refused as ground truth.

Frames are in natural order of their names, so predictions and an INPUT folder are matched
to them by file name as to a COCO file's images (``yolo.match_files``). Class names stay
BDD100K's: ``--class-map pedestrian=person`` scores a COCO model's ``person`` boxes as them.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes
from drivevision.evaluation.yolo import natural_key

NAME_MAPPING = {"bike": "bicycle", "caravan": "car", "motor": "motorcycle",
                "person": "pedestrian", "van": "car"}
IGNORE_MAPPING = {"other person": "pedestrian", "other vehicle": "car", "trailer": "truck"}
IGNORED_ATTRIBUTES = ("crowd", "ignored")
OPENING = re.compile(r'\s*(\[|\{\s*"frames"\s*:)')  # a list of frames, a Scalabel dataset
EXPECTED = ("expected BDD100K labels, a list of frames {\"name\": IMAGE, \"labels\": "
            "[{\"category\": ..., \"box2d\": {\"x1\", \"y1\", \"x2\", \"y2\"}}, ...]}")


def is_bdd(path: str | Path) -> bool:
    """A ``.json`` file whose text opens a list (or a Scalabel dataset's ``"frames"``): BDD100K
    labels (a COCO file is an object of images, annotations and categories)."""
    path = Path(path)
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            head = f.read(4096).lstrip("\ufeff")
    except OSError:
        return False
    return OPENING.match(head) is not None


def read_bdd(path: str | Path) -> Annotations:
    """The BDD100K label file ``path`` as ground truth: frame i the i-th image in natural
    order of the frames' ``name`` (the file name), boxes xyxy in its pixels, no sizes (the
    files state none)."""
    labelled: dict[str, FrameBoxes] = {}
    first: dict[str, tuple[int, str]] = {}  # stem -> (frame, name): names match by stem
    classes: dict[str, None] = {}
    for i, frame in enumerate(_frames(path)):
        name = _name(frame, f"{path} frame {i}")
        where = f"{path} frame {i} ({name})"
        stem = Path(name).stem
        if stem in first:
            k, other = first[stem]
            again = f"again (frame {k})" if other == name else \
                f"and {other} (frame {k}) are one image, matched by name without the suffix"
            raise ValueError(f"{where}: {name} {again}: expected each image once")
        first[stem] = i, name
        rows = _labels(frame.get("labels"), where)
        classes.update(dict.fromkeys(label for label, _, _ in rows))
        labelled[name] = FrameBoxes(np.array([b for _, b, _ in rows], np.float64).reshape(-1, 4),
                                    tuple(label for label, _, _ in rows), None, None,
                                    np.array([ignored for _, _, ignored in rows], bool))
    names = sorted(labelled, key=natural_key)
    return Annotations(str(path), {f: labelled[n] for f, n in enumerate(names)},
                       tuple(classes), file_names=dict(enumerate(names)))


def _frames(path: str | Path) -> list:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"Cannot read {path}: {getattr(e, 'strerror', None) or e}") from None
    frames = data.get("frames") if isinstance(data, dict) else data
    if not isinstance(frames, list):
        raise ValueError(f"{path}: {EXPECTED}")
    if not frames:
        raise ValueError(f"{path} holds no frames: {EXPECTED}")
    return frames


def _name(frame, where: str) -> str:
    if isinstance(frame, dict) and "image_id" in frame and "bbox" in frame:
        raise ValueError(f"{where}: COCO results (image_id, category_id, bbox, score), a "
                         "detector's output, not ground truth: are --gt and --pred swapped?")
    name = frame.get("name") if isinstance(frame, dict) else None
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"{where}: expected an object with a \"name\", its image's file name, "
                         f"but got {json.dumps(frame)[:80]}")
    return Path(name.strip()).name


def _labels(labels, where: str) -> list[tuple[str, list[float], bool]]:
    """(class, box xyxy, ignored) of each label with a ``box2d``."""
    if labels is None:
        return []
    if not isinstance(labels, list):
        raise ValueError(f"{where}: expected \"labels\", a list of objects, but got "
                         f"{json.dumps(labels)[:80]}")
    rows = []
    for j, label in enumerate(labels):
        if not isinstance(label, dict):
            raise ValueError(f"{where} label {j}: expected an object, but got "
                             f"{json.dumps(label)[:80]}")
        if label.get("box2d") is not None:
            rows.append(_label(label, f"{where} label {j}"))
    return rows


def _label(label: dict, where: str) -> tuple[str, list[float], bool]:
    category, box2d = label.get("category"), label["box2d"]
    if not isinstance(category, str) or not category.strip():
        raise ValueError(f"{where}: expected a \"category\", a class name, but got "
                         f"{json.dumps(category)[:80]}")
    if label.get("score") is not None:
        raise ValueError(f"{where}: has a \"score\": these are a detector's results, not "
                         "ground truth labels")
    values = [box2d.get(k) for k in ("x1", "y1", "x2", "y2")] if isinstance(box2d, dict) else []
    if len(values) != 4 or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                   and math.isfinite(v) for v in values):
        raise ValueError(f"{where}: expected \"box2d\" with numbers x1, y1, x2, y2, but got "
                         f"{json.dumps(box2d)[:80]}")
    x1, y1, x2, y2 = (float(v) for v in values)
    if x2 < x1 or y2 < y1:
        raise ValueError(f"{where}: box2d {json.dumps(box2d)} has "
                         f"{'x2 < x1' if x2 < x1 else 'y2 < y1'}")
    name = category.strip().lower()
    attributes = label.get("attributes") if isinstance(label.get("attributes"), dict) else {}
    ignored = name in IGNORE_MAPPING or any(attributes.get(a) for a in IGNORED_ATTRIBUTES)
    name = IGNORE_MAPPING.get(name) or NAME_MAPPING.get(name, name)
    return name, [x1, y1, x2 + 1, y2 + 1], ignored
