"""The compiled engine: the dense pieces through Inductor.

* CUDA: ``torch.compile``, fp32 or fp16, ``mode="reduce-overhead"`` (CUDA graphs: shapes
  are static per video stream, one graph per (N, H, W); a smaller batch, such as a file's
  last or a live one, is padded with blank images to the largest graph of its size instead
  of capturing a new one. Dense B is compiled with dynamic shapes and no graphs: its RoI
  count is fixed per batch size on CUDA now (``post_nms_top_n`` rows per image,
  ``drivevision.proposals``), so graphs for it would be possible; not tried without a GPU
  to measure them on).
* CPU: compiled ahead of time (AOTInductor) and kept in the engine cache
  (``drivevision.engines.aot``), so only a first run compiles: fp32 or bf16, channels-last,
  Inductor's C++ kernels with frozen (pre-packed) weights; or int8: both pieces quantized
  by PT2E (``drivevision.engines.pt2e``, calibrated on the user's footage) and run by
  oneDNN's int8 kernels, the float ops between them in bf16 where the CPU has bf16
  hardware (Inductor's "int8-mixed-bf16"), else in fp32; a later run loads the packages
  instead of quantizing and compiling.

Compilation happens on the first call for each input shape (seconds to minutes; on the CPU
once per model, precision, calibration set and shape); ``warmup`` does it ahead of time.
Outputs are safe to keep across calls: the FPN features in ``precision`` (the middle stage
pools them as they are), everything else float32.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import sys
from collections.abc import Callable

import torch
from torch import Tensor, nn

from drivevision.engines.aot import AheadOfTime
from drivevision.engines.base import DenseA, Engine
from drivevision.engines.batching import BatchPlan, pad_batch
from drivevision.engines.hardware import cpu_features
from drivevision.engines.torch import DTYPES, DenseModules, DensePiece
from drivevision.model import LoadedModel


class CompiledEngine(Engine):
    """Both dense pieces compiled with Inductor; inputs cast to ``precision``, FPN features
    returned in it, the other outputs in fp32."""

    name = "compiled"

    def __init__(self, loaded: LoadedModel, *, device: torch.device, precision: str,
                 mode: str | None = None, calib=None, progress: bool = False):
        if precision == "fp16" and device.type != "cuda":
            raise ValueError("Expected fp16 on a CUDA device for the compiled engine; "
                             "on the CPU use bf16 or fp32")
        if precision == "int8" and device.type != "cpu":
            raise ValueError(f"Expected the CPU for the compiled engine's int8, but got "
                             f"{device}; on CUDA use fp16 (or TensorRT int8)")
        self.int8 = precision == "int8"
        self.dtype = torch.float32 if self.int8 else DTYPES[precision]
        self.device = device
        self.cuda = device.type == "cuda"
        self.channels_last = not self.cuda
        self.static_batch = self.cuda  # CUDA graphs: pad batches to a captured size
        self._plan = BatchPlan()
        module = copy.deepcopy(loaded.module)
        dense = DenseModules(module).to(device=device, dtype=self.dtype).eval()
        if self.channels_last:
            dense = dense.to(memory_format=torch.channels_last)
        self.dense = dense
        self._autocast = torch.bfloat16 if self.int8 and cpu_features().bf16 else None
        if self.int8:
            self._a, self._b = _int8_ahead_of_time(loaded, calib, self._frozen,
                                                   self._autocast, progress)
        elif not self.cuda:
            self._a, self._b = _float_ahead_of_time(loaded, dense, precision, self._frozen,
                                                    progress)
        else:
            self._a = _compile(dense.dense_a, mode or "reduce-overhead", dynamic=False)
            self._b = _compile(dense.dense_b, mode if mode != "reduce-overhead" else None,
                               dynamic=True)

    @torch.inference_mode()
    def dense_a(self, images: Tensor) -> DenseA:
        x = images.to(self.device, self.dtype)
        n = x.shape[0]
        if self.static_batch:
            x = pad_batch(x, self._plan.fit(n, tuple(x.shape[2:]))[0])
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        if self.cuda:
            torch.compiler.cudagraph_mark_step_begin()
        features, objectness, deltas = self._a(x)
        return ([self._own(t[:n]) for t in features], [self._out(t[:n]) for t in objectness],
                [self._out(t[:n]) for t in deltas])

    @torch.inference_mode()
    def dense_b(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        if pooled.shape[0] == 0:  # no RoIs: nothing to compile
            logits, deltas = self.dense.dense_b(pooled.to(self.device, self.dtype))
        else:
            logits, deltas = self._b(pooled.to(self.device, self.dtype))
        return self._out(logits), self._out(deltas)

    def _frozen(self) -> contextlib.AbstractContextManager:
        """CPU: what the packages are built under. Freezing set in Inductor's config: the
        weights become constants, pre-packed for oneDNN, each convolution fused with its ReLU
        or add. (Given as a ``torch.compile`` option instead it did not reach those passes:
        ATen's unpacked, unfused convolutions, dense A about 10% slower in fp32 and bf16.)
        int8: the float ops in bf16 where the CPU has it; PT2E must quantize outside it (its
        int8 convolutions would compile as float ones), so only the build runs under it.
        """
        if self.cuda:
            return contextlib.nullcontext()
        stack = contextlib.ExitStack()
        stack.enter_context(torch._inductor.config.patch(freezing=True))
        if self._autocast is not None:
            stack.enter_context(torch.autocast("cpu", dtype=self._autocast))
        return stack

    def _out(self, t: Tensor) -> Tensor:
        """fp32 result; on CUDA a copy, since CUDA graph outputs are overwritten next replay."""
        return t.clone() if self.cuda and t.dtype == torch.float32 else t.float()

    def _own(self, t: Tensor) -> Tensor:
        """``t`` in its own dtype; on CUDA a copy, as for ``_out``."""
        return t.clone() if self.cuda else t

    def warmup(self, images: Tensor, rois: int = 16) -> None:
        """Compile for ``images``' shape (and dense B) now instead of on the first frame."""
        self.dense_a(images)
        channels = self.dense.backbone.out_channels
        self.dense_b(torch.zeros(rois, channels, 7, 7, device=self.device))


def _compile(fn, mode: str | None, dynamic: bool | None):
    return torch.compile(fn, backend="inductor", mode=mode, dynamic=dynamic, fullgraph=False)


def _float_ahead_of_time(loaded: LoadedModel, dense: DenseModules, precision: str, context,
                         progress: bool) -> tuple[AheadOfTime, AheadOfTime]:
    """fp32 or bf16 pieces (CPU, channels-last) as AOTInductor packages in the engine cache."""
    fields = {"model": loaded.name, "weights_id": loaded.weights_id, "precision": precision}
    # exported without Dynamo: R50-FPN bf16 in 2.3 s against 7.2, the same package (its
    # outputs equal to the strict export's, as fast)
    return _ahead_of_time(functools.partial(DensePiece, dense), lambda _: fields, context,
                          progress, strict=False)


def _int8_ahead_of_time(loaded: LoadedModel, calib, context, autocast: torch.dtype | None,
                        progress: bool) -> tuple[AheadOfTime, AheadOfTime]:
    """The int8 pieces as AOTInductor packages kept in the engine cache; PT2E quantizes only
    when one of them has to be built."""
    from drivevision.engines.pt2e import check_can_quantize, quantized_pieces, range_fields

    check_can_quantize(calib)
    fields = {"model": loaded.name, "weights_id": loaded.weights_id, "precision": "int8",
              "autocast": "bf16" if autocast is not None else None}
    quantized: dict[str, nn.Module] = {}

    def make(name: str) -> nn.Module:
        if not quantized:
            quantized.update(quantized_pieces(loaded, calib, progress=progress))
        return quantized[name]

    return _ahead_of_time(make, lambda name: {**fields, "int8": range_fields(loaded, name, calib)},
                          context, progress, strict=True)


def _ahead_of_time(make: Callable[[str], nn.Module], fields: Callable[[str], dict], context,
                   progress: bool, strict: bool) -> tuple[AheadOfTime, AheadOfTime]:
    """Dense A (a package per input shape) and dense B (one for any RoI count), each module
    made by ``make(name)`` only when its package has to be built."""
    return tuple(AheadOfTime(name, functools.partial(make, name), fields(name), context=context,
                             any_rows=name == "dense_b", progress=progress, strict=strict)
                 for name in ("dense_a", "dense_b"))


def create(loaded: LoadedModel, *, device: torch.device, precision: str,
           progress: bool = False, calib=None) -> CompiledEngine:
    if progress and device.type == "cuda":  # a CPU package says so when one is compiled
        print(f"Compiling {loaded.name}'s dense pieces with torch.compile on the first frame of "
              "each size (a minute or more; later frames run compiled)", file=sys.stderr,
              flush=True)
    return CompiledEngine(loaded, device=device, precision=precision, calib=calib,
                          progress=progress)
