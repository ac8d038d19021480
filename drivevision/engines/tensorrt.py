"""TensorRT engine: both dense pieces as engines (``drivevision.engines.trt_build``), on CUDA.

Engines are built on first use for the batch's image size (video streams keep one), with a
batch range of 1..N where N is the largest batch seen for that size, so a file's short last
batch or a live batch of whatever has arrived runs on the same engine; only a larger batch
builds anew. They are cached keyed by weights id, input shapes, precision, TensorRT version
and GPU name. Inputs and outputs are torch CUDA tensors; TensorRT runs on torch's current
stream, so nothing goes through the host between the pieces.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from torch import Tensor

from drivevision.engines import cache as engine_cache
from drivevision.engines.base import DenseA, Engine
from drivevision.engines.batching import BatchPlan
from drivevision.engines.trt_build import cached_engine, gpu_name, import_tensorrt, unsupported_gpu
from drivevision.model import LoadedModel

_log = logging.getLogger(__name__)


_DTYPES = {"FLOAT": torch.float32, "HALF": torch.float16, "BF16": torch.bfloat16,
           "INT32": torch.int32, "INT64": torch.int64}


class _Runner:
    """One deserialized engine and its execution context; runs on torch's current stream."""

    def __init__(self, trt, data: bytes, device: torch.device,
                 runtime_cache: Path | None = None):
        with torch.cuda.device(device):  # the engine lives on the GPU ``device`` names
            self._setup(trt, data, device, runtime_cache)

    def _setup(self, trt, data: bytes, device: torch.device, runtime_cache: Path | None) -> None:
        self.runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engine = self.runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise RuntimeError("TensorRT could not deserialize the engine")
        self.cache = _RuntimeCache.open(trt, self.engine, runtime_cache)
        self.context = self.engine.create_execution_context(self.cache.config) \
            if self.cache else self.engine.create_execution_context()
        self.device = device
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        is_input = {n: self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT for n in names}
        self.inputs = [n for n in names if is_input[n]]
        self.outputs = [n for n in names if not is_input[n]]
        self.dtypes = {n: _DTYPES[self.engine.get_tensor_dtype(n).name] for n in names}

    def __call__(self, x: Tensor) -> dict[str, Tensor]:
        name = self.inputs[0]
        x = x.to(self.device, self.dtypes[name]).contiguous()
        self.context.set_input_shape(name, tuple(x.shape))
        self.context.set_tensor_address(name, x.data_ptr())
        outs = {}
        for out in self.outputs:
            t = torch.empty(tuple(self.context.get_tensor_shape(out)), dtype=self.dtypes[out],
                            device=self.device)
            self.context.set_tensor_address(out, t.data_ptr())
            outs[out] = t
        with torch.cuda.device(self.device):
            ok = self.context.execute_async_v3(torch.cuda.current_stream(self.device).cuda_stream)
        if not ok:
            raise RuntimeError("TensorRT execution failed")
        if self.cache:
            self.cache.save_once(tuple(x.shape))
        return {k: t.float() for k, t in outs.items()}


class _RuntimeCache:
    """TensorRT for RTX compiles its kernels when an engine first runs; this keeps them in a
    file beside the engine so later processes start fast. TensorRT checks a loaded cache
    against this machine (GPU, driver, version) and ignores one that does not fit."""

    def __init__(self, config, cache, path: Path):
        self.config, self.cache, self.path = config, cache, path
        self._saved: set[tuple] = set()

    @classmethod
    def open(cls, trt, engine, path: Path | None) -> _RuntimeCache | None:
        if path is None or not hasattr(trt, "IRuntimeCache") or \
                not hasattr(engine, "create_runtime_config"):
            return None  # full TensorRT: kernels are in the engine already
        config = engine.create_runtime_config()
        cache = config.create_runtime_cache()
        if path.is_file() and not cache.deserialize(path.read_bytes()):
            _log.warning(f"TensorRT runtime cache {path.name} does not fit this machine; "
                         "kernels are compiled again")
        config.set_runtime_cache(cache)
        return cls(config, cache, path)

    def save_once(self, shape: tuple) -> None:
        """Write the cache after the first run of each input shape (new kernels came then)."""
        if shape in self._saved:
            return
        self._saved.add(shape)
        tmp = engine_cache.temp_name(self.path)
        tmp.write_bytes(bytes(self.cache.serialize()))
        os.replace(tmp, self.path)


class TensorRTEngine(Engine):
    """Both dense pieces as TensorRT engines on a CUDA device, in fp32 or fp16."""

    name = "tensorrt"

    def __init__(self, loaded: LoadedModel, *, device: torch.device, precision: str,
                 progress: bool = True):
        if device.type != "cuda":
            raise ValueError(f"Expected a CUDA device for the tensorrt engine, but got {device}")
        if precision not in ("fp32", "fp16"):
            raise ValueError(f"Expected fp32 or fp16 for the tensorrt engine, got {precision!r}")
        self.trt = import_tensorrt()
        why = unsupported_gpu(self.trt, torch.cuda.get_device_capability(device),
                              gpu_name(device), "engine")  # commands check --engine before
        if why:
            raise ValueError(why)
        self.loaded, self.device, self.precision = loaded, device, precision
        self.progress = progress
        self.rois_per_image = int(loaded.module.rpn.post_nms_top_n())  # eval: test-time count
        self._plan = BatchPlan()
        self._a: dict[tuple[int, int], _Runner] = {}  # (H, W) -> engine for batches 1..N
        self._b: tuple[int, _Runner] | None = None  # (most RoIs, engine for 1..that many)
        self._rois = self.rois_per_image  # most RoIs the largest batch so far can bring

    def _runner(self, piece: str, shapes: dict) -> _Runner:
        for attempt in range(2):
            path = cached_engine(self.trt, self.loaded, piece, shapes, self.precision,
                                 self.device, progress=self.progress)
            try:
                return _Runner(self.trt, path.read_bytes(), self.device,
                               runtime_cache=path.with_suffix(".runtime-cache"))
            except RuntimeError as e:  # an engine this runtime rejects: rebuild once
                if attempt:
                    raise
                _log.warning(f"Rebuilding TensorRT {piece} engine: {path.name}: {e}")
                engine_cache.invalidate(path)
                path.with_suffix(".runtime-cache").unlink(missing_ok=True)
        raise AssertionError("unreachable")

    def dense_a(self, images: Tensor) -> DenseA:
        n, c, h, w = images.shape
        most, new = self._plan.fit(n, (h, w))
        if new:
            self._a[(h, w)] = self._runner(
                "dense_a", {"images": ((1, c, h, w), (most, c, h, w), (most, c, h, w))})
        self._rois = max(self._rois, most * self.rois_per_image)
        outs = self._a[(h, w)](images)
        levels = len(outs) // 3
        return tuple([outs[f"{kind}_{i}"] for i in range(levels)]
                     for kind in ("feature", "objectness", "deltas"))

    def dense_b(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        if pooled.shape[0] == 0:
            k = self.loaded.module.roi_heads.box_predictor.cls_score.out_features
            empty = pooled.new_zeros((0, k), dtype=torch.float32)
            return empty, pooled.new_zeros((0, 4 * k), dtype=torch.float32)
        if self._b is None or pooled.shape[0] > self._b[0]:
            most = max(self._rois, pooled.shape[0])
            c = tuple(pooled.shape[1:])
            self._b = most, self._runner("dense_b", {"pooled": ((1, *c), (most, *c), (most, *c))})
        outs = self._b[1](pooled)
        return outs["logits"], outs["box_deltas"]


def create(loaded: LoadedModel, *, device: torch.device, precision: str,
           progress: bool = False) -> TensorRTEngine:
    return TensorRTEngine(loaded, device=device, precision=precision, progress=progress)
