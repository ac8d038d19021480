"""What every command shares: the detector options and their checks, the drawing options."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from drivevision.config import (
    CALIB_FRAMES,
    DEFAULT_MODEL,
    DEFAULT_VIDEO_PRESET,
    DEVICES,
    ENGINES,
    MAX_CALIB_FRAMES,
    MAX_LINE_WIDTH,
    MODELS,
    PRECISIONS,
    VIDEO_PRESETS,
    DetectorConfig,
    DrawStyle,
    check_int8_calib,
)

# With --track and no --conf the detector keeps boxes down to this score: ByteTrack's second
# round matches them to tracks the strong boxes left unmatched (as Ultralytics' track does).
TRACK_CONF = 0.1


def add_detector_args(parser: argparse.ArgumentParser, *, conf: float = 0.5,
                      several: bool = False, tracked: bool = False) -> None:
    """Detector options shared by every command (and the viewer), so command lines carry over.

    ``conf`` is the default score threshold (``TRACK_CONF`` with ``--track`` where the
    command has it: ``tracked``); ``several`` takes comma lists in ``--engines`` and
    ``--precision`` (a command that runs each in turn) instead of ``--engine``.
    """
    g = parser.add_argument_group("detector")
    g.add_argument("--model", choices=MODELS,
                   help=f"Faster R-CNN architecture: r50-fpn-v2, r50-fpn (v1), or tiny-fpn (a "
                        "small one for tests and the demo model, no published weights) "
                        f"(default: {DEFAULT_MODEL}, or the one a checkpoint names, which wins)")
    g.add_argument("--weights", metavar="PATH",
                   help="local checkpoint; default: torchvision's COCO weights (downloaded once)")
    engines = ("how the dense parts run: torch (eager PyTorch), onnx (ONNX Runtime), "
               "compiled (Inductor: built once per frame size and cached on the CPU, "
               "torch.compile on CUDA), tensorrt")
    if several:
        add_alias(g, "--engine", g.add_argument(
            "--engines", default="torch",
            help=f"comma list, each run in turn: {engines} (default: %(default)s)"))
    else:
        add_alias(g, "--engines", g.add_argument(
            "--engine", choices=ENGINES, type=one_value(parser, "engine"),
            help=f"{engines}; auto picks one and says why (default: torch; auto with "
                 "--precision int8)"))
    g.add_argument("--device", default="auto", help=f"{'|'.join(DEVICES)}|cuda:N (default: auto)")
    precision = ("fp16 needs CUDA; bf16 is fast on CPUs with AMX/AVX512-BF16; int8 (onnx or "
                 "compiled engine, CPU) needs --calib; auto: fp16 on CUDA, bf16 on a CPU with "
                 "bf16 hardware, else fp32 (the line after 'loading' says which)")
    if several:
        add_alias(g, "--precisions", g.add_argument(
            "--precision", default="fp32",
            help=f"comma list of {', '.join(PRECISIONS)}, each run with every engine; "
                 f"{precision}"))
    else:
        g.add_argument("--precision", choices=PRECISIONS, default="auto",
                       type=one_value(parser, "precision"),
                       help=f"{precision} (default: %(default)s)")
    g.add_argument("--calib", metavar="CLIP_OR_FOLDER",
                   help="int8: a video or folder of images from your own cameras to calibrate "
                        "on (evenly spaced frames; the calibrated model is cached)")
    calib_frames_arg(g)
    with_track = f"; {TRACK_CONF} with --track, whose second round needs the weak boxes"
    g.add_argument("--conf", type=float, metavar="SCORE",
                   help=f"score threshold (default: {conf}{with_track if tracked else ''})")
    parser.set_defaults(default_conf=conf)
    g.add_argument("--classes",
                   help="'driving' (person, bicycle, car, motorcycle, bus, truck, traffic light, "
                        "stop sign), 'all', or a comma list of names (any case) or ids "
                        "(default: driving for a COCO model, all for a model with its own "
                        "classes)")
    g.add_argument("--min-size", type=int, metavar="PX",
                   help="resize the short side to this (model default 800); smaller is faster")
    g.add_argument("--max-size", type=int, metavar="PX", help="cap on the long side (default 1333)")
    g.add_argument("--proposals", type=int, metavar="N",
                   help="RPN proposals per frame (default 1000); fewer is faster on a CPU "
                        "(300: 2x with the v2 model at 360 px), at a small cost in recall")
    g.add_argument("--iou", type=float, metavar="IOU",
                   help="NMS threshold within a class: of a class's boxes overlapping by more "
                        "than this, the best is kept (default: 0.5, torchvision's); higher "
                        "keeps more of a crowd's overlapping objects, and more duplicates")
    g.add_argument("--max-det", type=int, metavar="N",
                   help="most detections per frame, the best first (default: 100)")
    g.add_argument("--agnostic-nms", action="store_true",
                   help="one box per object: where boxes of different classes overlap (IoU > "
                        "0.7), keep the highest-scoring, e.g. a vehicle found both as car and "
                        "as truck (the model's own NMS is per class)")


def one_value(parser: argparse.ArgumentParser, what: str):
    """An argparse ``type`` that refuses a comma list where ``parser``'s command runs one
    ``what`` (engine, precision), naming the commands that compare several."""
    command = parser.prog.split()[-1]

    def parse(value: str) -> str:
        if "," in value:
            raise argparse.ArgumentTypeError(
                f"{command} runs one {what}, but got {value!r}; bench and eval compare "
                f"several (drivevision bench --engines torch,onnx --precision fp32,bf16)")
        return value
    parse.__name__ = what  # argparse names the type in some of its errors
    return parse


def add_alias(group, alias: str, action: argparse.Action) -> None:
    """``alias``, the spelling another command gives ``action``'s option (``--engines`` where
    this one has ``--engine``), as another name for it, left out of the help: the help shows
    one name."""
    group.add_argument(alias, dest=action.dest, type=action.type, choices=action.choices,
                       metavar=action.metavar, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def score_threshold(args: argparse.Namespace) -> float:
    """``--conf``, else the command's default (lower with ``--track``); ValueError, naming
    the option, for a score out of [0, 1]."""
    if args.conf is not None:
        if not 0 <= args.conf <= 1:  # also NaN
            raise ValueError(f"Expected --conf in [0, 1], but got {args.conf:g}")
        return args.conf
    if getattr(args, "track", None):
        return min(args.default_conf, TRACK_CONF)
    return args.default_conf


# The frame rate given to image inputs when --fps is left out.
IMAGE_FPS = 10.0


def image_fps(args: argparse.Namespace, images: bool, raw: bool = False) -> float:
    """``--fps`` (ValueError for a rate images cannot be spaced by), else ``IMAGE_FPS``; one
    warning line when it is given but no input takes it (``images``): an image or a folder
    of images, and with ``raw`` (a command that times raw streams by it, ``takes_fps``) a raw
    video stream."""
    from drivevision.io import limits

    if args.fps is None:
        return IMAGE_FPS
    limits.check_fps(args.fps)
    if not images:
        takes = "image inputs and raw video streams (.h264, .h265)" if raw else "image inputs"
        print(f"drivevision: warning: --fps applies to {takes} only; a video or stream "
              "keeps its own frame rate", file=sys.stderr)
    return args.fps


def takes_fps(uri: str) -> bool:
    """Whether ``uri`` takes ``--fps`` in detect and live: a folder, an image, or a raw video
    stream by its name (``.h264``: no frame times of its own)."""
    from drivevision.io.containers import RAW_SUFFIXES
    from drivevision.io.images import IMAGE_SUFFIXES

    suffix = Path(uri).suffix.lower()
    return Path(uri).is_dir() or suffix in IMAGE_SUFFIXES or suffix in RAW_SUFFIXES


def check_detector_cost(detector, batch: int, what: str | None = None) -> None:
    """Refuse, before the first frame, detector calls of ``batch`` frames that would not fit
    in memory at the detector's resize rule; ``what`` names the option that asked for the
    batch (None: the resize rule is named)."""
    from drivevision.io import limits

    transform = detector.model.transform
    min_size, max_size = transform.min_size[-1], transform.max_size
    size = limits.model_input_bound(min_size, max_size)
    per_pixel = limits.BYTES_PER_INPUT_PIXEL.get(detector.loaded.name, 600)
    limits.check_detector_call(batch, size, per_pixel,
                               what or f"--min-size {min_size} --max-size {max_size}")


def check_detector_args(args: argparse.Namespace, *, precision: bool = True,
                        weights: bool = True) -> None:
    """Refuse, before the model loads, what the detector would refuse only once built: a
    device this machine lacks (``--device cuda`` without a GPU), ``--precision`` the device
    or ``--engine`` cannot run (fp16 on a CPU, tensorrt without CUDA, int8 on an engine
    without it, a ``--calib`` that is not there; ``precision`` False for a command that
    skips such a setting and runs the others), ``--classes`` the model lacks, and
    ``--iou``/``--max-det`` out of range; ``weights`` False leaves ``check_weights`` to the
    command, to call before the load."""
    from drivevision.cli.checkpoint import check_classes, check_weights
    from drivevision.engines import hardware

    if args.iou is not None and not 0.0 < args.iou <= 1.0:
        raise ValueError(f"Expected --iou in (0, 1], but got {args.iou}")
    if args.max_det is not None and args.max_det < 1:
        raise ValueError(f"Expected --max-det >= 1, but got {args.max_det}")

    kind = hardware.device_kind(args.device)
    if precision:
        hardware.check_precision(args.precision, kind, detector_config(args).engine)
        _check_engine(args, kind)
    if weights:  # what load_model would refuse or warn of, said with the options
        check_weights(args)
    check_classes(args.classes, args.weights)  # the model's names, read without building it


def _check_engine(args: argparse.Namespace, kind: str) -> None:
    """ValueError for the one ``--engine`` and ``--precision`` given, as the engine would
    raise it once the model is built; for int8 also a ``--calib`` that is not there."""
    from drivevision.engines import check_int8_engine

    engine = detector_config(args).engine
    warn_unused_calib(args)
    if args.precision == "int8":
        from drivevision.io.calibration import check_calibration

        check_int8_engine(engine)
        check_calibration(args.calib)  # present: DetectorConfig refused int8 without it
        if engine == "compiled":  # the engine would name the keyword
            from drivevision.engines.pt2e import check_torchao

            check_torchao("--engine")
    if engine == "tensorrt" and kind != "cuda":
        raise ValueError(f"Expected a CUDA device for the tensorrt engine, but got {kind}")
    if engine == "tensorrt":  # the engine would name the keyword
        from drivevision.engines.trt_build import gpu_problem

        problem = gpu_problem("cuda" if args.device == "auto" else args.device)
        if problem:
            raise ValueError(problem)
    if engine == "onnx" and args.precision != "auto":
        from drivevision.engines.onnx import check_precision

        check_precision(args.precision, kind)
    check_cache([(engine, args.precision)], kind)


def check_cache(settings, kind: str) -> None:
    """ValueError for an engine cache (``$DRIVEVISION_CACHE``) that the (engine, precision)
    ``settings`` on a device of ``kind`` would keep builds in but cannot use, said before
    the model loads, not once it has. Nothing is checked for what keeps nothing there:
    torch, compiled on CUDA (torch.compile), what cannot run (tensorrt without CUDA, int8
    on CUDA or on torch), and auto but for int8 (its pick is settled as the model loads)."""
    kinds = []
    for engine, precision in settings:
        kinds += {"onnx": ["onnx"], "compiled": ["compiled"] if kind == "cpu" else [],
                  "tensorrt": ["onnx", "tensorrt"] if kind == "cuda" else []}.get(engine, [])
        if precision == "int8" and kind == "cpu" and engine in ("auto", "onnx", "compiled"):
            kinds.append("int8")
    if kinds:
        from drivevision.engines.cache import check_usable

        check_usable(list(dict.fromkeys(kinds)))


def detector_config(args: argparse.Namespace) -> DetectorConfig:
    """The command's detector settings; ValueError naming the option (``--conf``,
    ``--calib``, ``--calib-frames``) where DetectorConfig would name its keyword."""
    engine = args.engine or ("auto" if args.precision == "int8" else "torch")
    conf = score_threshold(args)
    calib, calib_frames = getattr(args, "calib", None), getattr(args, "calib_frames", CALIB_FRAMES)
    check_int8_calib(args.precision, calib, calib_frames)
    return DetectorConfig(model=args.model, weights=args.weights, engine=engine,
                          device=args.device, precision=args.precision, conf=conf,
                          classes=args.classes, min_size=args.min_size, max_size=args.max_size,
                          proposals=args.proposals, iou=args.iou, max_det=args.max_det,
                          agnostic_nms=args.agnostic_nms, calib=calib, calib_frames=calib_frames)


def warn_unused_calib(args: argparse.Namespace) -> None:
    """One warning line for ``--calib`` without ``--precision int8``, which it does not
    turn on (as trtexec's ``--calib`` without ``--int8``)."""
    if args.calib and args.precision != "int8":
        print("drivevision: warning: --calib is only used with --precision int8; without it "
              "nothing is calibrated or quantized", file=sys.stderr)


def calib_frames_arg(group) -> None:
    """``--calib-frames N``, for every command that takes ``--calib``."""
    group.add_argument("--calib-frames", type=int, default=CALIB_FRAMES, metavar="N",
                       help=f"int8: how many frames of --calib to calibrate on (default: "
                            f"%(default)s; up to {MAX_CALIB_FRAMES}; more covers more "
                            "conditions, each takes one run of the fp32 model)")


def video_preset_arg(group) -> None:
    """``--video-preset``: x264's speed/size trade for the annotated video."""
    group.add_argument("--video-preset", choices=VIDEO_PRESETS, default=DEFAULT_VIDEO_PRESET,
                       metavar="PRESET",
                       help="x264 preset of the annotated video: ultrafast, superfast, "
                            "veryfast, faster, fast, medium, slow, slower, veryslow; faster "
                            "ones take less CPU from a CPU detector for larger files "
                            "(ultrafast: about half the encoding CPU, twice the size) "
                            f"(default: {DEFAULT_VIDEO_PRESET})")


def add_style_args(group) -> None:
    """How the annotated outputs draw the boxes (Ultralytics' ``line_width``,
    ``show_labels``, ``show_conf``); ``draw_style`` reads them."""
    group.add_argument("--line-width", type=int, metavar="PX",
                       help=f"box line width in pixels, 1 to {MAX_LINE_WIDTH} (default: scaled "
                            "to the frame, 2 at 720p)")
    group.add_argument("--hide-labels", action="store_true",
                       help="draw the boxes only: no class, score or track id")
    group.add_argument("--hide-conf", action="store_true",
                       help="labels without the score (\"car\", \"#7 car\")")


def draw_style(args: argparse.Namespace) -> DrawStyle:
    """The ``DrawStyle`` of ``add_style_args``' options (ValueError, naming the option, for
    a bad width)."""
    width = args.line_width
    if width is not None and not 1 <= width <= MAX_LINE_WIDTH:
        raise ValueError(f"Expected --line-width of 1 to {MAX_LINE_WIDTH} pixels, but got "
                         f"{width}")
    return DrawStyle(labels=not args.hide_labels, scores=not args.hide_conf,
                     line_width=args.line_width)


def model_args(parser: argparse.ArgumentParser) -> None:
    """``--model`` and ``--weights`` alone, for commands that build no detector."""
    parser.add_argument("--model", choices=MODELS,
                        help=f"Faster R-CNN architecture (default: {DEFAULT_MODEL}, or the one "
                             "a checkpoint names)")
    parser.add_argument("--weights", metavar="PATH",
                        help="local checkpoint; default: torchvision's COCO weights")


def csv_list(text: str) -> list[str]:
    return [v for v in text.split(",") if v.strip()]


def int_list(text: str) -> list[int]:
    """An argparse ``type`` for a comma list of whole numbers of 1 or more (``--batch
    1,2,4``), so a bad one is refused naming the option, as argparse's own types are."""
    try:
        values = [int(v) for v in csv_list(text)]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected whole numbers >= 1 separated by commas "
                                         f"(1,2,4), but got {text!r}")
    return values


def at_least(minimum: int):
    """An argparse ``type`` for a whole number of ``minimum`` or more (``--iters``), so a
    smaller one is refused as it is parsed, naming the option, before anything loads."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number >= {minimum}, but got "
                                             f"{text!r}")
        return value
    parse.__name__ = f"whole number >= {minimum}"  # argparse names the type in some errors
    return parse


def input_size(text: str) -> tuple[int, int]:
    """An argparse ``type`` for ``--input-size HxW``: (H, W), each at least 32 and a multiple
    of 32 (the size the detector pads frames to; another would run padded to the next)."""
    from drivevision.engines.sizes import check_padded_size, parse_size

    try:
        size = parse_size(text)
        check_padded_size(size)
    except ValueError as e:
        message = str(e)
        raise argparse.ArgumentTypeError(message[0].lower() + message[1:]) from None
    return size


def quiet_opencv() -> None:
    """Our own lines say what failed (a damaged file, a lost stream), so OpenCV's warnings
    and FFmpeg's per-packet errors (OpenCV's FFmpeg) would only bury them; a user's own
    setting wins. PyAV's FFmpeg logging is left as PyAV starts it, off: any level would
    route FFmpeg's messages through a Python callback, which a decoding thread can block on
    while a close or seek holds the GIL waiting for that thread (a hang; PyAV's docs warn
    of it with threads)."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    logging_ = getattr(cv2, "utils", None) and getattr(cv2.utils, "logging", None)
    if logging_ is not None:
        logging_.setLogLevel(logging_.LOG_LEVEL_ERROR)
