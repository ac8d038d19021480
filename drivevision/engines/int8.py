"""Calibrated INT8: post-training static quantization of the two dense pieces with ONNX
Runtime, in the QDQ format (QuantizeLinear/DequantizeLinear pairs around int8 weights and
activations), calibrated on frames of the user's own footage.

Two steps, each cached with the engines (``drivevision.engines.cache``) and keyed by the
model, its weights id, the calibration set's digest, the model's resize rule, the RPN's
proposal count (dense B) and the tool versions:

1. the calibration table: per-tensor activation ranges that ONNX Runtime's MinMax
   calibrator measured running the fp32 piece on the calibration frames (dense A: the frames
   as the detector feeds them; dense B: RoI-pooled features of the fp32 model's own
   proposals on them). The slow step; a line says so first.
2. the quantized ONNX, made from the table in seconds, in one of two ``SCHEMES``:
   ``cpu``: uint8 activations with zero points, int8 per-channel weights (ONNX Runtime's
   scheme for x86: its u8s8 VNNI/AMX kernels); ``tensorrt``: symmetric int8 activations and
   per-channel weights (zero points 0, as TensorRT's explicit quantization requires; ONNX
   Runtime runs it too). ``export --precision int8`` writes the ``tensorrt`` one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from drivevision.config import NEED_CALIB
from drivevision.engines import cache as engine_cache
from drivevision.engines.export import PIECES, cached_onnx
from drivevision.labels import counted
from drivevision.model import LoadedModel

SCHEMES = ("cpu", "tensorrt")
QUANTIZER = 2  # bump when the quantization options change: cached int8 files are remade


@dataclass(frozen=True)
class CalibrationSet:
    """Frames to calibrate on: ``label`` for messages, ``digest`` (hex) naming them in the
    cache, ``frames()`` returning (H, W, 3) uint8 BGR frames, called only on a cache miss."""

    label: str
    digest: str
    frames: Callable[[], Sequence[np.ndarray]] = field(compare=False, repr=False)

    def read_once(self) -> CalibrationSet:
        """This set, its frames read (a video decoded) at most once and kept as long as the
        copy is: both pieces calibrate on them. The caller's set keeps nothing, so an
        engine that holds it for later builds holds no frames."""
        kept: list[Sequence[np.ndarray]] = []

        def frames() -> Sequence[np.ndarray]:
            if not kept:
                kept.append(self.frames())
            return kept[0]

        return replace(self, frames=frames)


def check_scheme(scheme: str) -> None:
    if scheme not in SCHEMES:
        raise ValueError(f"Expected an int8 scheme from {', '.join(SCHEMES)}, got {scheme!r}")


def cached_int8_onnx(loaded: LoadedModel, calib: CalibrationSet | None, scheme: str = "cpu", *,
                     exporter: str = "dynamo", progress: bool = False) -> dict[str, Path]:
    """Both pieces quantized to int8 (QDQ) in ``scheme``, from the cache or made now.

    ``calib`` None raises ValueError with ``NEED_CALIB``. The fp32 pieces come from
    ``export.cached_onnx``; the calibration table and the quantized files are cached beside
    them, so a second run with the same footage quantizes nothing.
    """
    if calib is None:
        raise ValueError(NEED_CALIB)
    check_scheme(scheme)
    calib = calib.read_once()
    hits: list[Path] = []  # entries earlier runs made: said in one line
    fp32 = cached_onnx(loaded, "fp32", exporter=exporter, progress=progress, reused=hits)
    tables: dict[str, Path] = {}
    out = {piece: _cached_piece(loaded, piece, fp32[piece], calib, scheme, exporter, progress,
                                hits, tables) for piece in PIECES}
    if progress:
        _say_reused(loaded.name, calib, scheme, out, tables, hits)
    return out


def _say_reused(name: str, calib: CalibrationSet, scheme: str, out: dict[str, Path],
                tables: dict[str, Path], hits: list[Path]) -> None:
    """One line for the quantized pieces found in the cache, and one for the calibration
    tables found there for pieces quantized now."""
    done = [piece for piece in PIECES if out[piece] in hits]
    if done:
        engine_cache.say_reused(f"{name} {', '.join(done)} int8 ONNX ({scheme} scheme, "
                                f"calibrated on {calib.label})", [out[p] for p in done])
    measured = [piece for piece in PIECES if piece not in done and tables[piece] in hits]
    if measured:
        engine_cache.say_reused(f"{name} {', '.join(measured)} int8 calibration on "
                                f"{calib.label} (quantizing to the {scheme} scheme now)",
                                [tables[p] for p in measured])


def _cached_piece(loaded: LoadedModel, piece: str, fp32: Path, calib: CalibrationSet,
                  scheme: str, exporter: str, progress: bool, hits: list[Path],
                  tables: dict[str, Path]) -> Path:
    """The cached calibration table of ``piece`` (measured now if missing), then its
    quantized file in ``scheme`` (made from the table if missing); entries found in the
    cache are added to ``hits``, the table's path to ``tables``."""
    folder = engine_cache.cache_root() / "int8"
    base = table_fields(loaded, piece, calib, exporter)
    table = tables[piece] = engine_cache.entry_path(folder, f"{loaded.name}-{piece}-calib",
                                                    base, "calib")
    engine_cache.get_or_build(
        table, base, lambda target: _build_table(loaded, piece, fp32, calib, target, progress),
        what=f"int8 calibration of {loaded.name} {piece}", reused=hits.append,
        about={"calibration": calib.label})
    fields = {**base, "scheme": scheme, "quantizer": QUANTIZER}
    path = engine_cache.entry_path(folder, f"{loaded.name}-{piece}-int8-{scheme}", fields, "onnx")
    return engine_cache.get_or_build(
        path, fields, lambda target: _build_quantized(fp32, table, target, scheme, calib),
        what=f"int8 {piece} of {loaded.name}", reused=hits.append,
        about={"calibration": calib.label})


def table_fields(loaded: LoadedModel, piece: str, calib: CalibrationSet, exporter: str) -> dict:
    """What a calibration table was measured with (the quantized file adds its scheme)."""
    import onnxruntime

    module = loaded.module
    fields = {"piece": piece, "model": loaded.name, "weights_id": loaded.weights_id,
              "calibration": calib.digest, "exporter": exporter, "torch": torch.__version__,
              "onnxruntime": onnxruntime.__version__,
              "resize": [int(module.transform.min_size[-1]), int(module.transform.max_size)]}
    if piece == "dense_b":
        fields["proposals"] = int(module.rpn.post_nms_top_n())
    return fields


def _build_table(loaded: LoadedModel, piece: str, fp32: Path, calib: CalibrationSet,
                 target: Path, progress: bool) -> None:
    """Run ONNX Runtime's MinMax calibrator on ``piece``; its range table goes to ``target``."""
    frames = calib.frames()
    if progress:
        print(f"Calibrating {loaded.name} {piece} for int8 on {counted(len(frames), 'frame')} of "
              f"{calib.label} (first use with these frames; cached in {target.parent})",
              file=sys.stderr, flush=True)
    inputs = calibration_inputs(loaded, frames, piece)
    with engine_cache.scratch(target) as tmp:
        # the table written in the scratch folder too: ONNX Runtime writes it through a
        # temporary file beside it, which a killed build would leave in the cache unnamed
        _quantize(_prepared(fp32, tmp), tmp / "unused.onnx", tmp / "table", "cpu",
                  reader=_reader("images" if piece == "dense_a" else "pooled", inputs))
        os.replace(tmp / "table", target)


def _build_quantized(fp32: Path, table: Path, target: Path, scheme: str,
                     calib: CalibrationSet) -> None:
    """Quantize ``fp32`` with the ranges in ``table``; metadata says int8 and the calibration."""
    with engine_cache.scratch(target) as tmp:
        out = tmp / "int8.onnx"
        _quantize(_prepared(fp32, tmp), out, table, scheme)
        stamp_int8(out, target, scheme, calib)


def _prepared(fp32: Path, folder: Path) -> Path:
    """ONNX Runtime's recommended pre-processing (graph optimization, shapes) before
    quantizing, so folded batch norms and fused ops get one scale each."""
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out = folder / "prepared.onnx"
    quant_pre_process(str(fp32), str(out), skip_symbolic_shape=True)
    return out


def _quantize(src: Path, dst: Path, table: Path, scheme: str, reader=None) -> None:
    """``quantize_static`` in QDQ format with per-channel int8 weights; with ``reader`` it
    calibrates and writes ``table``, without it reads the ranges from ``table``."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    quantize_static(
        str(src), str(dst), reader, quant_format=QuantFormat.QDQ, per_channel=True,
        activation_type=QuantType.QUInt8 if scheme == "cpu" else QuantType.QInt8,
        weight_type=QuantType.QInt8, calibration_cache_path=str(table),
        # The calibrator keeps each tensor's min and max per frame (ReduceMin/ReduceMax
        # outputs), not the tensors, so all frames fit in memory at once.
        # TensorRT takes int8 Q/DQ only: biases stay float there (its convolutions add them).
        extra_options={"ActivationSymmetric": scheme == "tensorrt", "WeightSymmetric": True,
                       "QuantizeBias": scheme == "cpu"})


def stamp_int8(src: Path, dst: Path, scheme: str, calib: CalibrationSet,
               extra: dict[str, str] | None = None) -> None:
    """Copy ``src`` to ``dst`` with ``drivevision.*`` metadata saying int8, the scheme and
    the calibration set (its digest and label), then ``extra``; the piece's other metadata
    is kept."""
    import onnx

    model = onnx.load(str(src))
    props = {p.key: p.value for p in model.metadata_props}
    props.update(extra or {})
    props.update({"drivevision.precision": "int8", "drivevision.int8_scheme": scheme,
                  "drivevision.calibration": calib.digest,
                  "drivevision.calibration_source": calib.label})
    del model.metadata_props[:]
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    model.producer_name = "drivevision"
    onnx.save(model, str(dst))


def calibration_inputs(loaded: LoadedModel, frames: Sequence[np.ndarray],
                       piece: str) -> Iterator[np.ndarray]:
    """What ``piece`` gets for each (H, W, 3) uint8 BGR frame, made one at a time.

    dense_a: float32[1, 3, H', W'], the frame as the detector feeds it (RGB in [0, 1],
    resized, normalized and padded by the model's own transform, as ``Detector.preprocess``);
    dense_b: float32[R, C, 7, 7], the fp32 model's RoI-pooled features of its own proposals.
    """
    model = loaded.module.eval()
    device = next(model.parameters()).device
    with torch.inference_mode():
        for frame in frames:
            rgb = torch.from_numpy(np.ascontiguousarray(frame)).to(device).permute(2, 0, 1)
            images, _ = model.transform([rgb.flip(0).float().div_(255)])
            if piece == "dense_a":
                yield images.tensors.float().cpu().numpy()
                continue
            features = model.backbone(images.tensors)
            proposals, _ = model.rpn(images, features)
            pooled = model.roi_heads.box_roi_pool(features, proposals, images.image_sizes)
            yield pooled.float().cpu().numpy()


def _reader(name: str, arrays: Iterator[np.ndarray]):
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        """Feeds ONNX Runtime's calibrator one input at a time."""

        def get_next(self) -> dict | None:
            x = next(arrays, None)
            return None if x is None else {name: x}

    return Reader()

