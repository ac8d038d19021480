"""``drivevision export``: ONNX pieces or TensorRT engines for deployment."""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from drivevision.cli.exits import EXIT_INTERRUPTED, undo_on_quit
from drivevision.cli.help import add_command
from drivevision.cli.options import (
    at_least,
    calib_frames_arg,
    input_size,
    model_args,
    warn_unused_calib,
)
from drivevision.cli.outputs import clean_or_warn
from drivevision.io.claims import PART_MARK, hold_folder
from drivevision.io.leftovers import leftovers
from drivevision.pipeline import signals


def add_parser(commands) -> None:
    """Register ``export`` on the ``drivevision`` sub-command parsers."""
    export = add_command(
        commands, "export", summary="write ONNX pieces or TensorRT engines for deployment",
        description="Export the two dense pieces (dense_a: backbone+FPN+RPN head, dense_b: box "
                    "head) as ONNX with metadata inside, or build TensorRT engines from them "
                    "(TensorRT needs the target GPU, or TensorRT for RTX).",
        examples="""
drivevision export                                   # ONNX, fp32, 800x1344 -> engines/
drivevision export --precision fp16 --input-size 736x1280 -o deploy/
drivevision export --format tensorrt --precision fp16 --batch 4
drivevision export --precision int8 --calib my_drive.mp4  # Q/DQ ONNX, calibrated""")
    model_args(export)
    g = export.add_argument_group("export")
    g.add_argument("--format", choices=("onnx", "tensorrt"), default="onnx",
                   help="ONNX pieces with metadata, or TensorRT engines built from them")
    g.add_argument("--precision", choices=("fp32", "fp16", "int8"), default="fp32",
                   help="number format of the exported pieces; int8: Q/DQ ONNX (symmetric "
                        "int8, what TensorRT builds int8 engines from) calibrated on --calib")
    g.add_argument("--calib", metavar="CLIP_OR_FOLDER",
                   help="int8: a video or folder of images from your own cameras to calibrate "
                        "on (evenly spaced frames; the calibration is cached)")
    calib_frames_arg(g)
    g.add_argument("--input-size", type=input_size, default=(800, 1344), metavar="HxW",
                   help="padded input size (multiples of 32; default: 800x1344)")
    g.add_argument("--batch", type=at_least(1), default=1, metavar="N",
                   help="most frames per engine call (TensorRT: engines take 1..N)")
    g.add_argument("--exporter", choices=("dynamo", "legacy"), default="dynamo",
                   help="torch.onnx exporter (legacy: TorchScript, faster to export)")
    g.add_argument("-o", "--output-dir", default="engines", metavar="DIR",
                   help="folder for the pieces (made if missing)")
    g.add_argument("--clean", action="store_true",
                   help="remove the staging folders (.export-*) killed exports left in DIR")
    export.set_defaults(func=cmd_export)


def cmd_export(args: argparse.Namespace) -> int:
    _check_output_dir(args.output_dir)  # at once, before torch loads
    from drivevision.cli.checkpoint import check_weights
    from drivevision.engines.export import ExportSpec, export_onnx
    from drivevision.model import load_model

    int8 = args.precision == "int8"
    spec = ExportSpec(precision="fp32" if int8 else args.precision,
                      input_size=args.input_size, batch=args.batch,
                      exporter=args.exporter)
    _check_cost(args, spec.input_size)
    warn_unused_calib(args)
    if args.format == "tensorrt":
        _builder()
    calib = _calibration(args) if int8 else None
    check_weights(args)  # said with the options; load_model names its keywords
    loaded = load_model(args.model, args.weights)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    # Written aside first and moved in at the end: an interrupted or failed export leaves
    # the folder as it was, never a new dense_a beside an old dense_b or a file without
    # its metadata.
    _leftovers(out, args.clean)
    staging = Path(tempfile.mkdtemp(prefix=".export-", dir=out))
    remove = functools.partial(shutil.rmtree, staging, ignore_errors=True)
    held = hold_folder(staging)  # a held staging folder is a running export's, not a leftover
    try:
        with undo_on_quit(remove):
            if args.format == "onnx":
                _export_int8(loaded, staging, spec, calib) if int8 else \
                    export_onnx(loaded, staging, spec)
            else:
                _export_tensorrt(loaded, staging, spec, calib)
        with signals.held() as caught:  # moved in whole: Ctrl-C waits for the last file
            for path in sorted(p for p in staging.rglob("*")
                               if p.is_file() and p.name != PART_MARK):
                target = out / path.relative_to(staging)
                target.parent.mkdir(parents=True, exist_ok=True)
                os.replace(path, target)
                print(f"wrote {target}")
    finally:
        remove()
        if held is not None:
            os.close(held)
    return EXIT_INTERRUPTED if caught else 0


def _check_output_dir(text: str) -> None:
    """Refuse, before any work, a -o that names a file (or a path under one)."""
    path = Path(text)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        where = "is a file" if existing == path else f"is under the file {existing}"
        raise ValueError(f"-o {text} {where}; expected a folder for the pieces (made if "
                         "missing)")


def _leftovers(out: Path, clean: bool) -> None:
    """Name the staging folders killed exports left in ``out``, or remove them (``clean``)."""
    clean_or_warn([p for p in leftovers([out]) if p.is_dir()], clean)


def _check_cost(args: argparse.Namespace, size: tuple[int, int]) -> None:
    """Refuse, before the model loads, an input size whose export (which runs the model on
    an example input of that size) would not fit in memory."""
    from drivevision.io import limits

    per_pixel = limits.BYTES_PER_INPUT_PIXEL.get(args.model or "", 600)
    limits.check_detector_call(args.batch, size, per_pixel, "--input-size {}x{}".format(*size),
                               smaller="give a smaller --input-size")


def _calibration(args: argparse.Namespace):
    """The int8 calibration set of ``--calib`` (checked before the model loads)."""
    from drivevision.config import NEED_CALIB
    from drivevision.detector import calibration_set

    if not args.calib:
        raise ValueError(NEED_CALIB)
    return calibration_set(args.calib, args.calib_frames)


def _export_int8(loaded, out: Path, spec, calib) -> dict[str, Path]:
    """Both pieces as symmetric int8 Q/DQ ONNX (``drivevision.engines.int8``), calibrated on
    ``calib`` (cached), with ``spec``'s input size and batch in their metadata."""
    from drivevision.engines.int8 import cached_int8_onnx, stamp_int8

    out.mkdir(parents=True, exist_ok=True)
    h, w = spec.input_size
    extra = {"drivevision.input_size": f"{h}x{w}", "drivevision.batch": str(spec.batch)}
    pieces = cached_int8_onnx(loaded, calib, "tensorrt", exporter=spec.exporter, progress=True)
    for piece, path in pieces.items():
        stamp_int8(path, out / f"{piece}.onnx", "tensorrt", calib, extra)
    return {piece: out / f"{piece}.onnx" for piece in pieces}


def _builder():
    """The TensorRT module that can build here (checked before the model loads): ImportError
    without one, ValueError for one that needs a GPU on a machine without CUDA."""
    import torch

    from drivevision.engines import trt_build

    trt = trt_build.import_tensorrt()
    if not torch.cuda.is_available() and trt.__name__ != "tensorrt_rtx":
        raise ValueError("Expected a CUDA GPU to build TensorRT engines (only TensorRT for RTX "
                         "builds portable engines without one)")
    return trt


def _export_tensorrt(loaded, out: Path, spec, calib=None) -> dict:
    """Build both engines for ``spec`` into ``out`` (with the export metadata beside them);
    with ``calib``, int8 engines from the calibrated Q/DQ ONNX."""
    import torch

    from drivevision.engines.export import ExportSpec, export_onnx, fpn_levels, metadata
    from drivevision.engines.trt_build import build_serialized, onnx_precision

    trt = _builder()
    precision = "int8" if calib else spec.precision
    if calib:
        onnx = _export_int8(loaded, out / "onnx", spec, calib)
    else:
        onnx = export_onnx(loaded, out / "onnx", ExportSpec(
            onnx_precision(trt, spec.precision), spec.input_size, spec.batch, spec.exporter))
    n, (h, w) = spec.batch, spec.input_size
    rois = n * int(loaded.module.rpn.post_nms_top_n())  # in eval mode: the test-time count
    c = loaded.module.backbone.out_channels
    shapes = {"dense_a": {"images": ((1, 3, h, w), (n, 3, h, w), (n, 3, h, w))},
              "dense_b": {"pooled": ((1, c, 7, 7), (rois, c, 7, 7), (rois, c, 7, 7))}}
    paths = {}
    for piece, path in onnx.items():
        print(f"building TensorRT {piece} ({trt.__name__} {trt.__version__})", file=sys.stderr)
        data = build_serialized(trt, path, shapes[piece], precision, progress=True)
        paths[piece] = out / f"{piece}.engine"
        paths[piece].write_bytes(data)
        meta = metadata(loaded, spec, piece, fpn_levels(loaded))
        meta["drivevision.precision"] = precision
        if calib:
            meta["drivevision.calibration"] = calib.digest
        meta["drivevision.tensorrt"] = f"{trt.__name__} {trt.__version__}"
        meta["drivevision.gpu"] = torch.cuda.get_device_name() if torch.cuda.is_available() \
            else "portable (built without a GPU)"
        paths[piece].with_suffix(".json").write_text(json.dumps(meta, indent=1) + "\n")
    return paths
