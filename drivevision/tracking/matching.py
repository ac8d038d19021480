"""Matching boxes to tracks: IoU and a thresholded assignment within each class."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_FORBIDDEN = 1e6  # cost of a pair that may not match (another class, or too far)
_SMALL = 64 * 64  # tracks x detections up to which one problem beats one per class
_NONE = np.zeros(0, np.intp)


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
    a track only with detections of its own class. Returns two int arrays of equal length.

    Pairs of different classes never match, so the problem splits into one per class: solved
    apart when large (cheaper), together when small (fewer calls).
    """
    if len(track_boxes) * len(det_boxes) <= _SMALL:
        return _solve(np.arange(len(track_boxes)), np.arange(len(det_boxes)), track_boxes,
                      track_classes, det_boxes, det_classes, max_cost)
    pairs = [_solve(np.flatnonzero(track_classes == c), np.flatnonzero(det_classes == c),
                    track_boxes, track_classes, det_boxes, det_classes, max_cost)
             for c in np.intersect1d(track_classes, det_classes)]
    if not pairs:
        return _NONE, _NONE
    return np.concatenate([r for r, _ in pairs]), np.concatenate([c for _, c in pairs])


def _solve(t: np.ndarray, d: np.ndarray, track_boxes, track_classes, det_boxes, det_classes,
           max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """``assign`` over track rows ``t`` and detection rows ``d``."""
    if not len(t) or not len(d):
        return _NONE, _NONE
    cost = 1.0 - iou(track_boxes[t], det_boxes[d])
    allowed = (cost <= max_cost) & (track_classes[t, None] == det_classes[None, d])
    rows, cols = allowed.any(1), allowed.any(0)  # only rows and columns that can match
    if not rows.any():
        return _NONE, _NONE
    t, d = t[rows], d[cols]
    cost, allowed = cost[np.ix_(rows, cols)], allowed[np.ix_(rows, cols)]
    cost[~allowed] = _FORBIDDEN
    r, c = linear_sum_assignment(cost)
    ok = allowed[r, c]
    return t[r[ok]], d[c[ok]]
