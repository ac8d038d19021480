"""The stage between the dense pieces: RPN proposals and multi-scale RoIAlign, made fast.

Computes what a Faster R-CNN in eval mode computes between its RPN head and its box head
(torchvision's ``RegionProposalNetwork.forward`` after the head, then the box head's
``MultiScaleRoIAlign``), with the model's own anchor generator, box coder, NMS and level
mapper, but:

* anchors are made once per (padded size, feature sizes, device, dtype) and cached;
* the per-level top-k runs first, for the whole batch at once, and only the boxes it keeps
  are decoded (about 4.8k of 270k anchors at 800x1344);
* clipping and the small-box and score filters are one masked pass over the batch;
* RoIAlign is a fused gather-and-weighted-sum (``drivevision.ops.roi_align``) over the
  features as rows of C values per pixel (a view of channels-last features, in their own
  dtype; NCHW ones are transposed first).

On CUDA nothing in the stage waits for the GPU: the proposals come in a fixed number per
image (``post_nms_top_n``, or fewer anchors), with a mask of those that are real, from
``drivevision.ops.nms.greedy_keep`` (each level's NMS walked on the GPU) and one top-k; the
RoIs of all levels are pooled in one call from the levels' features laid end to end. On the
CPU the proposal count is what it is (torchvision's NMS, the boxes it keeps) and each level
is pooled from its own features (the copy would cost more than the split).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torchvision.models.detection.faster_rcnn import FasterRCNN
from torchvision.models.detection.image_list import ImageList
from torchvision.ops import MultiScaleRoIAlign
from torchvision.ops import boxes as box_ops
from torchvision.ops.poolers import _setup_scales

from drivevision.ops import nms
from drivevision.ops.boxes import clip_to_images, decode_boxes
from drivevision.ops.roi_align import pool_levels


class RoIs(NamedTuple):
    """What the middle stage hands to dense B and the postprocess.

    ``boxes``: proposals per image, float[R_i, 4] xyxy in the resized image's pixels;
    ``pooled``: their RoIAlign features, [sum R_i, C, P, P]; ``valid``: None, or (fixed
    shapes, see ``MiddleStage``) bool[N, R] marking the real proposals among the R per
    image, the others being zero-size boxes whose detections must be dropped.
    """

    boxes: list[Tensor]
    pooled: Tensor
    valid: Tensor | None = None


class MiddleStage:
    """Proposals and pooled RoI features for a Faster R-CNN ``model`` in eval mode.

    Reads the RPN's settings (top-n counts, thresholds) at every call, so it follows the
    model it was made for. ``one_table`` pools all FPN levels in one call (no host
    synchronisation, one copy of the features); ``fixed`` gives every image the same
    number of proposals with a mask of the real ones (``fixed_proposals``: no host
    synchronisation). None: each on CUDA only (``fixed`` where ``greedy_keep`` runs on the
    GPU itself).
    """

    def __init__(self, model: FasterRCNN, *, one_table: bool | None = None,
                 fixed: bool | None = None):
        self.rpn = model.rpn
        self.pool: MultiScaleRoIAlign = model.roi_heads.box_roi_pool
        self.one_table = one_table
        self.fixed = fixed
        self._anchors: dict[tuple, list[Tensor]] = {}

    def __call__(self, images: ImageList, features: list[Tensor], objectness: list[Tensor],
                 deltas: list[Tensor]) -> RoIs:
        """Proposals per image and their pooled features, as ``rpn`` then ``box_roi_pool``
        give them (``RoIs``; with ``fixed``, padded to one count per image).

        ``features``: dense A's FPN levels, [N, C, h, w] float32 or the engine's bf16/fp16
        (channels-last is fastest; the pooled features come in their dtype);
        ``objectness`` and ``deltas``: per level float[N, A, h, w] and float[N, 4A, h, w].
        """
        anchors = self.anchors(images, deltas)
        fixed = self.fixed
        if fixed is None:
            fixed = deltas[0].is_cuda and nms.on_device_kernel() is not None
        valid = None
        if fixed:
            boxes, valid = self.fixed_proposals(anchors, objectness, deltas, images.image_sizes)
            proposals = list(boxes)
        else:
            proposals = self.proposals(anchors, objectness, deltas, images.image_sizes)
        return RoIs(proposals, self.roi_align(features, proposals, images.image_sizes), valid)

    def anchors(self, images: ImageList, deltas: list[Tensor]) -> list[Tensor]:
        """The model's anchors per level, [h * w * A, 4] each in the dtype and on the device
        of ``deltas`` (float32: boxes are decoded in it), shared by every image."""
        key = (tuple(images.tensors.shape[-2:]), tuple(tuple(d.shape[-2:]) for d in deltas),
               deltas[0].device, deltas[0].dtype)
        if key not in self._anchors:
            one_image = ImageList(images.tensors[:1], images.image_sizes[:1])
            whole = self.rpn.anchor_generator(one_image, [d[:1] for d in deltas])[0]
            sizes = [d.shape[-2] * d.shape[-1] * n for d, n in
                     zip(deltas, self.rpn.anchor_generator.num_anchors_per_location())]
            self._anchors[key] = list(whole.split(sizes))
        return self._anchors[key]

    def proposals(self, anchors: list[Tensor], objectness: list[Tensor], deltas: list[Tensor],
                  image_sizes: list[tuple[int, int]]) -> list[Tensor]:
        """``filter_proposals`` of the decoded boxes: per-level top-k, clip, drop small and
        low-scoring boxes, NMS per level, keep the best ``post_nms_top_n`` per image."""
        boxes, scores, levels, keep = self._candidates(anchors, objectness, deltas, image_sizes)
        rpn = self.rpn
        out = []
        for b, s, m in zip(boxes, scores, keep):
            m = m.nonzero().squeeze(1)  # one host sync on CUDA for the three
            b, s, lvl = b[m], s[m], levels[m]
            best = box_ops.batched_nms(b, s, lvl, rpn.nms_thresh)[: rpn.post_nms_top_n()]
            out.append(b[best])
        return out

    def fixed_proposals(self, anchors: list[Tensor], objectness: list[Tensor],
                        deltas: list[Tensor], image_sizes: list[tuple[int, int]]
                        ) -> tuple[Tensor, Tensor]:
        """What ``proposals`` gives, in fixed shapes: float[N, R, 4] boxes and bool[N, R]
        marking the real ones (first, best first; the rest are zero boxes), R =
        ``post_nms_top_n`` or fewer when the levels have fewer anchors. Each level's NMS
        runs as one group of ``nms.greedy_keep``, so nothing waits for the GPU."""
        boxes, scores, levels, keep = self._candidates(anchors, objectness, deltas, image_sizes)
        n, k = scores.shape
        counts = [min(self.rpn.pre_nms_top_n(), o[0].numel()) for o in objectness]
        m = max(counts)
        grouped = boxes.new_zeros((n, len(counts), m, 4))
        candidates = keep.new_zeros((n, len(counts), m))
        for level, (b, c) in enumerate(zip(boxes.split(counts, 1), keep.split(counts, 1))):
            grouped[:, level, : b.shape[1]] = b
            candidates[:, level, : c.shape[1]] = c
        kept = nms.greedy_keep(grouped.flatten(0, 1), candidates.flatten(0, 1),
                               self.rpn.nms_thresh).view(n, len(counts), m)
        kept = torch.cat([kept[:, level, :c] for level, c in enumerate(counts)], 1)
        best, index = scores.masked_fill(~kept, -1.0).topk(min(self.rpn.post_nms_top_n(), k))
        valid = best >= 0
        chosen = boxes.gather(1, index[..., None].expand(-1, -1, 4))
        return chosen.masked_fill(~valid[..., None], 0.0), valid

    def _candidates(self, anchors: list[Tensor], objectness: list[Tensor],
                    deltas: list[Tensor], image_sizes: list[tuple[int, int]]
                    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Each level's ``pre_nms_top_n`` best anchors decoded and clipped, float[N, K, 4];
        their scores float[N, K] (each level's best first), levels int64[K] and which pass
        the small-box and score filters, bool[N, K]."""
        rpn = self.rpn
        logits, codes, picked, levels = top_k_per_level(objectness, deltas, anchors,
                                                        rpn.pre_nms_top_n())
        n, k = logits.shape
        boxes = decode_boxes(rpn.box_coder, codes.reshape(-1, 4), picked.reshape(-1, 4))
        boxes = clip_to_images(boxes.view(n, k, 4), image_sizes)
        scores = torch.sigmoid(logits)
        wide = boxes[..., 2:] - boxes[..., :2]
        keep = (wide >= rpn.min_size).all(-1) & (scores >= rpn.score_thresh)
        return boxes, scores, levels, keep

    def roi_align(self, features: list[Tensor], boxes: list[Tensor],
                  image_sizes: list[tuple[int, int]]) -> Tensor:
        """``box_roi_pool(features, boxes, image_sizes)``: [R, C, P, P] in the features'
        dtype, R = all boxes."""
        pool = self.pool
        levels = features[: len(pool.featmap_names)]  # the pooled levels lead ("pool" not)
        if pool.scales is None or pool.map_levels is None:  # as the pooler's first call
            pool.scales, pool.map_levels = _setup_scales(
                levels, image_sizes, pool.canonical_scale, pool.canonical_level)
        if pool.sampling_ratio <= 0:  # adaptive sampling: per-RoI grids, torchvision's kernel
            return pool(dict(zip(pool.featmap_names, levels)), boxes, image_sizes)
        one_table = self.one_table if self.one_table is not None else levels[0].is_cuda
        rois = torch.cat(boxes)
        image = torch.cat([torch.full((len(b),), i, device=rois.device)
                           for i, b in enumerate(boxes)])
        level = pool.map_levels(boxes) if len(pool.scales) > 1 else torch.zeros_like(image)
        return pool_levels(levels, pool.scales, rois, image, level, pool.output_size,
                           pool.sampling_ratio, one_table=one_table)


def top_k_per_level(objectness: list[Tensor], deltas: list[Tensor], anchors: list[Tensor],
                    k: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The ``k`` best anchors of every level for every image, levels one after another.

    Returns objectness logits float[N, K], their box deltas float[N, K, 4] and anchors
    float[N, K, 4], and each column's level int64[K], K = sum over levels of min(k, h*w*A),
    in the order of torchvision's ``_get_top_n_idx`` (each level's best first).
    """
    logits, codes, picked, levels = [], [], [], []
    for lvl, (o, d, a) in enumerate(zip(objectness, deltas, anchors)):
        n, per_cell, h, w = o.shape
        o = o.permute(0, 2, 3, 1).reshape(n, -1)  # anchor order: row, column, cell anchor
        best, idx = o.topk(min(k, o.shape[1]), dim=1)
        cell, place = idx % per_cell, idx // per_cell
        # [N, h*w, 4A]: a view of the channels-last deltas dense A hands over
        d = d.permute(0, 2, 3, 1).reshape(n, h * w, per_cell * 4)
        rows = d.gather(1, place[..., None].expand(-1, -1, per_cell * 4))
        logits.append(best)
        codes.append(rows.view(n, -1, per_cell, 4)
                     .gather(2, cell[..., None, None].expand(-1, -1, 1, 4)).squeeze(2))
        picked.append(a.index_select(0, idx.flatten()).view(n, -1, 4))
        levels.append(torch.full((idx.shape[1],), lvl, dtype=torch.int64, device=o.device))
    return torch.cat(logits, 1), torch.cat(codes, 1), torch.cat(picked, 1), torch.cat(levels)
