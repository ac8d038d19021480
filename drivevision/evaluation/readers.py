"""Ground truth and predictions from files, checked line by line.

Ground truth is read by suffix: ``.json`` a COCO file, ``.txt`` MOTChallenge ``gt.txt``
(``mot``) or KITTI tracking labels (``kitti``), anything else this project's JSONL (one frame
a line); a folder with ``data.yaml`` or ``classes.txt`` is a YOLO dataset
(``yolo.read_yolo``), a folder of KITTI object labels (``kitti_object``) and a ``.json``
opening a list BDD100K labels (``bdd``).
Predictions are the JSONL that ``drivevision detect`` writes. A file that cannot be read as
what it claims to be raises ValueError naming the file, the line (or COCO entry) and what
was expected.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes
from drivevision.evaluation.bdd import is_bdd, read_bdd
from drivevision.evaluation.kitti import is_kitti_line, read_kitti
from drivevision.evaluation.kitti_object import is_label_folder, read_kitti_objects
from drivevision.evaluation.mot import read_mot
from drivevision.evaluation.yolo import is_dataset, natural_key, read_yolo
from drivevision.labels import counted

EDGE_SLACK = 1.0  # pixels a labelled box may reach past its image (an export's rounding)


def read_truth(path: str | Path, *, kitti_difficulty: str | None = None) -> Annotations:
    """Ground truth from a COCO or BDD100K ``.json``, a MOTChallenge or KITTI tracking ``.txt``,
    a JSONL file, a YOLO dataset or a KITTI object label folder, that at ``kitti_difficulty``
    (``kitti_object.DIFFICULTIES``; None: its default, and a ValueError for other ground
    truth, which has no such levels); a ValueError when it has no object to find (no box
    that is not ignored), as nothing could be scored."""
    if is_dataset(path):
        truth = read_yolo(path)
    elif is_label_folder(path):
        truth = read_kitti_objects(path, kitti_difficulty)
        kitti_difficulty = None
    elif is_bdd(path):
        truth = read_bdd(path)
    else:
        suffix = Path(path).suffix.lower()
        reader = {".json": read_coco, ".txt": _read_text}.get(suffix, read_truth_jsonl)
        truth = reader(path)
    if kitti_difficulty is not None:
        raise ValueError(f"--kitti-difficulty applies to KITTI object labels (a label_2/ "
                         f"folder, a .txt an image), but {path} is other ground truth: "
                         "leave it out")
    _check_objects(truth)
    return truth


def _check_objects(truth: Annotations) -> None:
    """ValueError for ground truth without an object to find (no box, or only ignored
    ones): AP, precision and recall would all be undefined."""
    counted_boxes = [(~fb.ignore).sum() if fb.ignore is not None else len(fb)
                     for fb in truth.frames.values()]
    if sum(counted_boxes):
        return
    ignored = any(len(fb) for fb in truth.frames.values())
    what = counted(len(truth.frames), "image" if truth.file_names else "frame")
    raise ValueError(f"{truth.path} labels no object ({what}, none with a box"
                     f"{' that is not ignored' if ignored else ''}): AP, precision and recall "
                     "measure the objects found, so there is nothing to score: the wrong "
                     "file, or one exported before any box was drawn?")


TRUTH_FILES = ("ground truth: JSONL (one frame a line), COCO or BDD100K .json, MOTChallenge or "
               "KITTI tracking .txt, a KITTI object label folder (label_2/) or a YOLO dataset "
               "folder (data.yaml or classes.txt, images/, labels/)")
PREDICTION_FILES = ("detections as JSONL, as drivevision detect --jsonl writes them (a video "
                    "or folder to run the detector on is the INPUT, without --pred)")


def _text(path: str | Path, expected: str) -> str:
    """The file's text; ValueError naming what was ``expected`` for a missing file, a folder
    or one that is not text (a video or an image given in a file's place)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"{path} is not a text file: expected {expected}") from None
    except IsADirectoryError:
        raise ValueError(f"{path} is a folder: expected {expected}") from None
    except OSError as e:
        raise ValueError(f"Cannot read {path}: {e.strerror or e}") from None


def _lines(path: str | Path, expected: str = TRUTH_FILES) -> list[tuple[int, str]]:
    """Numbered non-blank lines; ValueError for a missing or empty file."""
    text = _text(path, expected)
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    if not lines:
        raise ValueError(f"{path} is empty: expected one JSON object per frame")
    return lines


def _json_line(path, n: int, line: str, expected: str | None = None) -> dict:
    """Line ``n`` as a frame's object. Not JSON, but ``detect --mot`` or ``--csv`` output (the
    wrong one of a run's files), the error says so and what was ``expected``, when given."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError as e:
        kind = _other_output(line) if expected else None
        if kind:
            raise ValueError(f"{path} line {n}: not JSON: this looks like {kind}; expected "
                             f"{expected}") from None
        raise ValueError(f"{path} line {n}: not JSON ({e.msg})") from None
    if not isinstance(record, dict) or not isinstance(record.get("frame"), int) \
            or isinstance(record["frame"], bool) or record["frame"] < 0:
        raise ValueError(f"{path} line {n}: expected an object with an integer \"frame\" >= 0, "
                         f"but got {line.strip()[:80]}")
    return record


def _other_output(line: str) -> str | None:
    """Which other file of ``detect`` a text line comes from: its MOTChallenge text (all
    numbers) or its CSV (the header); None for neither."""
    fields = [f.strip() for f in line.split(",")]
    if len(fields) >= 6 and all(re.fullmatch(r"-?[\d.]+(e-?\d+)?", f) for f in fields):
        return "MOTChallenge text, as detect --mot writes it"
    if fields[0] == "frame" and "class_name" in fields:
        return "CSV, as detect --csv writes it"
    return None


def _box(value, where: str) -> list[float]:
    if not (isinstance(value, list) and len(value) == 4
            and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                    for v in value)):
        raise ValueError(f"{where}: expected a box [x1, y1, x2, y2] of 4 numbers, but got "
                         f"{json.dumps(value)[:80]}")
    x1, y1, x2, y2 = value
    if x2 < x1 or y2 < y1:
        raise ValueError(f"{where}: box {value} has {'x2 < x1' if x2 < x1 else 'y2 < y1'} "
                         "(expected [x1, y1, x2, y2], top-left then bottom-right)")
    return [float(v) for v in value]


def _add_frame(frames: dict, lines_of: dict, frame: int, boxes: FrameBoxes, path, n: int):
    if frame in frames:
        raise ValueError(f"{path} line {n}: frame {frame} again (first on line {lines_of[frame]})")
    frames[frame], lines_of[frame] = boxes, n


def _labels(value, n_boxes: int, where: str) -> tuple[str, ...]:
    if not (isinstance(value, list) and len(value) == n_boxes
            and all(isinstance(v, str) and v.strip() for v in value)):
        raise ValueError(f"{where}: expected \"labels\", a list of "
                         f"{counted(n_boxes, 'class name')} (one per box), but got "
                         f"{json.dumps(value)[:80]}")
    return tuple(v.strip().lower() for v in value)


def _optional(record: dict, key: str, n_boxes: int, kind, where: str) -> np.ndarray | None:
    value = record.get(key)
    if value is None:
        return None
    if not (isinstance(value, list) and len(value) == n_boxes
            and all(isinstance(v, kind) for v in value)):
        raise ValueError(f"{where}: expected \"{key}\", a list of {n_boxes} "
                         f"{'booleans' if kind is bool else 'integers'}, but got "
                         f"{json.dumps(value)[:80]}")
    return np.array(value, bool if kind is bool else np.int64)


def _size(record: dict, where: str) -> tuple[int, int] | None:
    if "width" not in record and "height" not in record:
        return None
    w, h = record.get("width"), record.get("height")
    if not (isinstance(w, int) and isinstance(h, int) and w > 0 and h > 0):
        raise ValueError(f"{where}: expected integer \"width\" and \"height\" > 0 together, "
                         f"but got {w!r} and {h!r}")
    return w, h


def read_truth_jsonl(path: str | Path) -> Annotations:
    """This project's ground truth: ``{"frame": 0, "boxes": [[x1, y1, x2, y2], ...],
    "labels": ["car", ...]}`` a line, optionally ``"track_ids"``, ``"ignore"`` (booleans)
    and ``"width"``, ``"height"`` (the frame's size in pixels)."""
    frames, lines_of, sizes, classes = {}, {}, {}, {}
    for n, line in _lines(path):
        record, where = _json_line(path, n, line), f"{path} line {n}"
        raw = record.get("boxes")
        if not isinstance(raw, list):
            raise ValueError(f"{where}: expected \"boxes\", a list of [x1, y1, x2, y2]"
                             + _swapped(record, "detections", "--pred"))
        boxes = [_box(b, f"{where} box {i}") for i, b in enumerate(raw)]
        labels = _labels(record.get("labels"), len(boxes), where)
        classes.update(dict.fromkeys(labels))
        entry = FrameBoxes(np.array(boxes, np.float64).reshape(-1, 4), labels,
                           track_ids=_optional(record, "track_ids", len(boxes), int, where),
                           ignore=_optional(record, "ignore", len(boxes), bool, where))
        _add_frame(frames, lines_of, record["frame"], entry, path, n)
        if (size := _size(record, where)) is not None:
            sizes[record["frame"]] = size
    return Annotations(str(path), frames, tuple(classes), sizes)


def read_predictions(path: str | Path) -> Annotations:
    """Detections as ``drivevision detect --jsonl`` writes them: ``{"frame": 0,
    "detections": [{"class_name": "car", "score": 0.98, "box": [x1, y1, x2, y2]}, ...]}``
    a line, ``"track_id"`` on each detection when tracked, ``"file"`` naming the frame's
    image for a folder of images, ``"width"`` and ``"height"`` the frame's size (lines
    written before detect stated it have none). The outage lines of ``live --jsonl``
    (``{"gap": {...}}``) are passed over."""
    frames, lines_of, classes, files, sizes = {}, {}, {}, {}, {}
    for n, line in _lines(path, PREDICTION_FILES):
        if _outage(line):
            continue  # a live run's record of a stream outage: no frame of its own
        record, where = _json_line(path, n, line, PREDICTION_FILES), f"{path} line {n}"
        dets = record.get("detections")
        if not isinstance(dets, list) or not all(isinstance(d, dict) for d in dets):
            raise ValueError(f"{where}: expected \"detections\", a list of objects with "
                             "\"class_name\", \"score\" and \"box\""
                             + _swapped(record, "boxes", "--gt"))
        entry = _detections(dets, where)
        classes.update(dict.fromkeys(entry.labels))
        _add_frame(frames, lines_of, record["frame"], entry, path, n)
        if isinstance(record.get("file"), str):
            files[record["frame"]] = record["file"]
        if (size := _size(record, where)) is not None:
            sizes[record["frame"]] = size
    return Annotations(str(path), frames, tuple(classes), sizes, file_names=files)


def _outage(line: str) -> bool:
    """Whether ``line`` is ``{"gap": {...}}``, which ``drivevision live --jsonl`` writes for
    a time the stream was down."""
    if not line.lstrip().startswith('{"gap"'):
        return False
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return False
    return isinstance(record, dict) and list(record) == ["gap"]


def _swapped(record: dict, key: str, option: str) -> str:
    """A hint, when the line holds the other kind of file's ``key``: --gt and --pred swapped."""
    return f"; this looks like a {option} file: are --gt and --pred swapped?" \
        if key in record else ""


def _detections(dets: list[dict], where: str) -> FrameBoxes:
    boxes, labels, scores, tracks = [], [], [], []
    for i, d in enumerate(dets):
        name, score = d.get("class_name"), d.get("score")
        if not isinstance(name, str) or not name.strip() or not isinstance(score, (int, float)) \
                or isinstance(score, bool) or not 0 <= score <= 1:
            raise ValueError(f"{where} detection {i}: expected a \"class_name\" and a "
                             f"\"score\" in [0, 1], but got {json.dumps(d)[:80]}")
        boxes.append(_box(d.get("box"), f"{where} detection {i}"))
        labels.append(name.strip().lower())
        scores.append(float(score))
        tracks.append(d.get("track_id"))
    tracked = bool(tracks) and all(isinstance(t, int) for t in tracks)
    return FrameBoxes(np.array(boxes, np.float64).reshape(-1, 4), tuple(labels),
                      np.array(scores, np.float64), np.array(tracks, np.int64) if tracked else None)


def read_coco(path: str | Path) -> Annotations:
    """A COCO detection file. Images become frames by an integer ``frame_index`` on every
    image (a video's frames), else by their ``file_name`` in natural order, the order in
    which ``detect`` reads a folder of those images. ``iscrowd`` boxes are ignored regions."""
    data, names, frame_of, sizes, files = _coco_index(path)
    per_frame: dict[int, list] = {f: [] for f in frame_of.values()}
    for k, ann in enumerate(data["annotations"]):
        where = f"{path} annotation {ann.get('id', k) if isinstance(ann, dict) else k}"
        if not isinstance(ann, dict) or ann.get("image_id") not in frame_of \
                or ann.get("category_id") not in names:
            raise ValueError(f"{where}: expected an \"image_id\" of an image and a "
                             "\"category_id\" of a category")
        bbox = ann.get("bbox")
        if isinstance(bbox, list) and len(bbox) == 4 and all(
                isinstance(v, (int, float)) for v in bbox):
            bbox = [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]
        box = _box(bbox, f"{where} bbox [x, y, w, h]")
        frame = frame_of[ann["image_id"]]
        _check_inside(box, sizes[frame], f"{where}: bbox {json.dumps(ann['bbox'])}",
                      f"image {files[frame]}")
        per_frame[frame].append(
            (box, names[ann["category_id"]], bool(ann.get("iscrowd", 0)), ann.get("track_id")))
    frames = {f: _coco_frame(anns) for f, anns in per_frame.items()}
    return Annotations(str(path), frames, tuple(dict.fromkeys(names.values())), sizes,
                       file_names=files)


def coco_ids(path: str | Path) -> tuple[dict, dict[int, str]]:
    """The COCO file's image id -> frame (as ``read_coco`` numbers them) and category id ->
    class name (lower case): what COCO results refer to."""
    _, names, frame_of, _, _ = _coco_index(path)
    return frame_of, names


def _coco_index(path: str | Path) -> tuple[dict, dict, dict, dict, dict]:
    """The COCO file's data, category id -> name, image id -> frame, frame -> (width,
    height) and frame -> file name; ValueError for a file that is not COCO."""
    try:
        data = json.loads(_text(path, TRUTH_FILES))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not JSON ({e.msg}, line {e.lineno})") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(k), list) for k in
                                             ("images", "annotations", "categories")):
        raise ValueError(f"{path}: expected a COCO object with lists \"images\", "
                         "\"annotations\" and \"categories\"")
    if not data["images"]:
        raise ValueError(f"{path}: a COCO file with no images")
    try:
        names = {c["id"]: str(c["name"]).strip().lower() for c in data["categories"]}
        frame_of, sizes = _coco_frames(data["images"])
        files = {frame_of[im["id"]]: Path(str(im.get("file_name", ""))).name
                 for im in data["images"]}
    except (KeyError, TypeError) as e:
        raise ValueError(f"{path}: expected categories with \"id\" and \"name\" and images "
                         f"with \"id\", \"file_name\", \"width\" and \"height\" (missing {e})"
                         ) from None
    return data, names, frame_of, sizes, files


def _check_inside(box: list[float], size: tuple[int, int], where: str, image: str) -> None:
    """ValueError for a COCO box reaching past its image (more than ``EDGE_SLACK``): its bbox
    was written as corners [x1, y1, x2, y2], not as COCO's [x, y, width, height]."""
    (w, h), x2, y2 = size, box[2], box[3]
    if x2 > w + EDGE_SLACK or y2 > h + EDGE_SLACK:
        raise ValueError(f"{where} reaches ({x2:g}, {y2:g}), past the {w}x{h} {image}: is it "
                         "[x1, y1, x2, y2]? COCO's bbox is [x, y, width, height]")


def _coco_frames(images: list[dict]) -> tuple[dict, dict]:
    """image id -> frame index, and frame index -> (width, height)."""
    indexed = [isinstance(im.get("frame_index"), int) for im in images]
    if any(indexed) and not all(indexed):
        raise ValueError("expected an integer \"frame_index\" on every image or on none")
    if all(indexed):
        order = [(im["frame_index"], im) for im in images]
    else:
        ranked = sorted(images, key=lambda im: natural_key(Path(im["file_name"]).name))
        order = list(enumerate(ranked))
    frame_of = {im["id"]: f for f, im in order}
    if len(frame_of) != len(images) or len({f for f, _ in order}) != len(images):
        raise ValueError("expected unique image ids and frame indices")
    return frame_of, {f: (int(im["width"]), int(im["height"])) for f, im in order}


def _coco_frame(anns: list) -> FrameBoxes:
    tracks = [a[3] for a in anns]
    tracked = bool(anns) and all(isinstance(t, int) for t in tracks)
    return FrameBoxes(np.array([a[0] for a in anns], np.float64).reshape(-1, 4),
                      tuple(a[1] for a in anns), None,
                      np.array(tracks, np.int64) if tracked else None,
                      np.array([a[2] for a in anns], bool))


def _read_text(path: str | Path) -> Annotations:
    """A ``.txt`` file: KITTI tracking labels (space-separated, a class name in the third
    column), else MOTChallenge."""
    lines = _lines(path)
    if is_kitti_line(lines[0][1]):
        return read_kitti(path, lines)
    return read_mot(path, lines)
