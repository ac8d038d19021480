"""Eager PyTorch engine: the model's own modules, on CPU or CUDA, in fp32, fp16 or bf16."""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from drivevision.engines.base import DenseA, Engine
from drivevision.model import LoadedModel

DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class DenseModules(nn.Module):
    """The two dense pieces of a Faster R-CNN as plain modules (also what gets exported)."""

    def __init__(self, module: nn.Module):
        super().__init__()
        self.backbone = module.backbone
        self.rpn_head = module.rpn.head
        self.box_head = module.roi_heads.box_head
        self.box_predictor = module.roi_heads.box_predictor

    def dense_a(self, images: Tensor) -> DenseA:
        features = list(self.backbone(images).values())
        objectness, deltas = self.rpn_head(features)
        return features, objectness, deltas

    def dense_b(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        return self.box_predictor(self.box_head(pooled))


class DensePiece(nn.Module):
    """One dense piece of ``DenseModules`` as a module of its own (what gets exported)."""

    def __init__(self, dense: DenseModules, piece: str):
        super().__init__()
        self.dense = dense
        self.piece = piece

    def forward(self, x: Tensor):
        return self.dense.dense_a(x) if self.piece == "dense_a" else self.dense.dense_b(x)


class TorchEngine(Engine):
    """Runs the dense pieces eagerly; inputs are cast to ``precision``. The FPN features
    stay in it (the middle stage pools them as they are, dense B takes them in it); the RPN
    outputs and dense B's outputs come back in fp32, where boxes are decoded.

    On CPU in bf16 the convolutions run channels-last, the layout oneDNN's bf16 kernels want.
    """

    name = "torch"

    def __init__(self, loaded: LoadedModel, *, device: torch.device, precision: str):
        self.dtype = DTYPES[precision]
        self.channels_last = device.type == "cpu" and precision == "bf16"
        dense = DenseModules(copy.deepcopy(loaded.module) if precision != "fp32" else loaded.module)
        dense = dense.to(device=device, dtype=self.dtype).eval()
        if self.channels_last:
            dense = dense.to(memory_format=torch.channels_last)
        self.dense = dense

    @torch.inference_mode()
    def dense_a(self, images: Tensor) -> DenseA:
        x = images.to(self.dtype)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        features, objectness, deltas = self.dense.dense_a(x)
        return features, [t.float() for t in objectness], [t.float() for t in deltas]

    @torch.inference_mode()
    def dense_b(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        logits, deltas = self.dense.dense_b(pooled.to(self.dtype))
        return logits.float(), deltas.float()


def create(loaded: LoadedModel, *, device: torch.device, precision: str,
           progress: bool = False) -> TorchEngine:
    return TorchEngine(loaded, device=device, precision=precision)
