"""ONNX export of the two dense pieces, with their metadata inside the ONNX file.

``dense_a.onnx``: input ``images`` float32[N, 3, H, W] (normalized, padded RGB; N, H, W
dynamic) -> outputs ``feature_<i>`` float32[N, C, h_i, w_i], then ``objectness_<i>``
float32[N, A, h_i, w_i], then ``deltas_<i>`` float32[N, 4A, h_i, w_i], for FPN level i in
the backbone's order (levels "0".."3", then "pool"); the level count is in the metadata.
``dense_b.onnx``: input ``pooled`` float32[R, C, 7, 7] -> ``logits`` float32[R, K] and
``box_deltas`` float32[R, 4K].

In fp16 the inputs and outputs stay float32 and the graph casts to float16 inside, so the
file is strongly typed: TensorRT 11 and TensorRT for RTX build FP16 engines from it as is,
and ONNX Runtime runs it on CUDA. Engines that run these pieces export them on first use
into the cache (``drivevision.engines.cache``); TensorRT engines are built from them in
``drivevision.engines.trt_build``.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import Tensor, nn

from drivevision import __version__
from drivevision.engines.sizes import check_padded_size
from drivevision.model import LoadedModel

PIECES = ("dense_a", "dense_b")
EXPORTERS = ("dynamo", "legacy")
OPSET = 18  # both exporters; TensorRT 10 (JetPack 6.1+) parses it


@dataclass(frozen=True)
class ExportSpec:
    """What to export: ``precision`` "fp32" or "fp16"; ``input_size`` (H, W) of the padded
    batch the metadata records (and the example input); ``batch`` its N."""

    precision: str = "fp32"
    input_size: tuple[int, int] = (800, 1344)
    batch: int = 1
    exporter: str = "dynamo"

    def __post_init__(self) -> None:
        if self.precision not in ("fp32", "fp16"):
            raise ValueError(f"Expected export precision fp32 or fp16, but got {self.precision!r}")
        if self.exporter not in EXPORTERS:
            raise ValueError(f"Expected exporter {' or '.join(EXPORTERS)}, got {self.exporter!r}")
        h, w = self.input_size
        if h < 32 or w < 32 or self.batch < 1:
            raise ValueError(f"Expected input size >= 32x32 and batch >= 1, but got {h}x{w}, "
                             f"batch {self.batch}")
        check_padded_size((h, w))


class _DenseA(nn.Module):
    def __init__(self, dense: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.dense, self.dtype = dense, dtype

    def forward(self, images: Tensor) -> tuple[Tensor, ...]:
        features, objectness, deltas = self.dense.dense_a(images.to(self.dtype))
        return tuple(t.float() for t in (*features, *objectness, *deltas))


class _DenseB(nn.Module):
    def __init__(self, dense: nn.Module, dtype: torch.dtype):
        super().__init__()
        self.dense, self.dtype = dense, dtype

    def forward(self, pooled: Tensor) -> tuple[Tensor, Tensor]:
        logits, deltas = self.dense.dense_b(pooled.to(self.dtype))
        return logits.float(), deltas.float()


def fpn_levels(loaded: LoadedModel) -> int:
    """Number of FPN levels dense A yields (5 for the torchvision ResNet-FPN detectors)."""
    backbone = loaded.module.backbone
    param = next(backbone.parameters())
    with torch.inference_mode():
        return len(backbone(torch.zeros(1, 3, 64, 64, device=param.device, dtype=param.dtype)))


def io_names(piece: str, levels: int) -> tuple[list[str], list[str]]:
    """Input and output names of ``piece``, outputs in the engine protocol's order."""
    if piece == "dense_a":
        outs = [f"{kind}_{i}" for kind in ("feature", "objectness", "deltas")
                for i in range(levels)]
        return ["images"], outs
    return ["pooled"], ["logits", "box_deltas"]


def metadata(loaded: LoadedModel, spec: ExportSpec, piece: str, levels: int) -> dict[str, str]:
    """Key/value strings stored in the ONNX ``metadata_props`` (and engine cache sidecars)."""
    import onnx
    import torchvision

    h, w = spec.input_size
    return {
        "drivevision.piece": piece, "drivevision.model": loaded.name,
        "drivevision.class_names": json.dumps(list(loaded.class_names)),
        "drivevision.input_size": f"{h}x{w}", "drivevision.batch": str(spec.batch),
        "drivevision.precision": spec.precision, "drivevision.weights_id": loaded.weights_id,
        "drivevision.fpn_levels": str(levels), "drivevision.exporter": spec.exporter,
        "drivevision.versions": json.dumps({
            "drivevision": __version__, "torch": torch.__version__,
            "torchvision": torchvision.__version__, "onnx": onnx.__version__}),
    }


def read_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The ``drivevision.*`` metadata of an exported ONNX file (keys without the prefix)."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return {p.key.split(".", 1)[1]: p.value for p in model.metadata_props
            if p.key.startswith("drivevision.")}


def export_onnx(loaded: LoadedModel, folder: str | os.PathLike, spec: ExportSpec,
                pieces: tuple[str, ...] = PIECES) -> dict[str, Path]:
    """Write ``<folder>/dense_a.onnx`` and ``dense_b.onnx``; returns piece -> path."""
    from drivevision.engines.torch import DenseModules

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    dtype = torch.float16 if spec.precision == "fp16" else torch.float32
    # A CPU copy: the caller's model stays where it is (often on the GPU, in use).
    dense = DenseModules(copy.deepcopy(loaded.module)).to(device="cpu", dtype=dtype).eval()
    levels = fpn_levels(loaded)
    out = {}
    for piece in pieces:
        path = folder / f"{piece}.onnx"
        _export_piece(dense, piece, levels, spec, dtype, path)
        _stamp(path, metadata(loaded, spec, piece, levels))
        out[piece] = path
    return out


def _example(piece: str, spec: ExportSpec, dense: nn.Module) -> Tensor:
    if piece == "dense_a":
        return torch.zeros(spec.batch, 3, *spec.input_size)
    return torch.zeros(8, dense.backbone.out_channels, 7, 7)  # RoIAlign keeps the FPN width


def _export_piece(dense: nn.Module, piece: str, levels: int, spec: ExportSpec,
                  dtype: torch.dtype, path: Path) -> None:
    wrapper = (_DenseA if piece == "dense_a" else _DenseB)(dense, dtype).eval()
    inputs, outputs = io_names(piece, levels)
    example = _example(piece, spec, dense)
    if spec.exporter == "dynamo":
        dims = {0: torch.export.Dim("batch", max=256), 2: torch.export.Dim.DYNAMIC,
                3: torch.export.Dim.DYNAMIC} if piece == "dense_a" else \
            {0: torch.export.Dim("rois", max=1 << 16)}
        program = torch.onnx.export(wrapper, (example,), dynamo=True, input_names=inputs,
                                    output_names=outputs, dynamic_shapes={inputs[0]: dims},
                                    opset_version=OPSET, optimize=True, verbose=False)
        program.save(str(path))
        return
    axes = {inputs[0]: {0: "batch", 2: "height", 3: "width"} if piece == "dense_a"
            else {0: "rois"}}
    for i, name in enumerate(outputs):
        axes[name] = {0: "rois"} if piece == "dense_b" else \
            {0: "batch", 2: f"h{i % levels}", 3: f"w{i % levels}"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(wrapper, (example,), str(path), dynamo=False, input_names=inputs,
                          output_names=outputs, dynamic_axes=axes, opset_version=OPSET)


def _stamp(path: Path, props: dict[str, str]) -> None:
    import onnx

    model = onnx.load(str(path))
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "drivevision"
    onnx.save(model, str(path))


def cached_onnx(loaded: LoadedModel, precision: str, *, exporter: str = "dynamo",
                log=None, progress: bool = False,
                reused: list[Path] | None = None) -> dict[str, Path]:
    """The ONNX pieces of ``loaded`` at ``precision``, exported once into the cache.

    Keyed by model, weights id, precision, exporter and torch version, so a file from
    other weights is never used (``engine_cache`` checks the key and the file's hash).
    ``progress`` says each export, and in one line which pieces came from the cache;
    with ``reused`` (a list) those pieces are added to it instead, for the caller to say.
    """
    from drivevision.engines import cache as engine_cache

    spec = ExportSpec(precision=precision, input_size=(320, 320), exporter=exporter)
    folder = engine_cache.cache_root() / "onnx"
    out, hits = {}, []
    for piece in PIECES:
        fields = {"piece": piece, "model": loaded.name, "weights_id": loaded.weights_id,
                  "precision": precision, "exporter": exporter, "torch": torch.__version__}
        path = engine_cache.entry_path(folder, f"{loaded.name}-{piece}-{precision}", fields,
                                       "onnx")

        def build(target: Path, piece=piece) -> None:
            if progress:
                print(f"Exporting {loaded.name} {piece} to ONNX ({precision}; first use, cached "
                      f"in {target.parent})", file=sys.stderr, flush=True)
            tmp = target.parent / f"{target.name}.export"  # target's name is per process
            try:
                os.replace(export_onnx(loaded, tmp, spec, pieces=(piece,))[piece], target)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)

        out[piece] = engine_cache.get_or_build(path, fields, build,
                                               what=f"ONNX {piece} of {loaded.name}", log=log,
                                               reused=hits.append)
    if reused is not None:
        reused += hits
    elif progress and hits:
        pieces = ", ".join(p for p in PIECES if out[p] in hits)
        engine_cache.say_reused(f"{loaded.name} {pieces} ONNX ({precision})", hits)
    return out
