"""Greedy NMS over groups of fixed size, which keeps a CUDA run free of host syncs.

``greedy_keep(boxes, valid, iou_threshold)`` takes G groups of M boxes, each group in
descending score order, and returns which boxes greedy NMS keeps, as a bool mask of the
same fixed shape: no data-dependent size, so nothing downstream waits for the GPU to learn
how many boxes survived. Per group it keeps what ``torchvision.ops.nms`` keeps.

It is a PyTorch custom operator: on CUDA it runs ``drivevision.ops.nms_kernel`` (Triton) when
Triton is installed; elsewhere, and on CUDA without Triton, it calls torchvision's NMS
once per group (which waits for the GPU each time). Its fake kernel lets shape-only
tracing (``FakeTensorMode``, ``torch.compile``) pass through it.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor
from torchvision.ops import nms


@torch.library.custom_op("drivevision::greedy_keep", mutates_args=())
def greedy_keep(boxes: Tensor, valid: Tensor, iou_threshold: float) -> Tensor:
    """bool[G, M]: which of ``boxes`` (float[G, M, 4] xyxy, each group's in descending
    score order) greedy NMS at ``iou_threshold`` keeps among the ``valid`` (bool[G, M])
    ones; the others are never kept and suppress nothing."""
    return _by_torchvision(boxes, valid, iou_threshold)


@greedy_keep.register_fake
def _(boxes: Tensor, valid: Tensor, iou_threshold: float) -> Tensor:
    return torch.empty_like(valid)


@greedy_keep.register_kernel("cuda")
def _(boxes: Tensor, valid: Tensor, iou_threshold: float) -> Tensor:
    kernel = on_device_kernel()
    if kernel is None:
        return _by_torchvision(boxes, valid, iou_threshold)
    keep = torch.empty(valid.shape, dtype=torch.uint8, device=valid.device)
    with torch.cuda.device(boxes.device):  # Triton launches on the current device
        kernel(boxes.float().contiguous(), valid.to(torch.uint8).contiguous(), iou_threshold,
               keep)
    return keep.bool()


@functools.cache
def on_device_kernel():
    """``nms_kernel.greedy_keep`` where Triton is installed, else None."""
    try:
        from drivevision.ops import nms_kernel
    except ImportError:
        return None
    return nms_kernel.greedy_keep


def _by_torchvision(boxes: Tensor, valid: Tensor, iou_threshold: float) -> Tensor:
    keep = torch.zeros_like(valid)
    rank = torch.arange(valid.shape[1], 0, -1, device=boxes.device, dtype=torch.float32)
    for group, (b, v) in enumerate(zip(boxes.float(), valid)):
        index = v.nonzero().squeeze(1)
        keep[group, index[nms(b[index], rank[index], iou_threshold)]] = True
    return keep
