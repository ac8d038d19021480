"""Per-class precision, recall and counts, and the confusion matrix, as Ultralytics' ``val``
reports them.

Precision and recall come from pycocotools' own matching (``COCOeval.evalImgs`` at IoU 0.5,
every area, up to 100 detections a frame: the matches AP50 is made of). They are read at one
score threshold for every class, the one where the mean F1 over the classes with ground
truth is highest (Ultralytics' choice; the highest such score when several tie).

The confusion matrix matches boxes itself, as Ultralytics' ``ConfusionMatrix`` does, since
COCOeval matches only within a class: per frame, every detection scoring at least that
threshold against every ground-truth box of any class, pairs with IoU >= 0.5 taken greedily
by IoU, highest first, each box in one pair at most (IoU by ``pycocotools.mask.iou``). Ignored
ground truth (crowd regions) and the detections COCOeval ignored for overlapping one are left
out, and so are those it ignored as shorter than the ground truth's ``min_height`` and
matching no object of their class (KITTI's difficulty), and the predictions of a class the
ground truth lacks (which match none) shorter than it. Rows are the predicted class, columns
the true class; the last row and column are the background: a missed object, a detection
of nothing. A box of the wrong class on an object counts once, in its own row and the
object's column (a truck box on a car: row truck, column car), never as a detection of
nothing plus a missed object; so do predictions of a class the ground truth does not label
(rows after its classes, their columns empty), which AP leaves out.
"""

from __future__ import annotations

import numpy as np

from drivevision.evaluation.annotations import Annotations

IOU = 0.5


def matches_at_50(ev, classes: tuple[str, ...]) -> dict[str, dict]:
    """Per class name: ``scores`` and ``tp`` (matched at IoU 0.5) of the detections COCOeval
    scored at IoU 0.5 in area "all", ``ids`` their annotation ids, ``ignored_ids`` those it
    ignored (on a crowd region), and ``gt`` the ground-truth boxes it counts."""
    n_img, n_area = len(ev.params.imgIds), len(ev.params.areaRng)
    out = {}
    for k, name in enumerate(classes):
        scores, tp, ids, ignored, gt = [], [], [], [], 0
        for e in ev.evalImgs[k * n_area * n_img:k * n_area * n_img + n_img]:  # area "all"
            if e is None:
                continue
            keep = ~e["dtIgnore"][0].astype(bool)
            scores += np.asarray(e["dtScores"])[keep].tolist()
            tp += (e["dtMatches"][0][keep] > 0).tolist()
            ids += np.asarray(e["dtIds"])[keep].tolist()
            ignored += np.asarray(e["dtIds"])[~keep].tolist()
            gt += int((~np.asarray(e["gtIgnore"]).astype(bool)).sum())
        out[name] = {"scores": np.asarray(scores, float), "tp": np.asarray(tp, bool),
                     "ids": ids, "ignored_ids": set(ignored), "gt": gt}
    return out


def best_f1_threshold(matches: dict[str, dict]) -> float | None:
    """The score threshold with the highest mean F1 over the classes with ground truth
    (None when there is no detection)."""
    candidates = np.unique(np.concatenate([m["scores"] for m in matches.values()] + [[]]))
    counted = [m for m in matches.values() if m["gt"]]
    if not candidates.size or not counted:
        return None
    f1 = np.zeros(candidates.size)
    for m in counted:
        tp, n = _at(m, candidates)
        f1 += np.where(n > 0, 2 * tp / (n + m["gt"]), 0.0)  # 2PR/(P+R) = 2TP/(dets + gt)
    best = np.flatnonzero(f1 == f1.max()).max()  # candidates ascend: the highest score
    return float(candidates[best])


def _at(m: dict, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """True positives and detections of one class scoring at least each threshold."""
    order = np.argsort(-m["scores"], kind="stable")
    desc = m["scores"][order]
    tp = np.concatenate([[0], np.cumsum(m["tp"][order])])  # tp[n]: of the n highest
    n = np.searchsorted(-desc, -np.asarray(thresholds), side="right")
    return tp[n], n


def precision_recall(matches: dict[str, dict], threshold: float | None) -> dict[str, dict]:
    """Per class: ``precision`` (None without detections at ``threshold``) and ``recall``
    (None without ground truth) at IoU 0.5 over detections scoring ``threshold`` and up."""
    out = {}
    for name, m in matches.items():
        tp, n = (0, 0) if threshold is None else (int(v[0]) for v in _at(m, [threshold]))
        out[name] = {"precision": tp / n if n else None,
                     "recall": tp / m["gt"] if m["gt"] else None}
    return out


def confusion_matrix(truth: Annotations, preds: Annotations, classes: tuple[str, ...],
                     threshold: float | None, ignored: set[tuple[int, int]],
                     unlabelled: Annotations | None = None,
                     min_height: float = 0.0) -> np.ndarray:
    """int64 (K+1, K+1): [predicted, true] counts over ``classes``, then the classes of
    ``unlabelled`` (predictions of classes the ground truth lacks), and the background
    (last), for detections scoring ``threshold`` and up (none if None), leaving out ignored
    ground truth, the detections ``ignored`` names as (frame, index in ``preds``' frame)
    and those of ``unlabelled`` shorter than ``min_height`` px."""
    from pycocotools import mask

    extra = () if unlabelled is None else unlabelled.classes
    index = {name: i for i, name in enumerate((*classes, *extra))}
    bg = len(index)
    cm = np.zeros((bg + 1, bg + 1), np.int64)
    skipped: dict[int, set[int]] = {}
    for f, i in ignored:
        skipped.setdefault(f, set()).add(i)
    for f, fb in truth.frames.items():
        keep = ~fb.ignore if fb.ignore is not None else np.ones(len(fb), bool)
        gt_cls = [index[n] for n, k in zip(fb.labels, keep) if k]
        gt_box = _xywh(fb.boxes[keep])
        other = unlabelled.frames.get(f) if unlabelled else None
        found = [] if threshold is None else (
            _scoring(preds.frames.get(f), threshold, skipped.get(f, set()))
            + _scoring(other, threshold, _short(other, min_height)))
        dt_cls = [index[name] for name, _ in found]
        dt_box = _xywh(np.array([box for _, box in found])) if found else np.zeros((0, 4))
        pairs = _greedy(mask.iou(dt_box, gt_box, [0] * len(gt_box)) if found and gt_cls
                        else np.zeros((len(found), len(gt_cls))))
        for d, g in pairs:
            cm[dt_cls[d], gt_cls[g]] += 1
        for g in set(range(len(gt_cls))) - {g for _, g in pairs}:
            cm[bg, gt_cls[g]] += 1
        for d in set(range(len(found))) - {d for d, _ in pairs}:
            cm[dt_cls[d], bg] += 1
    return cm


def _scoring(fb, threshold: float, skip: set[int]) -> list[tuple[str, np.ndarray]]:
    """(class name, xyxy box) of the boxes of ``fb`` (None: no line) scoring ``threshold``
    and up, but those at the indices ``skip``."""
    if fb is None:
        return []
    return [(fb.labels[i], fb.boxes[i]) for i in range(len(fb))
            if fb.scores[i] >= threshold and i not in skip]


def _short(fb, height: float) -> set[int]:
    """The indices of the boxes of ``fb`` (None: no line) shorter than ``height`` px."""
    if fb is None or not height:
        return set()
    return set(np.flatnonzero(fb.boxes[:, 3] - fb.boxes[:, 1] < height).tolist())


def _greedy(iou: np.ndarray) -> list[tuple[int, int]]:
    """(detection, ground truth) pairs with IoU >= ``IOU``, highest IoU first, each row
    and column used once."""
    rows, cols = np.nonzero(iou >= IOU)
    pairs, used_d, used_g = [], set(), set()
    for i in np.argsort(-iou[rows, cols], kind="stable"):
        d, g = int(rows[i]), int(cols[i])
        if d not in used_d and g not in used_g:
            pairs.append((d, g))
            used_d.add(d)
            used_g.add(g)
    return pairs


def _xywh(boxes: np.ndarray) -> np.ndarray:
    out = np.asarray(boxes, float).reshape(-1, 4).copy()
    out[:, 2:] -= out[:, :2]
    return out
