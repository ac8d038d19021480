"""Matching boxes to tracks: IoU and a thresholded least-cost assignment within each class.

Work grows with the pairs that can match, not with tracks x detections: the overlapping
pairs of one class are found at once for every class (``overlapping``, a sweep over boxes
sorted by x), and the assignment solver only sees the conflicts. A track and a detection
that may match only each other (most of them, on a road) are paired directly, as the
least-cost assignment would pair them.
"""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

_FORBIDDEN = 1e6  # cost of a pair that may not match in the solver's dense problem
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


def overlapping(a: np.ndarray, a_class: np.ndarray, b: np.ndarray,
                b_class: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every pair (i, j) of float (N, 4) xyxy box ``a[i]`` and (M, 4) ``b[j]`` of the same
    class (int (N,) ``a_class``, (M,) ``b_class``) whose boxes intersect: three (P,) arrays,
    rows of ``a``, rows of ``b`` and their float64 IoU (> 0)."""
    if not len(a) or not len(b):
        return _NONE, _NONE, np.zeros(0)
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    # classes side by side along x, a span apart, so boxes of two classes never meet
    left = min(a[:, 0].min(), b[:, 0].min())
    span = max(a[:, 2].max(), b[:, 2].max()) - left + 1.0
    ax1, ax2 = a[:, 0] - left + a_class * span, a[:, 2] - left + a_class * span
    bx1 = b[:, 0] - left + b_class * span
    order = np.argsort(bx1, kind="stable")
    sorted_x1 = bx1[order]
    widest = float((b[:, 2] - b[:, 0]).max())
    lo = np.searchsorted(sorted_x1, ax1 - widest, "right")  # b[j].x2 > a[i].x1 possible
    hi = np.searchsorted(sorted_x1, ax2, "left")  # b[j].x1 < a[i].x2
    count = np.maximum(hi - lo, 0)
    i = np.repeat(np.arange(len(a)), count)
    offset = np.arange(len(i)) - np.repeat(np.cumsum(count) - count, count)
    j = order[np.repeat(lo, count) + offset]
    value = _pair_iou(a[i], b[j])
    keep = value > 0
    return i[keep], j[keep], value[keep]


def _pair_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(P,) IoU of the rows of two float (P, 4) xyxy arrays."""
    w = np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    h = np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.maximum(w, 0) * np.maximum(h, 0)
    union = ((a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
             + (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]) - inter)
    return inter / np.maximum(union, 1e-9)


def assign(track_boxes: np.ndarray, track_classes: np.ndarray, det_boxes: np.ndarray,
           det_classes: np.ndarray, max_cost: float) -> tuple[np.ndarray, np.ndarray]:
    """Pairs (track row, detection row) of least total ``1 - IoU``, each at most ``max_cost``,
    a track only with detections of its own class. Returns two int arrays of equal length."""
    t, d, value = overlapping(track_boxes, track_classes, det_boxes, det_classes)
    ok = 1.0 - value <= max_cost
    return assign_pairs(t[ok], d[ok], 1.0 - value[ok])


def assign_pairs(rows: np.ndarray, cols: np.ndarray,
                 cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The least-cost matching, as many pairs as can be made, among the allowed pairs
    (``rows[k]``, ``cols[k]``) of cost ``cost[k]`` (three (P,) arrays, each pair once).
    Returns the chosen rows and columns: two int arrays of equal length."""
    if not len(rows):
        return _NONE, _NONE
    alone = (np.bincount(rows)[rows] == 1) & (np.bincount(cols)[cols] == 1)
    chosen_rows, chosen_cols = rows[alone], cols[alone]  # no rival: matched as they are
    if alone.all():
        return chosen_rows.astype(np.intp), chosen_cols.astype(np.intp)
    rest = ~alone
    r_ids, r = np.unique(rows[rest], return_inverse=True)
    c_ids, c = np.unique(cols[rest], return_inverse=True)
    dense = np.full((len(r_ids), len(c_ids)), _FORBIDDEN)
    dense[r.ravel(), c.ravel()] = cost[rest]
    r, c = linear_sum_assignment(dense)
    ok = dense[r, c] < _FORBIDDEN
    return (np.concatenate([chosen_rows, r_ids[r[ok]]]).astype(np.intp),
            np.concatenate([chosen_cols, c_ids[c[ok]]]).astype(np.intp))
