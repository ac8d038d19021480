"""Tracking scores by motmetrics: MOTA, IDF1, identity switches.

HOTA is not computed: TrackEval's package (``trackeval`` on PyPI) requires opencv-python,
whose bundled Qt clashes with PyQt6, and motmetrics has none. IoU distances are computed
here with torchvision (motmetrics 1.4's own ``iou_matrix`` calls ``np.asfarray``, which
numpy 2 removed) and passed in.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

from drivevision.evaluation.annotations import Annotations, FrameBoxes

MIN_IOU = 0.5  # a track box matches a ground-truth box at this IoU or more, of one class


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return torchvision.ops.box_iou(torch.as_tensor(a, dtype=torch.float64),
                                   torch.as_tensor(b, dtype=torch.float64)).numpy()


def _frame_distances(truth: FrameBoxes, pred: FrameBoxes):
    """Ground truth and predictions to score in one frame, and their distance matrix
    (1 - IoU; NaN, no match, below ``MIN_IOU`` or across classes). Predictions on an ignored
    ground-truth box are dropped, as MOTChallenge drops those on its distractors."""
    ignore = truth.ignore if truth.ignore is not None else np.zeros(len(truth), bool)
    keep_pred = np.ones(len(pred), bool)
    if ignore.any() and len(pred):
        keep_pred = _iou(pred.boxes, truth.boxes[ignore]).max(1) < MIN_IOU
    gt_ids = truth.track_ids[~ignore]
    pred_ids = pred.track_ids[keep_pred] if len(pred) else np.zeros(0, np.int64)
    gt_boxes, pred_boxes = truth.boxes[~ignore], pred.boxes[keep_pred]
    dist = np.full((len(gt_ids), len(pred_ids)), np.nan)
    if dist.size:
        iou = _iou(gt_boxes, pred_boxes)
        same = (np.array(truth.labels, object)[~ignore][:, None]
                == np.array(pred.labels, object)[keep_pred][None, :])
        dist = np.where((iou >= MIN_IOU) & same, 1.0 - iou, np.nan)
    return gt_ids, pred_ids, dist


def track_metrics(truth: Annotations, preds: Annotations) -> dict:
    """MOTA, IDF1 (0..1; MOTA can be negative), ``id_switches`` and the counts behind them,
    over every ground-truth frame. Needs track ids on both sides."""
    import motmetrics as mm

    acc = mm.MOTAccumulator(auto_id=True)
    for f, fb in truth.frames.items():
        gt_ids, pred_ids, dist = _frame_distances(fb, preds.frames.get(f, FrameBoxes.empty()))
        acc.update(gt_ids.tolist(), pred_ids.tolist(), dist)
    names = ["mota", "idf1", "num_switches", "num_false_positives", "num_misses",
             "num_unique_objects"]
    row = mm.metrics.create().compute(acc, metrics=names).iloc[0]
    return {"MOTA": float(row["mota"]), "IDF1": float(row["idf1"]),
            "id_switches": int(row["num_switches"]),
            "false_positives": int(row["num_false_positives"]),
            "misses": int(row["num_misses"]), "gt_tracks": int(row["num_unique_objects"])}
