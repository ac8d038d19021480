"""Tracking scores: MOTA, IDF1 and identity switches by motmetrics, HOTA by TrackEval.

Both score one sequence, matching a track box only to ground truth of its own class.
TrackEval's package (``trackeval`` on PyPI) declares ``opencv-python`` as a requirement,
whose bundled Qt clashes with PyQt6, so it is installed without its requirements
(``pip install --no-deps trackeval``; its HOTA needs only numpy and scipy) and HOTA is
reported when it is importable. IoU is computed here with torchvision (motmetrics 1.4's own
``iou_matrix`` calls ``np.asfarray``, which numpy 2 removed) and passed in.
"""

from __future__ import annotations

import numpy as np
import torch
import torchvision

from drivevision.evaluation.annotations import Annotations, FrameBoxes

MIN_IOU = 0.5  # MOTA/IDF1: a track box matches a ground-truth box at this IoU or more
HOTA_INSTALL = ("HOTA needs TrackEval: pip install --no-deps trackeval (without its "
                "requirements: it asks for opencv-python, whose Qt clashes with the viewer's)")


def _iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return torchvision.ops.box_iou(torch.as_tensor(a, dtype=torch.float64),
                                   torch.as_tensor(b, dtype=torch.float64)).numpy()


def _frame_pairs(truth: FrameBoxes, pred: FrameBoxes):
    """Ground-truth and predicted track ids to score in one frame, and their similarity
    (IoU, 0 across classes). Predictions on an ignored ground-truth box are dropped, as
    MOTChallenge drops those on its distractors."""
    ignore = truth.ignore if truth.ignore is not None else np.zeros(len(truth), bool)
    keep_pred = np.ones(len(pred), bool)
    if ignore.any() and len(pred):
        keep_pred = _iou(pred.boxes, truth.boxes[ignore]).max(1) < MIN_IOU
    gt_ids = truth.track_ids[~ignore]
    pred_ids = pred.track_ids[keep_pred] if len(pred) else np.zeros(0, np.int64)
    similarity = np.zeros((len(gt_ids), len(pred_ids)))
    if similarity.size:
        same = (np.array(truth.labels, object)[~ignore][:, None]
                == np.array(pred.labels, object)[keep_pred][None, :])
        similarity = np.where(same, _iou(truth.boxes[~ignore], pred.boxes[keep_pred]), 0.0)
    return gt_ids, pred_ids, similarity


def track_metrics(truth: Annotations, preds: Annotations) -> dict:
    """MOTA, IDF1 (0..1; MOTA can be negative), ``id_switches``, ``recall`` (the share of
    ground-truth boxes a track box matches: what a viewer of the tracks sees) and the counts
    behind them, over every ground-truth frame, and HOTA, DetA, AssA (0..1, averaged over
    TrackEval's IoU thresholds 0.05..0.95; None when TrackEval is not installed). Needs track
    ids on both sides."""
    import motmetrics as mm

    pairs = [_frame_pairs(fb, preds.frames.get(f, FrameBoxes.empty()))
             for f, fb in truth.frames.items()]
    acc = mm.MOTAccumulator(auto_id=True)
    for gt_ids, pred_ids, sim in pairs:
        acc.update(gt_ids.tolist(), pred_ids.tolist(),
                   np.where(sim >= MIN_IOU, 1.0 - sim, np.nan))
    names = ["mota", "idf1", "num_switches", "recall", "num_false_positives", "num_misses",
             "num_unique_objects"]
    row = mm.metrics.create().compute(acc, metrics=names).iloc[0]
    return {"MOTA": float(row["mota"]), "IDF1": float(row["idf1"]),
            "id_switches": int(row["num_switches"]), "recall": float(row["recall"]),
            "false_positives": int(row["num_false_positives"]),
            "misses": int(row["num_misses"]), "gt_tracks": int(row["num_unique_objects"]),
            **hota(pairs)}


def hota_available() -> bool:
    try:
        from trackeval.metrics.hota import HOTA  # noqa: F401
    except ImportError:
        return False
    return True


def hota(pairs: list[tuple[np.ndarray, np.ndarray, np.ndarray]]) -> dict:
    """HOTA, DetA and AssA of one sequence by TrackEval's HOTA, from each frame's
    (ground-truth ids, predicted ids, similarity); None each without TrackEval."""
    if not hota_available():
        return {"HOTA": None, "DetA": None, "AssA": None}
    from trackeval.metrics.hota import HOTA

    gt_ids, num_gt = _dense([g for g, _, _ in pairs])
    pred_ids, num_pred = _dense([p for _, p, _ in pairs])
    data = {"gt_ids": gt_ids, "tracker_ids": pred_ids,
            "similarity_scores": [s for _, _, s in pairs],
            "num_gt_dets": sum(map(len, gt_ids)), "num_tracker_dets": sum(map(len, pred_ids)),
            "num_gt_ids": num_gt, "num_tracker_ids": num_pred}
    res = HOTA().eval_sequence(data)
    return {name: float(np.mean(res[name])) for name in ("HOTA", "DetA", "AssA")}


def _dense(frames: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Each frame's ids renumbered 0..K-1 (in order of value), as TrackEval wants them, and K."""
    keys = np.unique(np.concatenate(frames)) if frames else np.zeros(0, np.int64)
    return [np.searchsorted(keys, ids).astype(np.int64) for ids in frames], len(keys)
