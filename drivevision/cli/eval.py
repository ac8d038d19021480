"""``drivevision eval``: score detection files against ground truth, or run the detector on
a labelled input with several engines and precisions and score and time each."""

from __future__ import annotations

import argparse
import difflib
import json
import math
import os
import sys
from pathlib import Path

from drivevision.cli.exits import EXIT_INPUT_DAMAGED, EXIT_INTERRUPTED, EXIT_OK
from drivevision.cli.help import add_command
from drivevision.cli.options import (
    add_detector_args,
    at_least,
    check_cache,
    check_detector_args,
    csv_list,
)
from drivevision.cli.tracking import add_track_args, check_track_args
from drivevision.labels import counted

EVAL_CONF = 0.05  # scores this low still count for AP (torchvision's own box_score_thresh)
# A --pred file whose lowest score is at least this was written with a higher threshold than
# EVAL_CONF: the boxes it left out would have added to AP (on the sample with the demo model,
# AP 0.266 at --conf 0.25 and 0.257 at detect's default 0.5, against 0.268 at 0.05).
UNDERSTATED_FROM = 0.2
# options that only shape a detector run on INPUT: a --pred file is scored as it was written
RUN_ONLY = ("model", "weights", "engines", "device", "precision", "calib", "calib_frames",
            "conf", "classes", "min_size", "max_size", "proposals", "warmup", "track",
            "track_thresh", "track_buffer", "match_thresh", "frame_stride", "agnostic_nms",
            "iou", "max_det")


def add_parser(commands) -> None:
    """Register ``eval`` on the ``drivevision`` sub-command parsers."""
    p = add_command(
        commands, "eval",
        summary="score detections against ground truth (COCO AP, HOTA, MOTA, IDF1)",
        description="Score detections against ground truth with pycocotools (COCO box AP, "
                    "AP50, AP75, AP by size, AR@100, AP per class) and, when both carry track "
                    "ids, TrackEval (HOTA) and motmetrics (MOTA, IDF1, ID switches). Either "
                    "score a detection file (--pred), or run the detector on the labelled "
                    "INPUT with each engine and precision and print their AP, ms/frame and AP "
                    "difference to torch fp32, all measured in this one run. With --track, the "
                    "tracker runs on those detections and its tracks are scored too, on every "
                    "frame or, with --frame-stride K, on every K-th frame: what live shows "
                    "with a detector that keeps up with 1/K of the camera's frame rate.",
        examples="""
drivevision eval --gt assets/sample_gt.jsonl --pred det.jsonl     # the sample
drivevision eval --gt gt.json --pred det.jsonl --class-map vehicle=car --json
drivevision eval --gt gt.jsonl clip.mp4 --weights demo.pt --engines onnx
drivevision eval --gt gt.jsonl clip.mp4 --weights demo.pt --precision bf16
drivevision eval --gt gt.jsonl clip.mp4 --track --frame-stride 3  # tracks
drivevision eval --gt MOT17-02/gt/gt.txt --pred tracks.jsonl --report report/
drivevision eval --gt dataset/ dataset/images/ --weights demo.pt  # YOLO""")
    p.add_argument("input", nargs="?",
                   help="video or folder of images to run the detector on (instead of --pred)")
    g = p.add_argument_group("what to score")
    g.add_argument("--gt", required=True, metavar="PATH",
                   help="ground truth: this project's JSONL (one frame a line), COCO .json "
                        "(images are frames by frame_index, else by file name in natural "
                        "order; a folder, as INPUT or --pred, is matched to them by file name), "
                        "MOTChallenge gt.txt (one class), KITTI tracking labels (.txt; "
                        "DontCare ignored), KITTI object labels (a label_2/ folder, a .txt an "
                        "image) and BDD100K labels (.json, a list of frames), matched to "
                        "images by file name as COCO's, or a YOLO dataset folder "
                        "(data.yaml or classes.txt, images/, labels/; predictions matched to "
                        "its images by file name)")
    g.add_argument("--pred", metavar="FILE",
                   help="detections as JSONL, as detect --jsonl writes, scored as the file "
                        "holds them, on the frames it has a line for (detect --frame-stride K "
                        "writes every K-th), or COCO results .json against a COCO --gt: the "
                        "detector options (--engines, --precision, "
                        "--conf, --classes, ...) apply only to INPUT and are refused with --pred")
    g.add_argument("--class-map", metavar="GT=MODEL,...",
                   help="ground-truth class = model class pairs, for names that differ "
                        "(names match in any case without it)")
    g.add_argument("--kitti-difficulty", choices=("easy", "moderate", "hard", "all"),
                   help="with KITTI object labels: ignore, as KITTI's benchmark does, the "
                        "objects its level leaves out (too short, occluded or truncated; Van "
                        "for Car, Person_sitting for Pedestrian): neither missed nor false "
                        "positives when found, and detections shorter than its height that "
                        "find nothing (default: moderate, the level KITTI ranks by; all: "
                        "every object and detection counts). AP stays COCO's, not KITTI's")
    g.add_argument("--allow-unlabelled", action="store_true",
                   help="leave out predicted frames the ground truth lacks (default: an error)")
    out = p.add_argument_group("output")
    out.add_argument("--json", action="store_true",
                     help="print the metrics as one JSON object (0..1) instead of tables")
    out.add_argument("--report", metavar="DIR",
                     help="write metrics.json, summary.md and precision-recall curves (PNG) "
                          "into DIR (one folder per engine and precision with INPUT); an "
                          "earlier run's report there is replaced, a folder holding report "
                          "files no run wrote is refused")
    out.add_argument("--warmup", type=at_least(0), default=2, metavar="N",
                     help="untimed detector calls on the first frame before timing (INPUT)")
    add_detector_args(p, conf=EVAL_CONF, several=True)
    tracking = add_track_args(p)
    tracking.add_argument("--frame-stride", type=int, default=1, metavar="K",
                          help="with --track: detector and tracker see only frames 0, K, 2K, "
                               "... of INPUT (by index, as detect --frame-stride picks them), as "
                               "live does with a detector that needs K frames' time (it drops "
                               "the frames between); scored on those frames (default: 1, every "
                               "frame)")
    p.set_defaults(func=cmd_eval, run_only_defaults={d: p.get_default(d) for d in RUN_ONLY})


def cmd_eval(args: argparse.Namespace) -> int:
    from drivevision.cli.eval_report import check_report
    from drivevision.evaluation import parse_class_map, read_truth

    if (args.pred is None) == (args.input is None):
        raise ValueError("Expected --pred FILE or an INPUT to run the detector on (one of them)")
    if args.pred is not None:
        _refuse_run_options(args)
    else:  # a precision the device lacks is skipped with its reason, as torch fp32 runs
        _check_settings(args)
        check_detector_args(args, precision=False, weights=False)  # --weights: as it loads
        _check_cache(args)
        _check_calib(args)
        _check_tracking(args)
        if not os.path.exists(args.input) and "://" not in args.input:
            raise ValueError(f"No such file or directory: {args.input}")
    with check_report(args):  # the run's claim on --report, until it is written
        class_map = parse_class_map(args.class_map)
        truth = read_truth(args.gt, kitti_difficulty=args.kitti_difficulty)
        if truth.match_files and args.frame_stride > 1:
            raise ValueError(f"--frame-stride picks frames of a video by index; {args.gt} is "
                             "a dataset, whose images are matched by name: leave it out")
        if args.pred is not None:
            return _score_file(args, truth, class_map)
        return _run_and_score(args, truth, class_map)


def _open_input(uri: str) -> None:
    """Open INPUT once, before any model loads: an empty or damaged file, or a folder with no
    images (a batch's footage folder of videos), is refused at once in one line. A stream is
    opened only when it is read."""
    from drivevision.io.sources import open_source

    if "://" not in uri:
        with open_source(uri):
            pass


def _run_and_score(args: argparse.Namespace, truth, class_map: dict) -> int:
    _open_input(args.input)  # before eval_run imports torch
    from drivevision.cli.checkpoint import check_weights
    from drivevision.cli.eval_run import run_engines

    check_weights(args)  # said with the options; load_model names its keywords
    from drivevision.cli.eval_tables import format_table, write_reports

    result = run_engines(args, truth, class_map,
                         log=lambda m: print(f"drivevision: {m}", file=sys.stderr, flush=True))
    if args.report:
        _write_report(args.report, lambda out: write_reports(out, result))
    table = result.table
    if args.json:  # the table lists the notes; JSON holds them as "notes", and stderr too
        _print_notes(table["notes"])
    print(json.dumps(table) if args.json else format_table(result))
    _report_written(args)
    if result.not_scored:
        return EXIT_INTERRUPTED
    return EXIT_INPUT_DAMAGED if result.damaged else EXIT_OK  # as detect on that input


def _refuse_run_options(args: argparse.Namespace) -> None:
    """Refuse detector options given with --pred: nothing would apply them."""
    given = [f"--{d.replace('_', '-')}" for d, default in args.run_only_defaults.items()
             if getattr(args, d) != default]
    if given:
        verb, them = ("applies", "it") if len(given) == 1 else ("apply", "them")
        raise ValueError(f"{', '.join(given)} {verb} only when eval runs the detector on an "
                         f"INPUT; --pred {args.pred} is scored as it is: leave {them} out (or "
                         "give detect --conf/--classes when writing it)")


def _check_settings(args: argparse.Namespace) -> None:
    """Refuse, before the model loads, an engine or precision that does not exist (a typo):
    a setting that cannot run here is skipped, but only after the torch fp32 reference ran,
    and a misspelt one would never run anywhere."""
    from drivevision.config import ENGINES, PRECISIONS

    for option, names, known in (("--engines", args.engines, ENGINES),
                                 ("--precision", args.precision, PRECISIONS)):
        for name in csv_list(names):
            if name not in known:
                close = difflib.get_close_matches(name, known, n=1)
                hint = f"; did you mean {close[0]}?" if close else ""
                raise ValueError(f"Expected {option} from {', '.join(known)}, but got "
                                 f"{name!r}{hint}")


def _check_cache(args: argparse.Namespace) -> None:
    """Refuse, before the model loads, an engine cache the engines and precisions that run
    here would build in but cannot use (``check_cache``); those skipped (fp16 on a CPU)
    build nothing, so they ask nothing of it."""
    from drivevision.cli.settings import runnable
    from drivevision.engines.hardware import device_kind

    kind = device_kind(args.device)
    settings = [(e, p) for e in csv_list(args.engines) for p in csv_list(args.precision)]
    check_cache(runnable(settings, kind), kind)


def _check_calib(args: argparse.Namespace) -> None:
    """Refuse, before the model loads, int8 that runs here without ``--calib`` footage that
    can be read: found only once torch fp32 (the reference) had run, it stopped the run
    with nothing printed. int8 that cannot run here (on torch) is skipped, and asks none."""
    from drivevision.cli.settings import runnable
    from drivevision.config import NEED_CALIB
    from drivevision.engines.hardware import device_kind

    if "int8" not in csv_list(args.precision) or not runnable(
            [(e, "int8") for e in csv_list(args.engines)], device_kind(args.device)):
        return
    if not args.calib:
        raise ValueError(NEED_CALIB)
    from drivevision.io.calibration import check_calibration

    check_calibration(args.calib)


def _check_tracking(args: argparse.Namespace) -> None:
    """Refuse, before any work, tracker settings out of range and a stride without a
    tracker (it picks the frames the tracker sees)."""
    check_track_args(args)
    if args.frame_stride < 1:
        raise ValueError(f"Expected --frame-stride >= 1 frames, but got {args.frame_stride}")
    if args.frame_stride > 1 and args.track is None:
        raise ValueError("Expected --track with --frame-stride: it sets the frames the tracker "
                         "sees, which runs only with --track")


def _score_file(args: argparse.Namespace, truth, class_map: dict) -> int:
    from drivevision.evaluation import evaluate, read_predictions
    from drivevision.evaluation.coco_results import is_coco_results, read_coco_results
    from drivevision.evaluation.report import summary_markdown, write_report

    predictions = read_coco_results(args.pred, args.gt) if is_coco_results(args.pred) \
        else read_predictions(args.pred)
    result = evaluate(truth, predictions, class_map=class_map,
                      allow_unlabelled=args.allow_unlabelled, covered_only=True)
    _warn_if_thresholded(args.pred, predictions)  # once the file scored: not before an error
    result.notes[:0] = _prediction_notes(args.pred, predictions, class_map)
    if args.json:  # the Markdown on stdout lists the notes; JSON holds them, and stderr too
        _print_notes(result.notes)
    if args.report:
        _write_report(args.report, lambda out: write_report(
            out, result, title=f"{args.pred} against {args.gt}"))
    if args.json:
        print(json.dumps({**result.metrics, "notes": result.notes}))
    else:
        print(summary_markdown(result, f"{args.pred} against {args.gt}"), end="")
    _report_written(args)
    return 0


def _prediction_notes(path: str, predictions, class_map: dict[str, str]) -> list[str]:
    """What the file itself explains of a low AP: it holds no box at all, or a
    ``--class-map`` model class appears nowhere in it (a typo leaves its ground-truth class
    with nothing to match, with no word of why). With INPUT such a class is refused against
    the model's own classes; a file tells only the classes it holds, so here a note."""
    if not predictions.classes:
        return [f"{path} holds no boxes ({counted(len(predictions.frames), 'line')}, none "
                "with a detection), so AP is 0: the wrong file, or one written with a --conf "
                "too high for any box to pass?"]
    notes = []
    for model, gt in class_map.items():
        if model in predictions.classes:
            continue
        close = difflib.get_close_matches(model, predictions.classes, n=3, cutoff=0.6)
        hint = (f"did you mean {' or '.join(close)}?" if close else
                f"its classes: {', '.join(predictions.classes)}")
        notes.append(f"--class-map {gt}={model}: no prediction in {path} is a {model} "
                     f"({hint}), so no box is scored as {gt} by it")
    return notes


def _warn_if_thresholded(path: str, predictions) -> None:
    """One warning line when the file holds no low scores: it was likely written with a
    threshold above ``EVAL_CONF`` (detect's default 0.5), which understates AP. Not for a
    file of tracks: a tracker writes only the boxes that extend a track, so its lowest
    score tells nothing of the threshold it was written with."""
    if predictions.has_tracks:
        return
    scores = [s for frame in predictions.frames.values() if frame.scores is not None
              for s in frame.scores]
    lowest = math.floor(min(scores, default=0.0) * 100) / 100  # "no score under" stays true
    if lowest >= UNDERSTATED_FROM:
        print(f"drivevision: warning: AP is understated: no score in {path} is under "
              f"{lowest:.2f} (eval counts boxes down to {EVAL_CONF:g}; detect keeps 0.5 "
              f"and up by default); {_rewrite_hint(path)}", file=sys.stderr)


def _rewrite_hint(path: str) -> str:
    """How to write ``path`` again at ``EVAL_CONF``: a batch's output by rerunning the batch
    (a file ``detect`` wrote over it would be replaced by that batch's next run, as an
    altered output), any other by ``detect``."""
    from drivevision.batch.manifest import MANIFEST, Manifest

    file = Path(path).resolve()
    for folder in file.parents:
        if (folder / MANIFEST).is_file():
            rel = file.relative_to(folder).as_posix()
            records = Manifest(folder).load().records.values()
            if any(o.get("path") == rel for r in records for o in r.get("outputs", {}).values()):
                return (f"it is an output of the batch in {folder}: rerun that batch with "
                        f"--conf {EVAL_CONF:g} (drivevision batch INPUT... --out {folder} "
                        f"--conf {EVAL_CONF:g})")
            break
    return f"write it with drivevision detect INPUT --conf {EVAL_CONF:g} --jsonl {path}"


def _write_report(folder: str, write) -> None:
    """``write(out)`` the report into ``folder``, replacing an earlier run's (a note says
    when some of its files were removed)."""
    from drivevision.cli.eval_report import report_tree

    with report_tree(folder) as out:
        write(out)
    _print_notes(out.notes)


def _print_notes(notes) -> None:
    for note in notes:
        print(f"drivevision: note: {note}", file=sys.stderr)


def _report_written(args: argparse.Namespace) -> None:
    """``wrote DIR`` after the results, as the other commands say where their outputs went;
    on stderr with --json, so stdout stays one JSON document."""
    if args.report:
        print(f"wrote {args.report}", file=sys.stderr if args.json else sys.stdout)

