"""``drivevision detect INPUT [OUTPUT]``: files in, annotated video and detections out."""

from __future__ import annotations

import argparse
import sys

from drivevision.cli.exits import EXIT_INPUT_DAMAGED, EXIT_INTERRUPTED
from drivevision.cli.options import add_detector_args, check_outputs, detector_config, quiet_opencv
from drivevision.cli.tracking import add_track_args, track_stages


def add_parser(commands) -> None:
    """Register ``detect`` on the ``drivevision`` sub-command parsers."""
    detect = commands.add_parser("detect", help="detect objects in a video, image or folder",
                                 description="Detect objects in a video file, an image or a "
                                             "folder of images.")
    detect.add_argument("input", help="video file, image file, or folder of images")
    detect.add_argument("output", nargs="?", help="annotated video (same as -o)")
    detect.add_argument("-o", "--output", dest="output_opt", metavar="VIDEO",
                        help="annotated video: .mp4 (H.264), .mkv, .avi, .mov")
    detect.add_argument("--jsonl", metavar="FILE", help="detections, one JSON line per frame")
    detect.add_argument("--csv", metavar="FILE", help="detections, one CSV row per box")
    detect.add_argument("--mot", metavar="FILE",
                        help="tracked boxes as MOTChallenge text (needs --track)")
    detect.add_argument("--batch", type=int, default=1, help="frames per detector call")
    detect.add_argument("--fps", type=float, default=10.0,
                        help="frame rate given to image inputs (default: 10)")
    detect.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_detector_args(detect)
    add_track_args(detect)
    detect.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> int:
    from drivevision.cli.progress import Progress
    from drivevision.detector import Detector
    from drivevision.io.sources import open_source
    from drivevision.pipeline.runner import detect_video

    if args.output and args.output_opt:
        raise ValueError("Give the output video once: as OUTPUT or with -o")
    args.output = args.output or args.output_opt
    if args.mot and not args.track:
        raise ValueError("Expected --track with --mot: a MOT file holds track ids")
    check_outputs([args.input], [p for p in (args.output, args.jsonl, args.csv, args.mot) if p],
                  [args.output] if args.output else [])
    if args.batch < 1:
        raise ValueError(f"Expected --batch >= 1, but got {args.batch}")
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
                               detector=detector, batch=args.batch, on_result=progress.update,
                               stages=track_stages(args), mot=args.mot)
    if not args.quiet:
        print(summary.format())
    for note in summary.notes:
        print(f"drivevision: warning: {note}", file=sys.stderr)
    _report_outputs(args)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_INPUT_DAMAGED if source.notes else 0


def _report_outputs(args: argparse.Namespace) -> None:
    for path in (args.output, args.jsonl, args.csv, args.mot):
        if path and not args.quiet:
            print(f"wrote {path}")
