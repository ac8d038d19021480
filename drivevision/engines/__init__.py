"""Inference engines: thin adapters that run the two dense pieces of a Faster R-CNN.

Every engine runs

* ``dense_a``: normalized, padded images float[N, 3, H, W] -> FPN features (one tensor per
  level, [N, C, h, w] in float32 or, for the torch and compiled engines, in their bf16/fp16
  precision), RPN objectness (per level float[N, A, h, w]) and RPN box deltas (per level
  float[N, 4A, h, w]);
* ``dense_b``: RoI-pooled features float[R, C, 7, 7] -> class logits float[R, K] and box
  deltas float[R, 4K].

Everything between and around them (resize, anchors, proposals, NMS, RoIAlign, box
decoding) is shared torchvision code in ``drivevision.detector``, so engines differ only in
how they run dense math. Outputs are on the detector's device, float32 but for the
features above. Optional heavy
imports (onnxruntime, tensorrt) happen inside the engine's own module.
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from drivevision.engines.base import DenseA, Engine  # noqa: F401 - the public names
    from drivevision.model import LoadedModel

_log = logging.getLogger(__name__)
_MODULES = {
    "torch": "drivevision.engines.torch",
    "onnx": "drivevision.engines.onnx",
    "compiled": "drivevision.engines.compiled",
    "tensorrt": "drivevision.engines.tensorrt",
}


INT8_ENGINES = ("onnx", "compiled")

_PUBLIC = ("DenseA", "Engine", "quiet_pytree_log")


def __getattr__(name: str):
    """The public names of ``drivevision.engines.base``, imported on first use: they need
    torch, which what only reads the cache (``drivevision cache``) does without."""
    if name in _PUBLIC:
        from drivevision.engines import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def create_engine(name: str, loaded: LoadedModel, *, device, precision: str,
                  progress: bool = False, calib=None) -> Engine:
    """The engine called ``name`` ("auto": see ``pick_auto``) for ``loaded`` on ``device``.

    ``progress`` prints a line to stderr before slow first-use work (ONNX export, TensorRT
    builds with their phases, compilation) so a long first start is not mistaken for a hang.
    ``calib`` (an ``int8.CalibrationSet``) is what int8 calibrates on; int8 runs on the
    engines in ``INT8_ENGINES`` (``drivevision.engines.int8``).
    """
    if precision == "int8":
        return _create_int8(name, loaded, device=device, progress=progress, calib=calib)
    name, reason = pick_engine(name, device, precision)
    if name not in _MODULES:
        raise ValueError(f"Unknown engine {name!r}; available: auto, {', '.join(_MODULES)}")
    module = importlib.import_module(_MODULES[name])
    engine = module.create(loaded, device=device, precision=precision, progress=progress)
    engine.auto_reason = reason
    return engine


def _create_int8(name: str, loaded: LoadedModel, *, device, progress: bool, calib) -> Engine:
    """An int8 engine: onnx (ONNX Runtime's QDQ kernels) or compiled (PT2E with the x86
    Inductor quantizer, oneDNN's int8 kernels); ``auto``: see ``pick_int8``."""
    check_int8_engine(name)
    name, reason = pick_engine(name, device, "int8")
    module = importlib.import_module(_MODULES[name])
    engine = module.create(loaded, device=device, precision="int8", progress=progress,
                           calib=calib)
    engine.auto_reason = reason
    return engine


def check_int8_engine(name: str, option: str = "--engine") -> None:
    """ValueError, saying where TensorRT int8 comes from, unless engine ``name`` runs int8,
    naming ``option``: the commands' ``--engine``, or the Python API's ``engine`` keyword
    (then worded as typed, ``engine='onnx'``). Cheap: commands ask it before the model
    loads."""
    if name not in ("auto", *INT8_ENGINES):
        cli = option.startswith("--")
        names = [n if cli else repr(n) for n in (*INT8_ENGINES, "auto", name)]
        raise ValueError(f"Expected {option}{' ' if cli else '='}{' or '.join(names[:-2])} "
                         f"(or {names[-2]}) for int8, but got {names[-1]}; a TensorRT int8 "
                         "engine: drivevision export --format tensorrt --precision int8 --calib "
                         "CLIP_OR_FOLDER")


def pick_engine(name: str, device, precision: str) -> tuple[str, str | None]:
    """``name``, or the engine ``auto`` picks for ``device`` and ``precision`` (a resolved
    one: ``pick_int8`` for int8, else ``pick_auto``) and why; the reason is None when
    nothing was picked."""
    if name != "auto":
        return name, None
    name, reason = pick_int8() if precision == "int8" else pick_auto(device, precision)
    _log.info("engine auto: %s (%s)", name, reason)
    return name, reason


def pick_int8(features=None) -> tuple[str, str]:
    """The int8 engine for this CPU, and why: compiled where the CPU has AMX-INT8 and
    torchao (PT2E) is installed (oneDNN's AMX int8 kernels measured 2.6x onnx int8 on an AMX
    Xeon); onnx elsewhere: on a Zen 4 EPYC (AVX512-VNNI and AVX512-BF16, no AMX) onnx int8
    was 11% faster than compiled int8, and it is the least hurt by other jobs on the cores
    (docs/benchmarks.md)."""
    from drivevision.engines.hardware import cpu_features

    features = features or cpu_features()
    amx = "amx_int8" in features.flags
    if amx and _importable("torchao"):
        return "compiled", "int8 on a CPU with AMX-INT8: PT2E's oneDNN AMX int8 kernels"
    why = "no AMX-INT8" if not amx else "torchao (PT2E) not installed"
    return "onnx", f"int8: ONNX Runtime's QDQ kernels ({why})"


def pick_auto(device, precision: str) -> tuple[str, str]:
    """The fastest engine present for ``device`` and ``precision``, and why it was picked.

    CUDA: tensorrt when a TensorRT module imports, supports this GPU (TensorRT for RTX only
    targets RTX GPUs) and the precision is fp32/fp16, else compiled (Inductor + CUDA graphs).
    CPU fp32: onnx (ONNX Runtime) when installed: it measured level with compiled (within
    2-5 %, docs/benchmarks.md) and takes any frame size without recompiling; compiled for
    bf16 (Inductor's bf16 kernels on AMX/AVX512-BF16: the fastest CPU path measured); else
    torch. ``precision`` is a resolved one ("auto" is settled by the detector first).
    """
    if getattr(device, "type", str(device)) == "cuda":
        if precision not in ("fp32", "fp16"):
            return "compiled", f"CUDA device, {precision}: TensorRT takes fp32 or fp16"
        why = _tensorrt_unusable(device)
        if why is None:
            return "tensorrt", "CUDA device and a TensorRT module that supports it"
        return "compiled", f"CUDA device; {why}"
    if precision == "fp32" and _importable("onnxruntime"):
        return "onnx", "CPU, fp32, ONNX Runtime installed"
    if precision == "bf16":
        return "compiled", "CPU, bf16: Inductor's bf16 kernels, the fastest CPU path measured"
    return "torch", "CPU without ONNX Runtime"


def _tensorrt_unusable(device) -> str | None:
    """Why the tensorrt engine cannot run on CUDA ``device`` here, or None."""
    import torch

    from drivevision.engines import trt_build

    try:
        trt = trt_build.import_tensorrt()
    except ImportError:
        return "no TensorRT installed"
    return trt_build.unsupported_gpu(trt, torch.cuda.get_device_capability(device),
                                     trt_build.gpu_name(device))


def _importable(*names: str) -> bool:
    from drivevision.engines.base import quiet_pytree_log

    for name in names:
        try:
            with quiet_pytree_log():
                importlib.import_module(name)
            return True
        except (ImportError, OSError):
            continue
    return False
