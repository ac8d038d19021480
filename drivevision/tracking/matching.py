"""Matching boxes to tracks: IoU and a thresholded assignment within each class."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_FORBIDDEN = 1e6  # cost of a pair that may not match (another class, or too far)


def iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(N, M) intersection over union of float (N, 4) and (M, 4) xyxy boxes."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(a[:, 2:] - a[:, :2], axis=1)
    area_b = np.prod(b[:, 2:] - b[:, :2], axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / np.maximum(union, 1e-9)


def assign(track_boxes: np.ndarray, track_classes: np.ndarray, det_boxes: np.ndarray,
           det_classes: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (track row, detection row) of least total ``1 - IoU``, each at most ``max_cost``,
    a track only with detections of its own class. Returns two int arrays of equal length,
    ordered by track row."""
    rows, cols = [], []
    for cls in np.intersect1d(track_classes, det_classes):
        t = np.flatnonzero(track_classes == cls)
        d = np.flatnonzero(det_classes == cls)
        cost = 1.0 - iou(track_boxes[t], det_boxes[d])
        allowed = cost <= max_cost
        keep_t, keep_d = allowed.any(1), allowed.any(0)  # a smaller problem, same answer
        t, d, cost = t[keep_t], d[keep_d], cost[np.ix_(keep_t, keep_d)]
        cost[~allowed[np.ix_(keep_t, keep_d)]] = _FORBIDDEN
        r, c = linear_sum_assignment(cost)
        ok = cost[r, c] <= max_cost
        rows.append(t[r[ok]])
        cols.append(d[c[ok]])
    if not rows:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    rows, cols = np.concatenate(rows), np.concatenate(cols)
    order = np.argsort(rows, kind="stable")
    return rows[order], cols[order]
