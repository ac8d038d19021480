"""The ``drivevision`` command: ``detect`` (files in, annotated video and detections out)."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import warnings
from pathlib import Path

from drivevision import __version__, cli_engines
from drivevision.config import DEVICES, ENGINES, MODELS, PRECISIONS, DetectorConfig
from drivevision.errors import DriveVisionError, StageError

EXIT_INPUT_DAMAGED = 3  # also: a live source was lost for good
EXIT_INTERRUPTED = 130


def add_detector_args(parser: argparse.ArgumentParser) -> None:
    """Detector options shared by every command (and the viewer), so command lines carry over."""
    g = parser.add_argument_group("detector")
    g.add_argument("--model", choices=MODELS, default="r50-fpn-v2",
                   help="Faster R-CNN architecture (default: %(default)s)")
    g.add_argument("--weights", metavar="PATH",
                   help="local checkpoint; default: torchvision's COCO weights (downloaded once)")
    g.add_argument("--engine", choices=ENGINES, default="torch", help="(default: %(default)s)")
    g.add_argument("--device", default="auto", help=f"{'|'.join(DEVICES)}|cuda:N (default: auto)")
    g.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="fp16 needs CUDA; bf16 is fast on CPUs with AMX/AVX512-BF16")
    g.add_argument("--conf", type=float, default=0.5, help="score threshold (default: 0.5)")
    g.add_argument("--classes", default="driving",
                   help="'driving' (person, bicycle, car, motorcycle, bus, truck, traffic light, "
                        "stop sign), 'all', or a comma list of names or ids")
    g.add_argument("--min-size", type=int, metavar="PX",
                   help="resize the short side to this (model default 800); smaller is faster")
    g.add_argument("--max-size", type=int, metavar="PX", help="cap on the long side (default 1333)")
    g.add_argument("--proposals", type=int, metavar="N",
                   help="RPN proposals per frame (default 1000); fewer is faster on a CPU "
                        "(300: 2x with the v2 model at 360 px), at a small cost in recall")


def detector_config(args: argparse.Namespace) -> DetectorConfig:
    return DetectorConfig(model=args.model, weights=args.weights, engine=args.engine,
                          device=args.device, precision=args.precision, conf=args.conf,
                          classes=args.classes, min_size=args.min_size, max_size=args.max_size,
                          proposals=args.proposals)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="drivevision",
                                     description="Object detection on driving video.")
    parser.add_argument("--version", action="version", version=f"drivevision {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    detect = commands.add_parser("detect", help="detect objects in a video, image or folder",
                                 description="Detect objects in a video file, an image or a "
                                             "folder of images.")
    detect.add_argument("input", help="video file, image file, or folder of images")
    detect.add_argument("output", nargs="?", help="annotated video (same as -o)")
    detect.add_argument("-o", "--output", dest="output_opt", metavar="VIDEO",
                        help="annotated video: .mp4 (H.264), .mkv, .avi, .mov")
    detect.add_argument("--jsonl", metavar="FILE", help="detections, one JSON line per frame")
    detect.add_argument("--csv", metavar="FILE", help="detections, one CSV row per box")
    detect.add_argument("--batch", type=int, default=1, help="frames per detector call")
    detect.add_argument("--fps", type=float, default=10.0,
                        help="frame rate given to image inputs (default: 10)")
    detect.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_detector_args(detect)
    detect.set_defaults(func=cmd_detect)
    cli_engines.add_parsers(commands)
    view = commands.add_parser("view", help="watch a video, folder, camera or stream with the "
                               "detections overlaid (the desktop viewer)")
    view.add_argument("source", nargs="?", help="video, image, folder, camera index or URL")
    view.add_argument("--play", action="store_true", help="start playing files at once")
    add_detector_args(view)
    view.set_defaults(func=cmd_view)
    from drivevision.live import add_parser as add_live_parser

    add_live_parser(commands)
    return parser


def cmd_view(args: argparse.Namespace) -> int:
    """Start the viewer (package ``gui``) in this process's place; the library stays Qt-free."""
    import os

    argv = [sys.executable, "-m", "gui", *([args.source] if args.source else [])]
    argv += ["--play"] if args.play else []
    for name in ("model", "weights", "engine", "device", "precision", "conf", "classes",
                 "min_size", "max_size", "proposals"):
        if getattr(args, name) is not None:
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    os.execv(sys.executable, argv)
    return 0  # not reached: execv replaces the process


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.addLevelName(logging.WARNING, "warning")  # lines read like our own messages
    logging.basicConfig(format="drivevision: %(levelname)s: %(message)s", level=logging.WARNING)
    signal.signal(signal.SIGTERM, _terminate)  # `kill` ends a run like Ctrl-C: outputs kept
    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    try:
        return args.func(args)
    except (DriveVisionError, ValueError, TypeError) as e:
        return _fail(_one_line(e), 1 if isinstance(e, StageError) else 2)
    except (OSError, ImportError) as e:  # a full disk, a missing optional library, ...
        return _fail(_one_line(e), 1)
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)


def _terminate(signum, frame) -> None:
    raise KeyboardInterrupt


def _fail(message: str, code: int) -> int:
    print(f"drivevision: error: {message}", file=sys.stderr)
    return code


def _one_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def quiet_opencv() -> None:
    """Our own lines say what failed (a damaged file, a lost stream), so OpenCV's warnings
    and FFmpeg's per-packet errors would only bury them; a user's own setting wins."""
    os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")
    import cv2

    logging_ = getattr(cv2, "utils", None) and getattr(cv2.utils, "logging", None)
    if logging_ is not None:
        logging_.setLogLevel(logging_.LOG_LEVEL_ERROR)


def check_outputs(inputs: list[str], outputs: list[str], videos: list[str]) -> None:
    """Refuse, before the model loads, outputs that would overwrite an input or each other,
    that land in a missing or read-only folder, or videos in a format we cannot write."""
    from drivevision.sinks import VideoSink

    paths = [Path(p).resolve() for p in outputs]
    if len(set(paths)) != len(paths):
        raise ValueError("Two outputs have the same path")
    for path in paths:
        if not path.parent.is_dir():
            raise ValueError(f"Output folder {path.parent} does not exist")
        if path.is_dir() or not os.access(path.parent, os.W_OK):
            raise ValueError(f"Cannot write {path}: a folder, or in a read-only folder")
        if any(Path(s).exists() and Path(s).resolve() == path for s in inputs):
            raise ValueError(f"An output path is an input ({path}); refusing to overwrite it")
    for video in videos:
        if Path(video).suffix.lower() not in VideoSink.SUFFIXES:
            raise ValueError(f"Expected a video file name ending in "
                             f"{', '.join(VideoSink.SUFFIXES)}, but got {video}")


def cmd_detect(args: argparse.Namespace) -> int:
    from drivevision.detector import Detector
    from drivevision.progress import Progress
    from drivevision.runner import detect_video
    from drivevision.sources import open_source

    if args.output and args.output_opt:
        raise ValueError("Give the output video once: as OUTPUT or with -o")
    args.output = args.output or args.output_opt
    check_outputs([args.input], [p for p in (args.output, args.jsonl, args.csv) if p],
                  [args.output] if args.output else [])
    if args.batch < 1:
        raise ValueError(f"Expected --batch >= 1, but got {args.batch}")
    config = detector_config(args)
    quiet_opencv()
    source = open_source(args.input, fps=args.fps)
    with source, Progress(source.frame_count, quiet=args.quiet) as progress:
        progress.status(f"loading {config.weights_label}")
        detector = Detector.from_config(config, progress=not args.quiet)
        reason = getattr(detector.engine, "auto_reason", None)
        progress.status(f"{args.input}: engine {detector.engine.name} on {detector.device}, "
                        f"{detector.precision}" + (f" (auto: {reason})" if reason else ""))
        summary = detect_video(source, args.output, jsonl=args.jsonl, csv=args.csv,
                               detector=detector, batch=args.batch, on_result=progress.update)
    if not args.quiet:
        print(summary.format())
    for note in summary.notes:
        print(f"drivevision: warning: {note}", file=sys.stderr)
    _report_outputs(args)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_INPUT_DAMAGED if source.notes else 0


def _report_outputs(args: argparse.Namespace) -> None:
    for path in (args.output, args.jsonl, args.csv):
        if path and not args.quiet:
            print(f"wrote {path}")


if __name__ == "__main__":
    sys.exit(main())
