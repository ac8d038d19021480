"""Predictions as COCO results, the file pycocotools' ``loadRes`` reads and most detection
code bases write (``[{"image_id": 1, "category_id": 3, "bbox": [x, y, w, h], "score":
0.9}, ...]``): scored against the COCO ground truth whose image and category ids they name.

Every image of that ground truth is a predicted frame, one without results a frame with no
detections, as ``COCOeval`` counts it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes
from drivevision.evaluation.bdd import is_bdd
from drivevision.evaluation.readers import _box, coco_ids

RESULTS = "COCO results (a list of image_id, category_id, bbox [x, y, w, h] and score)"


def is_coco_results(path: str | Path) -> bool:
    """A ``.json`` file holding a list: COCO results (a COCO dataset is an object)."""
    if Path(path).suffix.lower() != ".json" or not Path(path).is_file():
        return False
    with open(path, "rb") as f:
        return f.read(4096).lstrip()[:1] == b"["


def read_coco_results(path: str | Path, truth_path: str | Path) -> Annotations:
    """The results of ``path`` as predictions on the frames of the COCO ground truth
    ``truth_path`` (``readers.read_coco``'s numbering), class names from its categories."""
    if Path(truth_path).suffix.lower() != ".json" or Path(truth_path).is_dir() \
            or is_bdd(truth_path):  # BDD100K labels name images, not COCO ids
        raise ValueError(f"{path} holds {RESULTS}, whose ids are those of a COCO ground "
                         f"truth: give that .json as --gt (not {truth_path})")
    frame_of, names = coco_ids(truth_path)
    try:
        results = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path}: not JSON ({e})") from None
    per_frame: dict[int, list] = {f: [] for f in frame_of.values()}
    for k, r in enumerate(results):
        where = f"{path} result {k}"
        per_frame[_frame(r, frame_of, names, where, truth_path)].append(_result(r, names, where))
    frames = {f: FrameBoxes(np.array([b for b, _, _ in rs], np.float64).reshape(-1, 4),
                            tuple(n for _, n, _ in rs), np.array([s for _, _, s in rs], float))
              for f, rs in per_frame.items()}
    classes = dict.fromkeys(n for fb in frames.values() for n in fb.labels)
    return Annotations(str(path), frames, tuple(classes))


def _frame(r, frame_of: dict, names: dict, where: str, truth_path) -> int:
    if not isinstance(r, dict) or r.get("image_id") not in frame_of \
            or r.get("category_id") not in names:
        raise ValueError(f"{where}: expected an \"image_id\" of an image and a \"category_id\" "
                         f"of a category of {truth_path}, but got {json.dumps(r)[:80]}")
    return frame_of[r["image_id"]]


def _result(r: dict, names: dict, where: str) -> tuple[list[float], str, float]:
    score, bbox = r.get("score"), r.get("bbox")
    if not isinstance(score, (int, float)) or isinstance(score, bool) or not math.isfinite(score):
        raise ValueError(f"{where}: expected a \"score\", a number, but got {json.dumps(r)[:80]}")
    if isinstance(bbox, list) and len(bbox) == 4 and all(
            isinstance(v, (int, float)) for v in bbox):
        bbox = [bbox[0], bbox[1], bbox[0] + bbox[2], bbox[1] + bbox[3]]
    return _box(bbox, f"{where} bbox [x, y, w, h]"), names[r["category_id"]], float(score)
