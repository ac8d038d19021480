"""Building TensorRT engines from the exported ONNX pieces, and their on-disk cache.

Works with ``tensorrt`` (10.x on JetPack 6.1+, 11.x on desktops/servers) or ``tensorrt_rtx``
(TensorRT for RTX GPUs). FP16: TensorRT 10 builds the fp32 ONNX with its FP16 builder flag;
TensorRT 11 and RTX have no such flag (networks are strongly typed) and build the fp16 ONNX,
which casts to float16 inside. In fp32 TF32 is switched off so results match PyTorch.
INT8 is explicit quantization: the network is the QDQ ONNX that ``drivevision.engines.int8``
quantized on the user's footage (symmetric ``tensorrt`` scheme), its scales inside, built
strongly typed (no precision flag: the Q/DQ pairs say where int8 runs).
Nothing here needs a GPU with TensorRT for RTX (it builds portable engines without one);
``drivevision.engines.tensorrt`` runs what is built.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch

from drivevision.config import setting
from drivevision.engines import cache as engine_cache
from drivevision.engines.export import cached_onnx
from drivevision.model import LoadedModel

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


def unsupported_gpu(trt, capability: tuple[int, int], gpu: str,
                    option: str = "--engine") -> str | None:
    """Why ``trt`` cannot build for a GPU of compute ``capability`` (major, minor), or None;
    what to run instead named in ``option``: a command's ``--engine``, or the Python API's
    ``engine`` keyword (``engine='compiled'``).

    TensorRT for RTX targets the compute capabilities its ``ComputeCapability`` enum names
    (RTX desktop GPUs: 7.5, 8.6, 8.9, 12.0, ...), not datacenter GPUs such as the H100 (9.0)
    or Jetson Orin (8.7); full TensorRT builds for the GPU it runs on.
    """
    major, minor = capability
    if trt.__name__ != "tensorrt_rtx" or hasattr(trt.ComputeCapability, f"SM{major}{minor}"):
        return None
    return (f"TensorRT for RTX {trt.__version__} does not support {gpu} (compute capability "
            f"{major}.{minor}); install TensorRT, or use {setting(option, 'compiled')}")


def gpu_problem(device: str | torch.device, option: str = "--engine") -> str | None:
    """``unsupported_gpu`` for the TensorRT installed and CUDA ``device``; None also where
    none is installed, or torch sees no GPU (the engine, the device check, say so). Commands
    ask before the model loads."""
    if not torch.cuda.is_available():
        return None
    try:
        trt = import_tensorrt()
    except ImportError:
        return None
    device = torch.device(device)
    return unsupported_gpu(trt, torch.cuda.get_device_capability(device), gpu_name(device),
                           option)


def onnx_precision(trt, precision: str) -> str:
    """Which ONNX to build from: fp16 builds use the fp16 ONNX when the FP16 flag is gone;
    int8 builds the calibrated QDQ ONNX."""
    if precision == "int8":
        return "int8"
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
    if onnx_precision(trt, precision) in ("fp16", "int8") and \
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
    elif precision not in ("fp32", "fp16", "int8"):
        raise ValueError(f"Expected TensorRT precision fp32, fp16 or int8, got {precision!r}")


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

    def reused(found: Path) -> None:
        engine_cache.say_reused(f"TensorRT {piece} engine for {loaded.name} {shape} "
                                f"{precision}", [found])

    return engine_cache.get_or_build(path, fields, build, what=f"TensorRT {piece} engine",
                                     reused=reused if progress else None)
