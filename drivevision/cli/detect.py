"""``drivevision detect INPUT [OUTPUT]``: files in, annotated video and detections out."""

from __future__ import annotations

import argparse
import sys

from drivevision.cli.exits import EXIT_INPUT_DAMAGED, EXIT_INTERRUPTED
from drivevision.cli.options import (
    add_detector_args,
    check_outputs,
    detector_config,
    quiet_opencv,
    writes_stdout,
)


def add_parser(commands) -> None:
    """Register ``detect`` on the ``drivevision`` sub-command parsers."""
    detect = commands.add_parser("detect", help="detect objects in a video, image or folder",
                                 description="Detect objects in a video file, an image or a "
                                             "folder of images.")
    detect.add_argument("input", help="video file, image file, or folder of images")
    detect.add_argument("output", nargs="?", help="annotated video (same as -o)")
    detect.add_argument("-o", "--output", dest="output_opt", metavar="VIDEO",
                        help="annotated video: .mp4 (H.264), .mkv, .avi, .mov")
    detect.add_argument("--jsonl", metavar="FILE",
                        help="detections, one JSON line per frame ('-': stdout)")
    detect.add_argument("--csv", metavar="FILE",
                        help="detections, one CSV row per box ('-': stdout)")
    detect.add_argument("--clean", action="store_true",
                        help="remove the part files killed runs left beside the outputs")
    detect.add_argument("--batch", type=int, default=1, help="frames per detector call")
    detect.add_argument("--fps", type=float, default=10.0,
                        help="frame rate given to image inputs (default: 10)")
    detect.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_detector_args(detect)
    detect.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> int:
    if args.output and args.output_opt:
        raise ValueError("Give the output video once: as OUTPUT or with -o")
    args.output = args.output or args.output_opt
    if args.batch < 1:
        raise ValueError(f"Expected --batch >= 1, but got {args.batch}")
    with check_outputs([args.input], [p for p in (args.output, args.jsonl, args.csv) if p],
                       [args.output] if args.output else [], clean=args.clean):
        return _detect(args)


def _detect(args: argparse.Namespace) -> int:
    from drivevision.cli.progress import Progress
    from drivevision.detector import Detector
    from drivevision.io.sources import open_source
    from drivevision.pipeline.runner import detect_video

    config = detector_config(args)
    quiet_opencv()
    source = open_source(args.input, fps=args.fps)
    with source, Progress(source.frame_count, quiet=args.quiet) as progress:
        progress.status(f"loading {config.weights_label}")
        detector = Detector.from_config(config, progress=not args.quiet)
        reason = detector.engine.auto_reason
        progress.status(f"{args.input}: engine {detector.engine.name} on {detector.device}, "
                        f"{detector.precision}" + (f" (auto: {reason})" if reason else ""))
        summary = detect_video(source, args.output, jsonl=args.jsonl, csv=args.csv,
                               detector=detector, batch=args.batch, on_result=progress.update)
    report = sys.stderr if writes_stdout([args.output, args.jsonl, args.csv]) else sys.stdout
    if not args.quiet:
        print(summary.format(), file=report)
    for note in summary.notes:
        print(f"drivevision: warning: {note}", file=sys.stderr)
    _report_outputs(args, report)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_INPUT_DAMAGED if source.notes else 0


def _report_outputs(args: argparse.Namespace, report) -> None:
    for path in (args.output, args.jsonl, args.csv):
        if path and not args.quiet:
            print(f"wrote {path}", file=report)
