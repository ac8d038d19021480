"""Calibrated INT8 for the compiled engine: PyTorch's PT2E flow with the x86 Inductor
quantizer (torchao), run by oneDNN's INT8 kernels (AMX, AVX512-VNNI, AVX-VNNI, AVX2).

Each dense piece is exported with ``torch.export`` (batch-norms folded into the
convolutions first, dynamic input sizes), annotated by ``X86InductorQuantizer`` (uint8
activations with zero points, int8 per-channel weights), calibrated on the calibration
set's frames prepared as the detector feeds them (``int8.calibration_inputs``) and
converted; ``compiled`` then lowers the result with Inductor's freezing passes.

The slow step, calibration, is cached with the engines (``drivevision.engines.cache``, the
``int8/`` folder), keyed by the model, its weights id, the calibration set's digest, the
model's resize rule, the RPN's proposal count and the torch and torchao versions: the
cached file holds the observers' state (activation ranges), so a second run exports and
converts (seconds) but calibrates nothing.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from drivevision.config import NEED_CALIB, setting
from drivevision.engines import cache as engine_cache
from drivevision.engines.base import quiet_pytree_log
from drivevision.engines.int8 import CalibrationSet, calibration_inputs
from drivevision.engines.torch import DenseModules, DensePiece
from drivevision.labels import counted
from drivevision.model import LoadedModel

QUANTIZER = 2  # bump when the quantization recipe changes: cached ranges are remeasured
_OBSERVER = "activation_post_process_"


def quantized_pieces(loaded: LoadedModel, calib: CalibrationSet | None, *,
                     progress: bool = False) -> dict[str, nn.Module]:
    """Both dense pieces quantized to int8 (float in, float out), ready for Inductor with
    freezing (``drivevision.engines.aot`` builds them); ``calib`` None raises ValueError
    with ``NEED_CALIB``.

    dense_a takes float32[N, 3, H, W] (channels-last) of any size, dense_b
    float32[R, C, 7, 7]; the activation ranges come from the cache or are measured now.
    """
    check_can_quantize(calib)
    calib = calib.read_once()
    dense = fold_batch_norms(DenseModules(copy.deepcopy(loaded.module)).eval())
    with torch.no_grad():
        levels = len(dense.backbone(torch.zeros(1, 3, 64, 64)))
    dense.rpn_head = PerLevelHead(dense.rpn_head, levels)
    return {piece: _quantized(loaded, dense, piece, calib, progress)
            for piece in ("dense_a", "dense_b")}


def check_can_quantize(calib: CalibrationSet | None) -> None:
    """ValueError without a calibration set, ImportError without torchao: each says what
    to do."""
    if calib is None:
        raise ValueError(NEED_CALIB)
    check_torchao()


def check_torchao(option: str = "engine") -> None:
    """ImportError without torchao, saying what to run instead, in ``option``: the Python
    API's ``engine`` keyword (``engine='onnx'``), or a command's ``--engine`` (commands ask
    before the model loads)."""
    try:
        with quiet_pytree_log():
            import torchao  # noqa: F401
    except ImportError as e:
        raise ImportError("Expected torchao for int8 on the compiled engine (pip install "
                          f"'drivevision[int8]'), or use {setting(option, 'onnx')}") from e


class PerLevelHead(nn.Module):
    """The RPN head with a copy of its weights for each FPN level. The x86 quantizer's int8
    convolutions take weights with one user: shared by the levels, the head's three
    convolutions stayed float (15 convolutions of a frame, about 40% of int8 dense A)."""

    def __init__(self, head: nn.Module, levels: int):
        super().__init__()
        self.heads = nn.ModuleList(copy.deepcopy(head) for _ in range(levels))

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        logits, deltas = [], []
        for head, feature in zip(self.heads, features, strict=True):
            level_logits, level_deltas = head([feature])
            logits += level_logits
            deltas += level_deltas
        return logits, deltas


def _quantized(loaded: LoadedModel, dense: DenseModules, piece: str, calib: CalibrationSet,
               progress: bool) -> nn.Module:
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e

    folder = engine_cache.cache_root() / "int8"
    fields = range_fields(loaded, piece, calib)
    path = engine_cache.entry_path(folder, f"{loaded.name}-{piece}-pt2e-ranges", fields, "pt")
    prepared = _prepared(dense, piece)
    engine_cache.get_or_build(
        path, fields, lambda target: _calibrate(loaded, prepared, piece, calib, target,
                                                progress),
        what=f"PT2E int8 calibration of {loaded.name} {piece}",
        about={"calibration": calib.label})
    ranges = torch.load(path, weights_only=True)
    wanted = {k for k in prepared.state_dict() if _OBSERVER in k}
    if set(ranges) != wanted:  # the key fields name the versions, so only a bug lands here
        raise RuntimeError(f"Expected the observers of {piece} in {path}, but found "
                           f"{len(set(ranges) & wanted)} of {len(wanted)}; delete the file")
    prepared.load_state_dict(ranges, strict=False)
    return convert_pt2e(prepared)


def range_fields(loaded: LoadedModel, piece: str, calib: CalibrationSet) -> dict:
    """What the cached activation ranges of ``piece`` were measured with."""
    import torchao

    module = loaded.module
    fields = {"piece": piece, "model": loaded.name, "weights_id": loaded.weights_id,
              "calibration": calib.digest, "toolchain": "pt2e-x86-inductor",
              "quantizer": QUANTIZER, "torch": torch.__version__,
              "torchao": torchao.__version__,
              "resize": [int(module.transform.min_size[-1]), int(module.transform.max_size)]}
    if piece == "dense_b":
        fields["proposals"] = int(module.rpn.post_nms_top_n())
    return fields


def _prepared(dense: DenseModules, piece: str) -> torch.fx.GraphModule:
    """``piece`` exported with dynamic input sizes and observed by the x86 Inductor
    quantizer's default recipe."""
    import torchao.quantization.pt2e.quantizer.x86_inductor_quantizer as xiq
    from torchao.quantization.pt2e.quantize_pt2e import prepare_pt2e

    x, dims = _example(dense, piece)
    with torch.no_grad():
        # strict (Dynamo) export: the quantizer matches conv/add/relu patterns per call,
        # and only Dynamo names each call of a shared module (ResNet's relu) apart; shared
        # weights are another matter (``PerLevelHead``).
        exported = torch.export.export(DensePiece(dense, piece), (x,), dynamic_shapes=(dims,),
                                       strict=True).module()
        quantizer = xiq.X86InductorQuantizer()
        quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
        return prepare_pt2e(exported, quantizer)


def _example(dense: DenseModules, piece: str) -> tuple[Tensor, dict]:
    dim = torch.export.Dim
    if piece == "dense_a":
        # padded sizes are multiples of 32 (the model transform's size_divisible)
        x = torch.zeros(2, 3, 256, 320).contiguous(memory_format=torch.channels_last)
        return x, {0: dim("n", max=64), 2: 32 * dim("h32", min=2, max=256),
                   3: 32 * dim("w32", min=2, max=256)}
    return torch.zeros(16, dense.backbone.out_channels, 7, 7), {0: dim("rois", max=65536)}


def _calibrate(loaded: LoadedModel, prepared: torch.fx.GraphModule, piece: str,
               calib: CalibrationSet, target: Path, progress: bool) -> None:
    """Run the calibration frames through the observers; their state goes to ``target``."""
    frames = calib.frames()
    if progress:
        print(f"Calibrating {loaded.name} {piece} for int8 (PT2E) on "
              f"{counted(len(frames), 'frame')} of {calib.label} (first use with these frames; "
              f"cached in {target.parent})",
              file=sys.stderr, flush=True)
    with torch.no_grad():
        for x in calibration_inputs(loaded, frames, piece):
            t = torch.from_numpy(x)
            prepared(t.contiguous(memory_format=torch.channels_last) if t.ndim == 4 and
                     piece == "dense_a" else t)
    state = {k: v for k, v in prepared.state_dict().items() if _OBSERVER in k}
    with open(target, "wb") as f:
        torch.save(state, f)


def fold_batch_norms(module: nn.Module) -> nn.Module:
    """``module`` (changed in place) with each batch-norm that follows a convolution folded
    into that convolution's weights and bias: torchvision's ``FrozenBatchNorm2d`` is a
    multiply-add the quantizer cannot fuse, so unfolded it would cost a float pass."""
    from torch.nn.utils.fusion import fuse_conv_bn_eval
    from torchvision.ops.misc import FrozenBatchNorm2d

    norms = (FrozenBatchNorm2d, nn.BatchNorm2d)
    for m in list(module.modules()):
        for k in ("", "1", "2", "3"):  # ResNet's stem and bottlenecks: convK then bnK
            conv, bn = getattr(m, f"conv{k}", None), getattr(m, f"bn{k}", None)
            if isinstance(conv, nn.Conv2d) and isinstance(bn, norms):
                setattr(m, f"conv{k}", fuse_conv_bn_eval(conv, bn))
                setattr(m, f"bn{k}", nn.Identity())
        if isinstance(m, nn.Sequential):  # downsample, Conv2dNormActivation
            for i in range(len(m) - 1):
                if isinstance(m[i], nn.Conv2d) and isinstance(m[i + 1], norms):
                    m[i] = fuse_conv_bn_eval(m[i], m[i + 1])
                    m[i + 1] = nn.Identity()
    return module
