"""Greedy NMS of many groups at once on the GPU, as one Triton kernel: no host round trip.

torchvision's CUDA NMS computes its overlap mask on the GPU and then copies it to the host
to walk it, so every call waits for the GPU. Here one program per group walks its boxes in
order on the GPU itself: a box still alive when its turn comes is kept and removes every
later box it overlaps by more than the threshold, exactly as greedy NMS does. The overlap is
torchvision's (intersection over union of the two areas, ``>`` the threshold), computed
without fused multiply-adds and with an IEEE division, so that it rounds as torchvision's
CPU kernel does.

Imported only where Triton is installed (it comes with PyTorch's CUDA wheels on Linux); the
kernel also runs on the CPU under ``TRITON_INTERPRET=1``, which is how it is tested without
a GPU.
"""

from __future__ import annotations

import triton
import triton.language as tl
from torch import Tensor


@triton.jit
def _greedy_keep(boxes, valid, keep, m, iou_threshold, BLOCK: tl.constexpr):
    group = tl.program_id(0)
    at = tl.arange(0, BLOCK)
    inside = at < m
    row = boxes + group * m * 4 + at * 4
    x1 = tl.load(row, mask=inside, other=0.0)
    y1 = tl.load(row + 1, mask=inside, other=0.0)
    x2 = tl.load(row + 2, mask=inside, other=0.0)
    y2 = tl.load(row + 3, mask=inside, other=0.0)
    area = (x2 - x1) * (y2 - y1)
    alive = tl.load(valid + group * m + at, mask=inside, other=0) != 0
    end = tl.max(tl.where(alive, at + 1, 0), axis=0)  # nothing to walk past the last candidate
    for i in range(0, end):
        if tl.sum(tl.where(alive & (at == i), 1, 0), axis=0) > 0:
            box = boxes + group * m * 4 + i * 4
            bx1, by1 = tl.load(box), tl.load(box + 1)
            bx2, by2 = tl.load(box + 2), tl.load(box + 3)
            wide = tl.maximum(tl.minimum(x2, bx2) - tl.maximum(x1, bx1), 0.0)
            high = tl.maximum(tl.minimum(y2, by2) - tl.maximum(y1, by1), 0.0)
            inter = wide * high
            # IEEE division: Triton's `/` is the GPU's approximate one
            iou = tl.math.div_rn(inter, (bx2 - bx1) * (by2 - by1) + area - inter)
            alive = alive & ~((iou > iou_threshold) & (at > i))
    tl.store(keep + group * m + at, alive.to(tl.int8), mask=inside)


def greedy_keep(boxes: Tensor, valid: Tensor, iou_threshold: float, keep: Tensor) -> None:
    """Writes into ``keep`` (uint8[G, M]) which of ``boxes`` (float32[G, M, 4] xyxy, each
    group's boxes in descending score order) greedy NMS keeps; ``valid`` (uint8[G, M]) marks
    the candidates: the others are never kept and remove nothing."""
    groups, m = valid.shape
    if groups == 0 or m == 0:
        return
    block = triton.next_power_of_2(m)
    _greedy_keep[(groups,)](boxes, valid, keep, m, iou_threshold, BLOCK=block,
                            num_warps=max(1, min(16, block // 256)), enable_fp_fusion=False)
