"""``drivevision batch INPUTS... --out DIR``: many files in one run, resumable, on local
worker processes or a Ray cluster."""

from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path

from drivevision.cli.exits import EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED
from drivevision.cli.help import add_command
from drivevision.cli.options import (
    add_detector_args,
    add_style_args,
    check_detector_args,
    detector_config,
    draw_style,
    image_fps,
    quiet_opencv,
    score_threshold,
    takes_fps,
    video_preset_arg,
)
from drivevision.cli.tracking import add_track_args, check_track_args, track_options
from drivevision.config import weights_problem
from drivevision.io import limits
from drivevision.labels import counted


def add_parser(commands) -> None:
    """Register ``batch`` on the ``drivevision`` sub-command parsers."""
    batch = add_command(
        commands, "batch", summary="detect in many files: resumable, local workers or Ray",
        description="Detect objects in many video files and image folders, the model loaded "
                    "once per worker. Each input's outputs go under DIR at its path relative "
                    "to the folder it was found in (with several inputs, the folder holding "
                    "them all). A rerun skips the inputs already done with "
                    "the same settings (DIR/batch-manifest.jsonl), so a killed batch resumes "
                    "where it stopped; DIR/batch.json and DIR/batch.csv list every input. "
                    "Exit code 3 when some inputs failed.",
        examples="""
drivevision batch footage/ --out detections/                 # every video under footage/
drivevision batch 'footage/2026-*/*.mp4' --out det/ --csv --video --workers 2
drivevision batch --list files.txt --out det/ --track        # + MOT text per input
drivevision batch footage/ --out det/ --yolo dataset/ --crops crops/  # one dataset for all
drivevision batch footage/ --out det/ --ray auto             # on the Ray cluster joined
drivevision batch assets/ --out det/ --weights assets/tiny-fpn-synthetic.pt  # offline demo""")
    batch.add_argument("inputs", nargs="*", metavar="INPUT",
                       help="video files, folders (searched for videos and folders of images) "
                            "or globs")
    batch.add_argument("--list", metavar="FILE", dest="list_file",
                       help="more inputs, one path a line (relative to the file's folder)")
    out = batch.add_argument_group("outputs")
    out.add_argument("--out", "-o", "--output", dest="out", required=True, metavar="DIR",
                     help="output folder: INPUT.jsonl per input, and what is asked below")
    out.add_argument("--video", action="store_true", help="annotated video per input (.mp4)")
    video_preset_arg(out)
    add_style_args(out)
    out.add_argument("--csv", action="store_true", help="detections per input as CSV")
    out.add_argument("--yolo", metavar="DIR",
                     help="one YOLO dataset of every input's frames with detections "
                          "(images/, labels/, data.yaml, classes.txt), each input's files "
                          "under its name: images/INPUT/frame_000123.jpg")
    out.add_argument("--crops", metavar="DIR",
                     help="each detection cut out of its frame: DIR/CLASS/INPUT/NAME_INDEX.jpg")
    out.add_argument("--force", action="store_true",
                     help="redo every input, also those done before with the same settings")
    run = batch.add_argument_group("run")
    run.add_argument("--workers", type=int, metavar="N",
                     help="worker processes (or Ray actors), each with a model loaded "
                          "(default: one per GPU; one on a CPU-only machine)")
    run.add_argument("--ray", nargs="?", const="", metavar="ADDRESS",
                     help="run on Ray: 'auto' joins this machine's cluster, an address joins "
                          "that one, none starts Ray here (needs drivevision[ray])")
    run.add_argument("--batch", type=int, default=1, metavar="N", help="frames per detector call")
    run.add_argument("--frame-stride", type=int, default=1, metavar="K",
                     help="detect only frames 0, K, 2K, ... of each input, as detect does "
                          "(default: 1, every frame); another K redoes the inputs done before")
    run.add_argument("--fps", type=float,
                     help="frame rate given to folders of images, 0.01 to 1000 (default: 10), "
                          "and to raw .h264/.h265 streams, which have no frame times (default: "
                          "the rate each states, else 25); videos in a container keep their own")
    run.add_argument("--max-pixels", metavar="N",
                     help="largest frame to decode, e.g. 50M (default: $DRIVEVISION_MAX_PIXELS, "
                          "else 50M)")
    run.add_argument("-q", "--quiet", action="store_true", help="no progress or summary")
    add_detector_args(batch, tracked=True)
    add_track_args(batch)
    batch.set_defaults(func=cmd_batch)


def cmd_batch(args: argparse.Namespace) -> int:
    from drivevision.batch import claim_out_dir, find_jobs, plan_batch
    from drivevision.batch.datasets import check_datasets, claim_datasets
    from drivevision.batch.jobs import check_outputs_spare_inputs

    settings = _settings(args)
    out_dir = _out_dir(args.out)
    datasets = [Path(p) for p in (settings.yolo, settings.crops) if p]
    passed: list[str] = []
    metadata: list[Path] = []
    jobs = find_jobs(args.inputs, out_dir, args.list_file, skip=datasets, passed=passed,
                     metadata=metadata)
    if passed:
        print("drivevision: warning: passed over what a glob matched that is not footage: "
              f"{', '.join(passed[:5])}{', ...' if len(passed) > 5 else ''}", file=sys.stderr)
    if metadata:
        print(f"drivevision: note: passed over {counted(len(metadata), 'folder')} a NAS or the "
              "system keeps (thumbnails, recycle bins): "
              f"{', '.join(map(_shown, metadata[:5]))}{', ...' if len(metadata) > 5 else ''}",
              file=sys.stderr)
    check_outputs_spare_inputs(jobs, out_dir, video=settings.video, csv=settings.csv,
                               mot=settings.track is not None)
    check_datasets(settings, out_dir, jobs)
    takers = any(job.kind == "images" or takes_fps(job.source) for job in jobs)
    image_fps(args, takers, raw=True)  # warns if no input takes it
    workers = _workers(args, settings, out_dir)
    quiet_opencv()
    with claim_out_dir(out_dir), claim_datasets(settings):
        plan = plan_batch(jobs, out_dir, settings, force=args.force)
        return _run(args, plan, workers)



def _shown(path: Path) -> str:
    """``path`` as a message names it: relative to the working folder when inside it."""
    here = Path.cwd()
    return str(path.relative_to(here)) if path.is_relative_to(here) else str(path)


def _settings(args: argparse.Namespace):
    """The batch's settings from the options, refusing bad ones in one line."""
    from drivevision.batch import BatchSettings

    if args.batch < 1:
        raise ValueError(f"Expected --batch >= 1, but got {args.batch}")
    if args.frame_stride < 1:
        raise ValueError(f"Expected --frame-stride >= 1 frames, but got {args.frame_stride}")
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"Expected --workers >= 1, but got {args.workers}")
    score_threshold(args)
    check_track_args(args)
    if args.ray and Path(args.ray).exists():
        raise ValueError(f"--ray took {args.ray} for a cluster address: give the inputs "
                         "before --ray, or write --ray= for a Ray instance here")
    if args.ray is not None and importlib.util.find_spec("ray") is None:
        raise ValueError("--ray needs Ray, which is not installed: "
                         "pip install 'drivevision[ray]'")
    if args.weights and weights_problem(args.weights):
        raise ValueError(weights_problem(args.weights))
    check_detector_args(args)  # here, not in every worker
    return BatchSettings(detector_config(args), video=args.video,
                         video_preset=args.video_preset, csv=args.csv,
                         track=args.track, **track_options(args),
                         batch=args.batch, fps=image_fps(args, images=True), raw_fps=args.fps,
                         max_pixels=limits.max_pixels(args.max_pixels),
                         frame_stride=args.frame_stride, style=draw_style(args),
                         yolo=_folder(args.yolo), crops=_folder(args.crops))


def _folder(text: str | None) -> str | None:
    """A dataset folder as the settings record it: absolute (workers run elsewhere)."""
    return text if text in (None, "-") else str(Path(text).resolve())


def _out_dir(text: str) -> Path:
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise ValueError(f"--out {text} is a file; expected a folder (made if missing)")
    return path.resolve()


def _workers(args: argparse.Namespace, settings, out_dir: Path):
    if args.ray is not None:
        from drivevision.batch.ray_workers import RayWorkers

        return RayWorkers(settings, out_dir, args.ray or None, args.workers)
    from drivevision.batch import local_workers

    return local_workers(settings, out_dir, args.workers)


def _run(args: argparse.Namespace, plan, workers) -> int:
    from drivevision.batch import run_batch
    from drivevision.cli.progress import BatchProgress

    skipped = len(plan.rows) - len(plan.todo)
    with BatchProgress(len(plan.todo), quiet=args.quiet) as progress:
        where = "Ray" if args.ray is not None else _local_share(workers, len(plan.todo))
        progress.status(f"{counted(len(plan.rows), 'input')}: {len(plan.todo)} to run on {where}, "
                        f"{skipped} done before")
        outcome = run_batch(plan, workers, on_event=progress.event)
    if not args.quiet:
        print(_summary(outcome, plan.out_dir))
    if outcome.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if outcome.failed else EXIT_OK


def _local_share(workers, jobs: int) -> str:
    """``1 worker (4 CPU threads)``, ``2 workers (2 CPU threads each)``: the workers started
    for ``jobs`` and each one's share."""
    started, threads = workers.share(jobs)
    each = " each" if started > 1 else ""
    return f"{counted(started, 'worker')} ({counted(threads, 'CPU thread')}{each})"


def _summary(outcome, out_dir: Path) -> str:
    from drivevision.cli.progress import failed_line

    s = outcome.summary
    counts = ", ".join(f"{s[k]} {k}" for k in ("done", "skipped", "failed", "interrupted",
                                               "pending") if s[k])
    run = s["this_run"]
    lines = [f"{counted(s['inputs'], 'input')}: {counts}; {counted(s['frames'], 'frame')}, "
             f"{counted(s['detections'], 'detection')} in all",
             f"this run: {counted(run['inputs'], 'input')}, {counted(run['frames'], 'frame')} "
             f"in {run['seconds']:.1f} s ({run['fps']:.1f} frames/s), "
             f"{counted(run['detections'], 'detection')}"]
    for row in outcome.rows:
        if row["status"] == "failed":
            lines.append(failed_line(row["input"], row["error"]))
    if s["removed"]:
        removed = [path for row in outcome.rows for path in row["removed"]]
        more = f" and {len(removed) - 4} more" if len(removed) > 4 else ""
        lines.append(f"removed {counted(len(removed), 'output')} of earlier runs that these "
                     f"settings do not write: {', '.join(removed[:4])}{more}")
    lines += s.get("notes", [])
    for kind, dataset in s.get("datasets", {}).items():
        lines.append(f"{kind}: {dataset['path']} ({counted(dataset['files'], 'file')})")
    if s["with_notes"]:
        warned = [row["input"] for row in outcome.rows
                  if row["notes"] and row["status"] in ("done", "failed", "interrupted")]
        more = f" and {len(warned) - 4} more" if len(warned) > 4 else ""
        lines.append(f"{counted(s['with_notes'], 'input')} with warnings (damaged frames, "
                     f"...): {', '.join(warned[:4])}{more}; see their notes in batch.json")
    lines.append(f"report: {out_dir / 'batch.json'}, {out_dir / 'batch.csv'}")
    left = s["interrupted"] + s["pending"]
    if left:  # what was done stays done: a rerun skips it
        lines.append(f"stopped with {left} of {counted(s['inputs'], 'input')} left: run the "
                     "same command again to resume")
    return "\n".join(lines)
