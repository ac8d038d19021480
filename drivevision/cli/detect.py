"""``drivevision detect INPUT [OUTPUT]``: files in; annotated video, images and detections out."""

from __future__ import annotations

import argparse
import contextlib
import sys
from contextlib import suppress
from pathlib import Path

from drivevision.cli.exits import EXIT_INPUT_DAMAGED, EXIT_INTERRUPTED, undo_on_quit
from drivevision.cli.help import add_command
from drivevision.cli.options import (
    add_detector_args,
    add_style_args,
    check_detector_args,
    check_detector_cost,
    detector_config,
    draw_style,
    image_fps,
    quiet_opencv,
    score_threshold,
    takes_fps,
    video_preset_arg,
)
from drivevision.cli.outputs import check_outputs, new_folder, writes_stdout
from drivevision.cli.times import add_range_args, refuse_range, time_range
from drivevision.cli.tracking import add_track_args, check_track_args, track_stages
from drivevision.io import limits
from drivevision.io.uri import display_uri
from drivevision.labels import counted

RUNS = Path("runs") / "detect"


def add_parser(commands) -> None:
    """Register ``detect`` on the ``drivevision`` sub-command parsers."""
    detect = add_command(
        commands, "detect", summary="detect objects in a video, image or folder",
        description="Detect objects in a video file, an image or a folder of images; write "
                    "the annotated video or images and the detections.\nWith no output "
                    f"option the results go to a new folder {RUNS}/NAME/.",
        examples=f"""
drivevision detect dashcam.mp4                    # -> {RUNS}/dashcam/dashcam.mp4 + .jsonl
drivevision detect dashcam.mp4 -o out.mp4 --jsonl det.jsonl --classes car,truck
drivevision detect photo.jpg photo_ann.jpg        # an image in, an annotated image out
drivevision detect frames/ annotated/ --conf 0.3  # a folder in, a folder of images out
drivevision detect dashcam.mp4 --yolo dataset/ --crops crops/  # pre-labels, object crops
drivevision detect dashcam.mp4 --frame-stride 5   # detect every 5th frame: about 5x faster
drivevision detect dashcam.mp4 --start 12:25 --end 12:35  # only those 10 s of the recording
drivevision detect assets/sample.mp4 --weights assets/tiny-fpn-synthetic.pt  # offline demo""")
    detect.add_argument("input", help="video file, image file, or folder of images")
    detect.inputs_hint = ("; detect takes one input and an output (a glob such as pics/*.png "
                          "gives several): for many inputs use drivevision batch")
    detect.add_argument("output", nargs="?",
                        help="annotated output, as -o but never an existing file (that is "
                             "more likely a second input, as from a glob of two files)")
    out = detect.add_argument_group("outputs")
    out.add_argument("-o", "--output", dest="output_opt", metavar="PATH",
                     help="annotated video (.mp4 H.264, .mkv, .avi, .mov), image (.jpg, .png, "
                          "...; for an image input) or folder (one image per frame)")
    out.add_argument("--jsonl", metavar="FILE",
                     help="detections, one JSON line per frame ('-': stdout)")
    out.add_argument("--csv", metavar="FILE", help="detections, one CSV row per box ('-': stdout)")
    out.add_argument("--mot", metavar="FILE",
                     help="tracked boxes as MOTChallenge text (needs --track; '-': stdout)")
    out.add_argument("--yolo", metavar="DIR",
                     help="a YOLO dataset of the frames with detections, for training or "
                          "labelling tools: DIR/images/, DIR/labels/ (one .txt per image, class "
                          "ids 0..n-1 over the classes kept), data.yaml, classes.txt")
    out.add_argument("--crops", metavar="DIR",
                     help="each detection cut out of its frame (no margin, unannotated): "
                          "DIR/CLASS/NAME_INDEX.jpg")
    video_preset_arg(out)
    add_style_args(out)
    out.add_argument("--clean", action="store_true",
                     help="remove the part files killed runs left beside the outputs")
    out.add_argument("--no-save", action="store_true",
                     help="write nothing, only print the summary (with no output option the "
                          f"results go to a new folder {RUNS}/NAME/)")
    run = detect.add_argument_group("run")
    run.add_argument("--batch", type=int, default=1, metavar="N", help="frames per detector call")
    run.add_argument("--frame-stride", type=int, default=1, metavar="K",
                     help="detect only frames 0, K, 2K, ... of a video or folder (the others "
                          "are read past, not converted or detected): the outputs keep each "
                          "frame's index and time, the annotated video its length at 1/K of "
                          "the frame rate (default: 1, every frame)")
    add_range_args(run)
    run.add_argument("--fps", type=float,
                     help="frame rate given to image inputs, 0.01 to 1000 (default: 10), and "
                          "to a raw .h264/.h265 stream, which has no frame times (default: the "
                          "rate it states, else 25); a video in a container keeps its own")
    run.add_argument("--max-pixels", metavar="N",
                     help="largest image or frame to decode, e.g. 50000000 or 50M; larger "
                          "ones are skipped unread (default: $DRIVEVISION_MAX_PIXELS, else 50M)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bar or summary")
    add_detector_args(detect, tracked=True)
    add_track_args(detect)
    detect.set_defaults(func=cmd_detect)


def cmd_detect(args: argparse.Namespace) -> int:
    claims = _check_args(args)
    with claims, undo_on_quit(claims.close):  # the outputs are this run's until it ends
        return _detect(args)


def _detect(args: argparse.Namespace) -> int:
    from drivevision.cli.progress import Progress
    from drivevision.io.sources import open_source
    from drivevision.io.uri import parse_uri

    kind = parse_uri(args.input).kind
    if kind != "path":  # a stream may take seconds to answer: what needs none is refused first
        if kind != "http":  # (http may serve a recording, which can stride and seek)
            _refuse_stride_or_range(args)
        check_detector_args(args)
    quiet_opencv()
    source = open_source(args.input, fps=args.fps, max_pixels=args.max_pixels,
                         raw_fps=args.raw_fps)
    if not source.can_stride:  # refused before the model loads
        try:
            _refuse_stride_or_range(args)
        except ValueError:
            source.close()
            raise
    source.keep_every(args.frame_stride)
    try:
        source.keep_range(args.start, args.end)
        if kind == "path":  # torch is imported from here: a file's refusals above are instant
            check_detector_args(args)
        config = detector_config(args)
    except BaseException:
        source.close()
        raise
    from drivevision.detector import Detector
    from drivevision.pipeline.runner import detect_video

    made = _default_outputs(args)
    try:
        with source, Progress(_to_detect(source), quiet=args.quiet) as progress:
            for line in source.about:
                progress.status(f"{source.name}: {line}")
            progress.status(f"loading {config.weights_label}")
            detector = Detector.from_config(config, progress=not args.quiet)
            _check_cost(args, detector, source.frame_count)
            source.frame_check = detector.size_problem
            progress.status(f"{source.name}: {detector.describe()}")
            summary = detect_video(source, args.output, jsonl=args.jsonl, csv=args.csv,
                                   detector=detector, batch=args.batch,
                                   on_result=progress.update, stages=track_stages(args),
                                   mot=args.mot, video_preset=args.video_preset,
                                   yolo=args.yolo, crops=args.crops,
                                   frame_stride=args.frame_stride, style=draw_style(args),
                                   start=args.start, end=args.end)
    except BaseException:
        for folder in made:  # innermost first, each only if nothing was written into it
            with suppress(OSError):
                folder.rmdir()
        raise
    outputs = [args.output, args.jsonl, args.csv, args.mot, args.yolo, args.crops]
    report = sys.stderr if writes_stdout(outputs) else sys.stdout
    if not args.quiet:
        print(summary.format(), file=report)
    for note in summary.notes:
        print(f"drivevision: warning: {note}", file=sys.stderr)
    _report_outputs(args, report, summary.placed)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_INPUT_DAMAGED if source.notes else 0


def _refuse_stride_or_range(args: argparse.Namespace) -> None:
    """ValueError for ``--frame-stride`` or ``--start``/``--end`` given with a live input."""
    if args.frame_stride > 1:
        raise ValueError(f"--frame-stride takes a video file or a folder of images, but "
                         f"{display_uri(args.input)} is a live source, which drops frames by "
                         "itself")
    refuse_range(args, args.input)


def _check_args(args: argparse.Namespace) -> contextlib.ExitStack:
    """Refuse, before any work, outputs that cannot be written, that another run writes or
    that do not fit the input; returns the run's claims on its outputs."""
    from drivevision.io.claims import check_distinct
    from drivevision.io.image_sinks import output_kind

    if args.output and args.output_opt:
        raise ValueError("Give the annotated output once: as OUTPUT or with -o")
    if args.output and Path(args.output).is_file():
        _refuse_positional_file(args.output)
    args.output = args.output or args.output_opt
    if args.batch < 1:
        raise ValueError(f"Expected --batch >= 1, but got {args.batch}")
    if args.frame_stride < 1:
        raise ValueError(f"Expected --frame-stride >= 1 frames, but got {args.frame_stride}")
    time_range(args)
    draw_style(args)
    args.raw_fps = args.fps  # None when not given: a raw stream's own rate
    args.fps = image_fps(args, takes_fps(args.input), raw=True)
    score_threshold(args)
    check_track_args(args)
    args.max_pixels = limits.max_pixels(args.max_pixels)
    if args.mot and not args.track:
        raise ValueError("Expected --track with --mot: a MOT file holds track ids")
    if args.no_save and (args.output or args.jsonl or args.csv or args.mot or args.yolo
                         or args.crops):
        raise ValueError("--no-save writes nothing; leave it out to write the outputs given")
    kind = output_kind(args.output) if args.output else None
    if kind == "image" and not _is_image(args.input):
        raise ValueError(f"An image output ({args.output}) takes one image as input; for a "
                         f"video or folder give a video file (.mp4) or a folder as output")
    given = [("-o" if args.output_opt else "OUTPUT", args.output if kind != "folder" else None),
             ("--jsonl", args.jsonl), ("--csv", args.csv), ("--mot", args.mot)]
    given = [(option, path) for option, path in given if path]
    folders = [(o, p) for o, p in [("-o" if args.output_opt else "OUTPUT",
                                    args.output if kind == "folder" else None),
                                   ("--yolo", args.yolo), ("--crops", args.crops)] if p]
    check_distinct([p for _, p in given + folders], [o for o, _ in given + folders])
    _check_not_in_dataset(given, folders)
    claims = check_outputs([args.input], [p for _, p in given],
                           [args.output] if kind == "video" else [], clean=args.clean,
                           options=[o for o, _ in given], folders=[p for _, p in folders])
    with claims:
        if kind == "folder":
            _check_folder(args.input, Path(args.output), claims, replace=bool(args.output_opt))
            _make_holder(args, claims)
        _check_dataset_folders(args, claims)
        return claims.pop_all()


def _check_not_in_dataset(files: list[tuple[str, str]], folders: list[tuple[str, str]]) -> None:
    """Refuse an output inside a ``--yolo`` or ``--crops`` folder (but a file at its top):
    every file in their subfolders counts as the dataset's, so the next run into it would
    refuse it as holding files no run wrote there."""
    for option, holder in folders:
        if option not in ("--yolo", "--crops"):
            continue
        top = Path(holder).resolve()
        for other, path in files + folders:
            parents = Path(path).resolve().parents  # a file may sit at the top, no deeper
            depth = 1 if (other, path) in files else 0
            if other != option and top in parents[depth:]:
                raise ValueError(f"{other} {path} is inside {option} {holder}, whose subfolders "
                                 "hold only its own files: give it a place beside it")


def _refuse_positional_file(output: str) -> None:
    """A second name that is an existing file is more likely a second input (``detect
    pics/*.png`` on two files) than an output to replace: never overwrite it unasked."""
    raise ValueError(f"Refusing to overwrite {output}, which exists: detect takes one input "
                     "(for many use drivevision batch) and its second name is the output; to "
                     f"replace {output} on purpose give -o {output}")


def _to_detect(source) -> int | None:
    """How many frames of ``source`` its time range and frame stride keep, when its frame
    count (or the range's end) is known: the multiples of the stride in the range."""
    (first, stop), stride = source.range_indices(), source.frame_stride
    return None if stop is None else max(0, -(-stop // stride) - -(-first // stride))


def _check_cost(args: argparse.Namespace, detector, frames: int | None) -> None:
    """Refuse, before the first frame, detector calls that would not fit in memory."""
    batch = min(args.batch, frames or args.batch)
    check_detector_cost(detector, batch, f"--batch {args.batch}" if args.batch > 1 else None)


def _is_image(path: str) -> bool:
    from drivevision.io.images import IMAGE_SUFFIXES

    return Path(path).suffix.lower() in IMAGE_SUFFIXES and Path(path).is_file()


def _check_folder(input_path: str, folder: Path, claims: contextlib.ExitStack, *,
                  replace: bool) -> None:
    """Refuse a folder output that cannot be made, is the input, that another run writes
    into (else it is claimed into ``claims``), or holds images that are not an earlier
    run's; an earlier run's are replaced only when asked (``replace``: -o)."""
    from drivevision.io.claims import claim_folder
    from drivevision.io.image_sinks import IMAGE_FOLDER
    from drivevision.io.recorded import check_folder_output

    check_folder_output("Output", folder)
    if Path(input_path).exists() and Path(input_path).resolve() == folder.resolve():
        raise ValueError(f"The output folder is the input folder ({folder}); refusing to "
                         "overwrite its images")
    claims.enter_context(claim_folder(folder))  # before its images: they may be being written
    earlier = check_folder_output("Output", folder, IMAGE_FOLDER)
    if earlier and not replace:
        raise ValueError(f"Refusing to write into {folder}, which holds "
                         f"{counted(len(earlier), 'image')} "
                         "of an earlier run: the two runs would mix; to replace them on "
                         f"purpose give -o {folder}, or choose a new folder")


def _make_holder(args: argparse.Namespace, claims: contextlib.ExitStack) -> None:
    """Make a new -o folder now where --yolo or --crops go into it, as the run would."""
    folder = Path(args.output).resolve()
    if not folder.exists() and folder in (Path(p).resolve().parent for p in
                                          (args.yolo, args.crops) if p):
        folder.mkdir()  # their checks need it; gone again at the end if still empty
        claims.callback(lambda: folder.is_dir() and not any(folder.iterdir()) and folder.rmdir())


def _check_dataset_folders(args: argparse.Namespace, claims: contextlib.ExitStack) -> None:
    """Refuse ``--yolo`` and ``--crops`` folders that cannot be made, are the input, hold
    files no run wrote, or that another run writes into (else they are claimed into
    ``claims``); and a folder of images two of which would share a file name there."""
    from drivevision.io.claims import check_not_input, claim_folder
    from drivevision.io.dataset_sinks import CROPS_FOLDER, YOLO_FOLDER, frame_stems
    from drivevision.io.recorded import check_folder_output

    for option, folder, layout in (("--yolo", args.yolo, YOLO_FOLDER),
                                   ("--crops", args.crops, CROPS_FOLDER)):
        if not folder:
            continue
        check_folder_output(option, folder)
        check_not_input([args.input], [folder])
        claims.enter_context(claim_folder(folder))  # before its files: they may be being written
        check_folder_output(option, folder, layout)
    if (args.yolo or args.crops) and Path(args.input).is_dir():
        frame_stems(_image_names(Path(args.input)))


def _image_names(folder: Path) -> list[str]:
    from drivevision.io.images import folder_images

    return sorted(p.name for p in folder_images(folder))


def _default_outputs(args: argparse.Namespace) -> list[Path]:
    """With no output option (and no --no-save): a new folder ``runs/detect/NAME`` (NAME,
    NAME2, NAME3, ...: never one that exists) with the annotated video, image or images and
    the detections as JSONL. Returns the folders made (``runs`` and ``runs/detect`` where they
    were not there), innermost first, for a failed run to remove."""
    if (args.no_save or args.output or args.jsonl or args.csv or args.mot or args.yolo
            or args.crops):
        return []
    path = Path(args.input)
    stem = path.stem if path.exists() else "stream"
    parents = [p for p in (RUNS, RUNS.parent) if not p.is_dir()]
    folder = new_folder(RUNS, stem)
    if path.is_dir():
        args.output = str(folder)
    elif _is_image(args.input):
        args.output = str(folder / path.name)
    else:
        args.output = str(folder / f"{stem}.mp4")
    args.jsonl = str(folder / f"{stem}.jsonl")
    return [folder, *parents]


def _report_outputs(args: argparse.Namespace, report, placed: dict) -> None:
    """``wrote PATH`` for each output, naming where it went when that is another name (an
    interrupted run beside a file it keeps)."""
    for path in (args.output, args.jsonl, args.csv, args.mot, args.yolo, args.crops):
        if path and not args.quiet:
            print(f"wrote {placed.get(Path(path), path)}", file=report)
