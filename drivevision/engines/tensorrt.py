"""TensorRT engine: both dense pieces built from their ONNX export, cached, run on CUDA.

Works with ``tensorrt`` (10.x on JetPack 6, 11.x on desktops/servers) or ``tensorrt_rtx``
(TensorRT for RTX GPUs). FP16: TensorRT 10 builds the fp32 ONNX with its FP16 builder flag;
TensorRT 11 and RTX have no such flag (networks are strongly typed) and build the fp16 ONNX,
which casts to float16 inside. In fp32 TF32 is switched off so results match PyTorch.

Engines are built on first use for the batch's image size (video streams keep one), with a
batch range of 1..N where N is the largest batch seen for that size, so a file's short last
batch or a live batch of whatever has arrived runs on the same engine; only a larger batch
builds anew. They are cached keyed by weights id, input shapes, precision, TensorRT version
and GPU name (``drivevision.engine_cache``). Inputs and outputs
are torch CUDA tensors; TensorRT runs on torch's current stream, so nothing goes through the
host between the pieces.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from pathlib import Path

import torch
from torch import Tensor

from drivevision import engine_cache
from drivevision.engines import DenseA
from drivevision.engines.batching import BatchPlan
from drivevision.export import cached_onnx
from drivevision.model import LoadedModel

_log = logging.getLogger(__name__)
MODULES = ("tensorrt", "tensorrt_rtx")


def import_tensorrt():
    """The installed TensorRT Python module: ``tensorrt`` first, else ``tensorrt_rtx``."""
    for name in MODULES:
        try:
            return importlib.import_module(name)
        except (ImportError, OSError):  # OSError: wheel present, its libraries missing
            continue
    raise ImportError("TensorRT is not installed: expected the tensorrt module (JetPack, or "
                      "NVIDIA's wheels) or tensorrt_rtx (pip install tensorrt-rtx)")


def unsupported_gpu(trt, capability: tuple[int, int], gpu: str) -> str | None:
    """Why ``trt`` cannot build for a GPU of compute ``capability`` (major, minor), or None.

    TensorRT for RTX targets the compute capabilities its ``ComputeCapability`` enum names
    (RTX desktop GPUs: 7.5, 8.6, 8.9, 12.0, ...), not datacenter GPUs such as the H100 (9.0)
    or Jetson Orin (8.7); full TensorRT builds for the GPU it runs on.
    """
    major, minor = capability
    if trt.__name__ != "tensorrt_rtx" or hasattr(trt.ComputeCapability, f"SM{major}{minor}"):
        return None
    return (f"TensorRT for RTX {trt.__version__} does not support {gpu} (compute capability "
            f"{major}.{minor}); install TensorRT, or use --engine compiled")


def onnx_precision(trt, precision: str) -> str:
    """Which ONNX to build from: fp16 builds use the fp16 ONNX when the FP16 flag is gone."""
    return "fp16" if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16") else "fp32"


def build_serialized(trt, onnx_path: str | Path, shapes: dict[str, tuple], precision: str, *,
                     compute_capability: str | None = None, progress: bool = False) -> bytes:
    """Parse ``onnx_path`` and build a serialized engine.

    ``shapes`` maps each input name to (min, opt, max) shapes. ``compute_capability`` (e.g.
    "SM89", "CURRENT") targets TensorRT for RTX builds; without it RTX builds a portable
    engine, which needs no GPU at build time. Raises RuntimeError with the parser's errors.
    """
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if onnx_precision(trt, precision) == "fp16" and \
            hasattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED"):
        flags |= 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(parser.get_error(i).desc() for i in range(parser.num_errors))
        raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
    config = builder.create_builder_config()
    _set_precision(trt, config, precision)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in shapes.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    if compute_capability is not None:
        config.num_compute_capabilities = 1
        config.set_compute_capability(getattr(trt.ComputeCapability, compute_capability), 0)
    if progress and hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(trt)
    data = builder.build_serialized_network(network, config)
    if data is None:
        raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
    return bytes(data)


def _set_precision(trt, config, precision: str) -> None:
    if hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 engines must match PyTorch's fp32
    if precision == "fp16" and hasattr(trt.BuilderFlag, "FP16"):
        config.set_flag(trt.BuilderFlag.FP16)
    elif precision not in ("fp32", "fp16"):
        raise ValueError(f"Expected TensorRT precision fp32 or fp16, but got {precision!r}")


def _progress_monitor(trt):
    class Monitor(trt.IProgressMonitor):
        """Prints TensorRT's top-level build phases (a build takes minutes the first time)."""

        def __init__(self):
            trt.IProgressMonitor.__init__(self)

        def phase_start(self, phase_name, parent_phase, num_steps):
            if parent_phase is None:
                print(f"  TensorRT: {phase_name} ...", file=sys.stderr, flush=True)

        def step_complete(self, phase_name, step):
            return True

        def phase_finish(self, phase_name):
            pass

    return Monitor()


def gpu_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "none"


def engine_fields(trt, loaded: LoadedModel, piece: str, shapes: dict, precision: str,
                  device: torch.device) -> dict:
    """What a cached engine must have been built for to be used here."""
    return {"piece": piece, "model": loaded.name, "weights_id": loaded.weights_id,
            "shapes": {k: [list(s) for s in v] for k, v in shapes.items()},
            "precision": precision, "tensorrt": f"{trt.__name__} {trt.__version__}",
            "gpu": gpu_name(device)}


def cached_engine(trt, loaded: LoadedModel, piece: str, shapes: dict, precision: str,
                  device: torch.device, *, progress: bool = True) -> Path:
    """Path of a valid serialized engine for ``piece``, built (with progress) if needed."""
    fields = engine_fields(trt, loaded, piece, shapes, precision, device)
    shape = "x".join(str(d) for d in next(iter(shapes.values()))[2])
    path = engine_cache.entry_path(engine_cache.cache_root() / "tensorrt",
                                   f"{loaded.name}-{piece}-{precision}-{shape}", fields, "engine")

    def build(target: Path) -> None:
        onnx = cached_onnx(loaded, onnx_precision(trt, precision), progress=progress)[piece]
        if progress:
            print(f"Building TensorRT {piece} engine for {loaded.name} {shape} {precision} "
                  f"(first use; cached in {target.parent})", file=sys.stderr, flush=True)
        here = "CURRENT" if trt.__name__ == "tensorrt_rtx" and device.type == "cuda" else None
        target.write_bytes(build_serialized(trt, onnx, shapes, precision, progress=progress,
                                            compute_capability=here))

    return engine_cache.get_or_build(path, fields, build, what=f"TensorRT {piece} engine")


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


class TensorRTEngine:
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
                              gpu_name(device))
        if why:
            raise ValueError(why)
        self.loaded, self.device, self.precision = loaded, device, precision
        self.progress = progress
        post = loaded.module.rpn._post_nms_top_n["testing"]
        self.rois_per_image = int(post)
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
