"""Matching: the overlap sweep and the pairing without a solver give what one dense
least-cost assignment per class gives."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

from drivevision.tracking.matching import assign, iou, overlapping


def boxes(rng, n: int) -> np.ndarray:
    xy = rng.uniform(0, 600, (n, 2))
    return np.concatenate([xy, xy + rng.uniform(5, 150, (n, 2))], 1)


def dense_per_class(a, ac, b, bc, max_cost):
    """The reference: a full IoU matrix and one assignment per class; (matches, total cost)."""
    cost = 1.0 - iou(a, b)
    count, total = 0, 0.0
    for c in np.intersect1d(ac, bc):
        t, d = np.flatnonzero(ac == c), np.flatnonzero(bc == c)
        block = cost[np.ix_(t, d)]
        r, k = linear_sum_assignment(np.where(block <= max_cost, block, 1e6))
        ok = block[r, k] <= max_cost
        count, total = count + int(ok.sum()), total + float(block[r, k][ok].sum())
    return count, total


@pytest.mark.parametrize("seed", range(6))
def test_assign_matches_as_many_at_the_same_least_cost_as_one_dense_problem_per_class(seed):
    rng = np.random.default_rng(seed)
    a = boxes(rng, 120)
    b = np.concatenate([a[:90] + rng.normal(0, 8, (90, 4)), boxes(rng, 60)])  # crowded
    b[:, 2:] = np.maximum(b[:, 2:], b[:, :2] + 1)
    ac, bc = rng.integers(0, 3, len(a)), rng.integers(0, 3, len(b))
    bc[:90] = np.where(rng.random(90) < 0.8, ac[:90], bc[:90])
    rows, cols = assign(a, ac, b, bc, 0.8)
    assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
    assert (ac[rows] == bc[cols]).all()
    cost = 1.0 - iou(a, b)[rows, cols]
    assert (cost <= 0.8).all()
    count, total = dense_per_class(a, ac, b, bc, 0.8)
    assert len(rows) == count and cost.sum() == pytest.approx(total)


def test_overlapping_finds_every_intersecting_pair_of_one_class_and_no_other():
    rng = np.random.default_rng(9)
    a, b = boxes(rng, 80), boxes(rng, 70)
    ac, bc = rng.integers(0, 4, 80), rng.integers(0, 4, 70)
    i, j, value = overlapping(a, ac, b, bc)
    full = iou(a, b) * (ac[:, None] == bc[None, :])
    assert sorted(zip(i.tolist(), j.tolist())) == sorted(zip(*np.nonzero(full > 0)))
    assert value == pytest.approx(full[i, j])
