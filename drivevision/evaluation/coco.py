"""COCO box metrics by pycocotools' ``COCOeval``, the reference implementation.

Frames become COCO images (id = frame + 1), class names categories (id = position + 1),
boxes ``[x, y, w, h]`` annotations with ``area = w * h`` (there are no masks), ignored ground
truth ``iscrowd`` regions: a detection inside one is neither a hit nor a false positive; an
ignored box whose label is no class of the file (KITTI's DontCare) is one of every class.
A detection shorter than the ground truth's ``min_height`` that matches nothing is ignored
too, as ``COCOeval`` ignores one outside the area range it scores (``_ignore_short``).
"""

from __future__ import annotations

import contextlib
import io
from collections import Counter

import numpy as np

from drivevision.evaluation.annotations import Annotations
from drivevision.evaluation.classes import (
    best_f1_threshold,
    confusion_matrix,
    matches_at_50,
    precision_recall,
)

# COCOeval.stats positions of the numbers we report (maxDets 100, every area unless named)
STATS = {"AP": 0, "AP50": 1, "AP75": 2, "APs": 3, "APm": 4, "APl": 5, "AR100": 8}
RECALLS = np.linspace(0.0, 1.0, 101)  # COCOeval's recall thresholds, where precision is read


def _xywh(box: np.ndarray) -> list[float]:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_dicts(truth: Annotations, preds: Annotations,
               classes: tuple[str, ...]) -> tuple[dict, list[dict]]:
    """The ground truth as a COCO dataset and the predictions as COCO results. ``preds``
    must hold only frames of ``truth`` and labels of ``classes``."""
    cat = {name: i for i, name in enumerate(classes, 1)}
    images = [{"id": f + 1, **({"width": s[0], "height": s[1]} if (s := truth.sizes.get(f))
                               else {})} for f in truth.frames]
    anns = []
    for f, fb in truth.frames.items():
        ignore = fb.ignore if fb.ignore is not None else np.zeros(len(fb), bool)
        for box, label, crowd in zip(fb.boxes, fb.labels, ignore):
            xywh = _xywh(box)
            # an ignored region of no class of the file (KITTI's DontCare): of every class
            for c in [cat[label]] if label in cat or not crowd else cat.values():
                anns.append({"id": len(anns) + 1, "image_id": f + 1, "category_id": c,
                             "bbox": xywh, "area": xywh[2] * xywh[3], "iscrowd": int(crowd)})
    results = [{"image_id": f + 1, "category_id": cat[label], "bbox": _xywh(box),
                "score": float(score)}
               for f, fb in preds.frames.items()
               for box, label, score in zip(fb.boxes, fb.labels, fb.scores)]
    categories = [{"id": i, "name": name} for name, i in cat.items()]
    return {"images": images, "annotations": anns, "categories": categories}, results


def coco_metrics(truth: Annotations, preds: Annotations, classes: tuple[str, ...],
                 unlabelled: Annotations | None = None) -> dict:
    """AP, AP50, AP75, APs, APm, APl, AR100 (0..1; None where the ground truth has no such
    object), ``per_class`` name -> AP@[.5:.95] (None for a class without ground truth),
    ``conf_best_f1`` and ``classes`` (name -> ``gt_boxes``, ``detections``, ``precision``,
    ``recall``, ``AP50``, ``AP``; see ``evaluation.classes``), ``confusion`` (int64 (K+1, K+1),
    [predicted, true] over ``classes``, then ``unlabelled``'s (predictions of classes the
    ground truth lacks, scored nowhere else), background last) and ``curves``: name ->
    precision at ``RECALLS`` for IoU 0.5 and 0.75 (lists, -1 where undefined)."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    dataset, results = coco_dicts(truth, preds, classes)
    with contextlib.redirect_stdout(io.StringIO()):  # COCOeval prints as it goes
        gt = _coco(COCO, dataset)
        dt = _coco(COCO, {**dataset, "annotations": [
            {**r, "id": i, "area": r["bbox"][2] * r["bbox"][3], "iscrowd": 0}
            for i, r in enumerate(results, 1)]})
        ev = COCOeval(gt, dt, iouType="bbox")
        ev.evaluate()
        _ignore_short(ev, truth.min_height)
        ev.accumulate()
        ev.summarize()
    out = {k: _defined(ev.stats[i]) for k, i in STATS.items()}
    precision = ev.eval["precision"]  # [IoU threshold, recall, class, area, maxDets]
    out["per_class"] = {name: _mean_defined(precision[:, :, k, 0, -1])
                        for k, name in enumerate(classes)}
    out.update(_per_class_rows(ev, truth, preds, classes, precision, unlabelled))
    out["curves"] = {name: {"iou50": precision[0, :, k, 0, -1].tolist(),
                            "iou75": precision[5, :, k, 0, -1].tolist()}
                     for k, name in enumerate(classes)}
    return out


def _ignore_short(ev, height: float) -> None:
    """Marks the detections of ``ev.evalImgs`` shorter than ``height`` px that match no
    ground truth at an IoU threshold as ignored there, in every area range, before
    ``accumulate`` reads them: AP, and P, R and the confusion matrix, which read the same
    matches (``classes.matches_at_50``), leave them out. KITTI's devkit does so for a
    difficulty level's height (``clean_data``), as ``COCOeval`` itself does for a detection
    outside the area range (``dtm == 0`` and outside ``aRng``)."""
    if not height:
        return
    for e in ev.evalImgs:
        if e is None or not len(e["dtIds"]):
            continue
        short = np.array([ev.cocoDt.anns[d]["bbox"][3] < height for d in e["dtIds"]])
        e["dtIgnore"] = np.logical_or(e["dtIgnore"], (e["dtMatches"] == 0) & short)


def _per_class_rows(ev, truth: Annotations, preds: Annotations, classes: tuple[str, ...],
                    precision: np.ndarray, unlabelled: Annotations | None) -> dict:
    """``conf_best_f1``, ``classes`` (name -> gt_boxes, detections, precision, recall at that
    threshold, AP50, AP) and ``confusion`` (``classes.confusion_matrix``)."""
    matches = matches_at_50(ev, classes)
    threshold = best_f1_threshold(matches)
    pr = precision_recall(matches, threshold)
    # COCO result ids count the predictions in coco_dicts' order from 1
    where = [(f, i) for f, fb in preds.frames.items() for i in range(len(fb))]
    ignored = {where[d - 1] for m in matches.values() for d in m["ignored_ids"]}
    dets = Counter(n for fb in preds.frames.values() for n in fb.labels)
    rows = {name: {"gt_boxes": m["gt"], "detections": dets[name], **pr[name],
                   "AP50": _mean_defined(precision[0, :, k, 0, -1]),
                   "AP": _mean_defined(precision[:, :, k, 0, -1])}
            for k, (name, m) in enumerate(matches.items())}
    return {"conf_best_f1": threshold, "classes": rows,
            "confusion": confusion_matrix(truth, preds, classes, threshold, ignored,
                                          unlabelled, truth.min_height)}


def _coco(cls, dataset: dict):
    """A pycocotools COCO object over an in-memory dataset (``loadRes`` cannot take none)."""
    coco = cls()
    coco.dataset = dataset
    coco.createIndex()
    return coco


def _defined(value: float) -> float | None:
    return None if value < 0 else float(value)


def _mean_defined(values: np.ndarray) -> float | None:
    valid = values[values > -1]
    return float(valid.mean()) if valid.size else None
