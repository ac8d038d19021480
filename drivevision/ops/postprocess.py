"""torchvision's ``RoIHeads.postprocess_detections`` in fixed shapes, for a CUDA run that
never waits for the GPU before the detections' copy to the host.

torchvision keeps the (proposal, class) pairs scoring above ``score_thresh`` (a
``nonzero``), drops tiny boxes (another), runs NMS per class (a copy of its mask to the
host) and takes the best ``detections_per_img``: three waits per image. Here every class of
every image is one group of ``nms.greedy_keep``, its proposals sorted by that class's
score, the filters are masks, and one top-k over all classes gives ``detections_per_img``
rows per image with a mask of the real ones. What greedy NMS keeps of a group depends only
on the boxes ranked above, so the rows are torchvision's detections, in its order.
"""

from __future__ import annotations

from typing import NamedTuple

import torch.nn.functional as F
from torch import Tensor
from torchvision.models.detection.roi_heads import RoIHeads

from drivevision.ops import nms
from drivevision.ops.boxes import clip_to_images, decode_boxes

SMALLEST = 1e-2  # torchvision's remove_small_boxes(min_size=1e-2) in postprocess_detections


class Found(NamedTuple):
    """Per image, ``detections_per_img`` rows, best first: float[N, D, 4] xyxy boxes in the
    resized image's pixels, float[N, D] scores, int64[N, D] labels and bool[N, D] ``real``
    (False rows are padding: zero box, score and label)."""

    boxes: Tensor
    scores: Tensor
    labels: Tensor
    real: Tensor


def fixed_detections(roi_heads: RoIHeads, logits: Tensor, box_deltas: Tensor,
                     proposals: Tensor, valid: Tensor,
                     image_sizes: list[tuple[int, int]]) -> Found:
    """``roi_heads.postprocess_detections`` of dense B's ``logits`` float[N*R, K] and
    ``box_deltas`` float[N*R, 4K] for ``proposals`` float[N, R, 4] of which ``valid``
    bool[N, R] are real, in fixed shapes (``Found``)."""
    n, r = valid.shape
    classes = logits.shape[-1]
    boxes = decode_boxes(roi_heads.box_coder, box_deltas, proposals.reshape(-1, 4))
    boxes = clip_to_images(boxes.view(n, r * classes, 4), image_sizes)
    boxes = boxes.view(n, r, classes, 4)[:, :, 1:].transpose(1, 2)  # [N, K-1, R, 4]
    scores = F.softmax(logits, -1).view(n, r, classes)[:, :, 1:].transpose(1, 2)
    wide = boxes[..., 2:] - boxes[..., :2]
    real = valid[:, None, :] & (scores > roi_heads.score_thresh) & (wide >= SMALLEST).all(-1)
    ranked, order = scores.masked_fill(~real, -1.0).sort(dim=-1, descending=True, stable=True)
    boxes = boxes.gather(2, order[..., None].expand(-1, -1, -1, 4))
    kept = nms.greedy_keep(boxes.flatten(0, 1), (ranked >= 0).flatten(0, 1),
                           roi_heads.nms_thresh).view(ranked.shape)
    best, index = ranked.masked_fill(~kept, -1.0).flatten(1).topk(
        min(roi_heads.detections_per_img, ranked[0].numel()))
    found = best >= 0
    chosen = boxes.flatten(1, 2).gather(1, index[..., None].expand(-1, -1, 4))
    return Found(chosen.masked_fill(~found[..., None], 0.0), best.clamp(min=0.0),
                 (index // r + 1).masked_fill(~found, 0), found)
