"""Box arithmetic the middle stage and the postprocess share, in batches and without waits
for the GPU."""

from __future__ import annotations

import torch
from torch import Tensor
from torchvision.models.detection._utils import BoxCoder


def decode_boxes(coder: BoxCoder, codes: Tensor, boxes: Tensor) -> Tensor:
    """``coder.decode_single(codes, boxes)``, the same arithmetic in the same order, with
    its 0.5 a Python number: torchvision makes it a tensor on the boxes' device, a copy to
    the GPU that waits for it. ``codes``: float[R, 4K] box deltas of K classes; ``boxes``:
    float[R, 4]; returns float[R, 4K]."""
    boxes = boxes.to(codes.dtype)
    widths = boxes[:, 2] - boxes[:, 0]
    heights = boxes[:, 3] - boxes[:, 1]
    ctr_x = boxes[:, 0] + 0.5 * widths
    ctr_y = boxes[:, 1] + 0.5 * heights
    wx, wy, ww, wh = coder.weights
    dw = torch.clamp(codes[:, 2::4] / ww, max=coder.bbox_xform_clip)
    dh = torch.clamp(codes[:, 3::4] / wh, max=coder.bbox_xform_clip)
    x = codes[:, 0::4] / wx * widths[:, None] + ctr_x[:, None]
    y = codes[:, 1::4] / wy * heights[:, None] + ctr_y[:, None]
    half_w = 0.5 * (torch.exp(dw) * widths[:, None])
    half_h = 0.5 * (torch.exp(dh) * heights[:, None])
    return torch.stack((x - half_w, y - half_h, x + half_w, y + half_h), dim=2).flatten(1)


def clip_to_images(boxes: Tensor, image_sizes: list[tuple[int, int]]) -> Tensor:
    """float[N, K, 4] xyxy boxes clipped to each image's (height, width), as
    ``clip_boxes_to_image`` clips them one image at a time."""
    limits = to_device([[w, h, w, h] for h, w in image_sizes], boxes.dtype, boxes.device)
    return boxes.clamp(min=0).minimum(limits[:, None, :])


def to_device(values: list, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A small tensor of host ``values`` on ``device``, copied without waiting for the GPU."""
    return torch.tensor(values, dtype=dtype).to(device, non_blocking=True)
