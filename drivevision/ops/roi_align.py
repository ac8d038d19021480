"""Multi-scale RoIAlign (``aligned=False``, fixed sampling ratio) as a fused gather and
weighted sum: each of the P x Q bins of a RoI is the mean of S x S bilinear samples, i.e. a
weighted sum of (2S)^2 feature vectors of C channels, read as rows of the features laid out
channels-last (``F.embedding_bag``); torchvision's CPU kernel computes that sum one channel
at a time. The weights are computed as torchvision's kernel computes them."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from drivevision.ops.boxes import to_device


def pool_levels(features: list[Tensor], scales: list[float], rois: Tensor, image: Tensor,
                level: Tensor, output_size: tuple[int, int], sampling_ratio: int, *,
                one_table: bool) -> Tensor:
    """RoIAlign (``aligned=False``) of each RoI on its own FPN level: float[R, C, P, Q].

    ``features``: float[N, C, h_l, w_l] per level; ``scales``: feature pixels per image
    pixel per level; ``rois``: float[R, 4] xyxy in image pixels; ``image`` and ``level``:
    int64[R]. ``one_table`` pools all levels in one call from a copy of the features laid
    end to end; otherwise the RoIs are sorted by level and each level pooled in one call
    from its own features (the split by level is data-dependent: a host sync on CUDA).
    """
    tables = [pixel_rows(f) for f in features]
    order = None if one_table else torch.argsort(level, stable=True)
    if order is not None:
        rois, image, level = rois[order], image[order], level[order]
    index, weight = bin_taps(features, scales, rois, image, level, output_size,
                             sampling_ratio, one_table=one_table)
    bins, channels = output_size[0] * output_size[1], features[0].shape[1]
    if one_table:
        pooled = _weighted_sum(torch.cat(tables), index, weight).view(len(rois), bins, channels)
        return pooled.transpose(1, 2).reshape(len(rois), channels, *output_size)
    out = index.new_empty((len(rois), channels, bins), dtype=tables[0].dtype)
    first = 0
    for table, count in zip(tables, torch.bincount(level, minlength=len(tables)).tolist()):
        rows = slice(first * bins, (first + count) * bins)
        pooled = _weighted_sum(table, index[rows], weight[rows]).view(count, bins, channels)
        out.index_copy_(0, order[first:first + count], pooled.transpose(1, 2))
        first += count
    return out.view(len(rois), channels, *output_size)


def pixel_rows(feature: Tensor) -> Tensor:
    """[N, C, h, w] as [N*h*w, C], the C values of each pixel in a row: a view of
    channels-last features; NCHW ones are copied one image at a time as a 2-D transpose,
    which torch copies in blocks (at 800x1344 twice as fast as a 4-D permuted copy)."""
    n, c = feature.shape[:2]
    if feature.is_contiguous(memory_format=torch.channels_last):
        return feature.permute(0, 2, 3, 1).reshape(-1, c)
    rows = feature.new_empty((n, feature.shape[2] * feature.shape[3], c))
    for image, plane in zip(rows, feature):
        image.copy_(plane.reshape(c, -1).t())
    return rows.view(-1, c)


def bin_taps(features: list[Tensor], scales: list[float], rois: Tensor, image: Tensor,
             level: Tensor, output_size: tuple[int, int], sampling_ratio: int, *,
             one_table: bool) -> tuple[Tensor, Tensor]:
    """For every bin of every RoI, the rows of its level's [N*h*w, C] table (of all levels
    end to end when ``one_table``) it sums and their weights: int64 and float
    [R * P * Q, (2S)^2], bins in row-major order per RoI."""
    device = rois.device
    sizes = to_device([list(f.shape[-2:]) for f in features], torch.int64, device)
    scale = to_device(scales, rois.dtype, device)[level]
    h, w = sizes[level, 0], sizes[level, 1]
    rows, wy = bilinear_taps(rois[:, 1], rois[:, 3], scale, h, output_size[0], sampling_ratio)
    cols, wx = bilinear_taps(rois[:, 0], rois[:, 2], scale, w, output_size[1], sampling_ratio)
    if one_table:
        starts = to_device([0] + [f.shape[0] * f.shape[-2] * f.shape[-1] for f in features],
                           torch.int64, device).cumsum(0)
        base = starts[level]
    else:
        base = torch.zeros_like(level)
    # [R, P, Q, 2S, 2S]: the feature vectors of each bin and their weights
    index = (base[:, None, None, None, None] + ((image * h)[:, None, None, None, None]
                                                + rows[:, :, None, :, None])
             * w[:, None, None, None, None] + cols[:, None, :, None, :])
    weight = wy[:, :, None, :, None] * wx[:, None, :, None, :] / sampling_ratio ** 2
    taps = (2 * sampling_ratio) ** 2
    return index.reshape(-1, taps), weight.reshape(-1, taps)


def _weighted_sum(table: Tensor, index: Tensor, weight: Tensor) -> Tensor:
    """float[B, C]: row b is sum over j of ``weight[b, j] * table[index[b, j]]``."""
    return F.embedding_bag(index, table, per_sample_weights=weight.to(table.dtype), mode="sum")


def bilinear_taps(lo: Tensor, hi: Tensor, scale: Tensor, size: Tensor, bins: int,
                  sampling_ratio: int) -> tuple[Tensor, Tensor]:
    """Along one axis, the feature rows (or columns) each RoI's bins read and their bilinear
    weights, as torchvision's RoIAlign kernel computes them (``aligned=False``).

    ``lo``/``hi``: float[R] RoI edges in image pixels; ``scale``: float[R]; ``size``:
    int64[R], the level's height (or width). Returns int64[R, bins, 2S] indices and
    float[R, bins, 2S] weights: for each of the S samples in a bin, its lower and upper
    neighbour; samples outside [-1, size] weigh 0.
    """
    start = lo * scale
    length = (hi * scale - start).clamp(min=1.0)
    step = length / bins
    k = torch.arange(bins * sampling_ratio, device=lo.device)
    within = (k % sampling_ratio).to(lo.dtype) + 0.5
    at = start[:, None] + (k // sampling_ratio).to(lo.dtype) * step[:, None] \
        + within * step[:, None] / sampling_ratio
    inside = (at >= -1.0) & (at <= size[:, None])
    at = at.clamp(min=0)
    last = (size - 1)[:, None]
    low = at.long()
    top = low >= last
    low = torch.where(top, last, low)
    high = torch.where(top, last, low + 1)
    frac = torch.where(top, torch.zeros_like(at), at - low)
    taps = (len(lo), bins, 2 * sampling_ratio)
    index = torch.stack([low, high], -1).view(taps)
    weight = (torch.stack([1 - frac, frac], -1) * inside[..., None]).view(taps)
    return index, weight
