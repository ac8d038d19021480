"""Inference engines: thin adapters that run the two dense pieces of a Faster R-CNN.

Every engine runs

* ``dense_a``: normalized, padded images float[N, 3, H, W] -> FPN features (one tensor per
  level, float[N, C, h, w]), RPN objectness (per level float[N, A, h, w]) and RPN box deltas
  (per level float[N, 4A, h, w]);
* ``dense_b``: RoI-pooled features float[R, C, 7, 7] -> class logits float[R, K] and box
  deltas float[R, 4K].

Everything between and around them (resize, anchors, proposals, NMS, RoIAlign, box
decoding) is shared torchvision code in ``drivevision.detector``, so engines differ only in
how they run dense math. Outputs are float32 on the detector's device. Optional heavy
imports (onnxruntime, tensorrt) happen inside the engine's own module.
"""

from __future__ import annotations

import importlib
from typing import Protocol

from torch import Tensor

from drivevision.model import LoadedModel

DenseA = tuple[list[Tensor], list[Tensor], list[Tensor]]


class Engine(Protocol):
    name: str

    def dense_a(self, images: Tensor) -> DenseA: ...

    def dense_b(self, pooled: Tensor) -> tuple[Tensor, Tensor]: ...


_MODULES = {"torch": "drivevision.engines.torch"}


def create_engine(name: str, loaded: LoadedModel, *, device, precision: str) -> Engine:
    """The engine called ``name`` for ``loaded`` on ``device`` at ``precision``."""
    if name not in _MODULES:
        raise ValueError(f"Unknown engine {name!r}; available: {', '.join(_MODULES)}")
    module = importlib.import_module(_MODULES[name])
    return module.create(loaded, device=device, precision=precision)
