"""Short batches on engines of static shape.

A stream's batches vary in size: the last one of a file is short, live batches take what
has arrived when the detector is free, several cameras may not all deliver. Engines whose
shapes are fixed when built (TensorRT optimization profiles, CUDA graphs) keep the largest
batch prepared for each padded image size and run shorter batches on it.
"""

from __future__ import annotations

import torch
from torch import Tensor


class BatchPlan:
    """The largest batch prepared for each padded image size (H, W): a batch that fits it
    runs there; only a larger batch is prepared anew."""

    def __init__(self):
        self._largest: dict[tuple[int, int], int] = {}

    def fit(self, n: int, size: tuple[int, int]) -> tuple[int, bool]:
        """(batch to prepare or reuse for ``n`` images of ``size``, whether it is new)."""
        largest = self._largest.get(size, 0)
        if n <= largest:
            return largest, False
        self._largest[size] = n
        return n, True


def pad_batch(images: Tensor, n: int) -> Tensor:
    """``images`` [B, ...] with zero images appended up to ``n`` >= B."""
    if images.shape[0] == n:
        return images
    return torch.cat([images, images.new_zeros((n - images.shape[0], *images.shape[1:]))])
