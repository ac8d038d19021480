"""What ``drivevision eval INPUT`` does: run the detector with each engine and precision on
the labelled input, time it, score it, and table the results (MMDeploy's style: AP, AP50,
AP75, ms/frame and the AP difference to torch fp32, all from one run on one machine; the
tables are printed by ``eval_tables``).

ms/frame is the median wall time of one ``Detector`` call on a decoded frame (preprocess,
engine and postprocess; decoding not included), after ``warmup`` untimed calls on the first
frame (where torch.compile compiles and ONNX Runtime plans).

With ``--track`` a new tracker runs on each engine's detections (the pipeline's own
``TrackStage``, so it sees the frames as ``detect`` and ``live`` give them) and the tracks are
scored; with ``--frame-stride K`` the detector and tracker see only frames 0, K, 2K, ... by
index in the input (the source's ``keep_every``, as ``detect --frame-stride`` picks them; the
frames between are read past, as live drops them) and the ground truth is cut to those
frames.
"""

from __future__ import annotations

import argparse
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from drivevision.cli import exits
from drivevision.cli.options import csv_list, detector_config, score_threshold
from drivevision.detector import Detector
from drivevision.engines.hardware import cpu_features
from drivevision.evaluation import Annotations, Evaluation, FrameBoxes, evaluate
from drivevision.evaluation.coverage import SHOWN
from drivevision.evaluation.yolo import image_stem
from drivevision.io.uri import display_uri
from drivevision.labels import ClassNames, counted
from drivevision.pipeline import signals

REFERENCE = ("torch", "fp32")


def engine_settings(args: argparse.Namespace) -> list[tuple[str, str]]:
    """Every engine x precision asked for, torch fp32 (the reference) first."""
    settings = [(e, p) for e in csv_list(args.engines) for p in csv_list(args.precision)]
    if not settings:
        raise ValueError("Expected at least one engine and one precision")
    return [REFERENCE] + [s for s in dict.fromkeys(settings) if s != REFERENCE]


@dataclass
class EngineRun:
    engine: str
    precision: str
    ms_per_frame: float
    evaluation: Evaluation


@dataclass
class RunResult:
    """Every engine run, the settings skipped (with why), those a Ctrl-C left unscored
    (``not_scored``, "engine precision" as asked) and what was run on."""

    info: dict
    runs: list[EngineRun] = field(default_factory=list)
    skipped: list[dict] = field(default_factory=list)
    not_scored: list[str] = field(default_factory=list)
    damaged: bool = False  # the input had frames that could not be decoded (exit 3)

    @property
    def table(self) -> dict:
        """JSON-able: ``info``, ``results`` (engine, precision, ms_per_frame, AP_diff (AP
        minus torch fp32's, 0..1) and the metrics), ``skipped``, ``notes`` (``run_notes``) and,
        when a Ctrl-C stopped the run, ``not_scored``."""
        ref = next((r.evaluation.metrics["AP"] for r in self.runs
                    if (r.engine, r.precision) == REFERENCE), None)
        rows = [{"engine": r.engine, "precision": r.precision,
                 "ms_per_frame": round(r.ms_per_frame, 3),
                 "AP_diff": None if ref is None else r.evaluation.metrics["AP"] - ref,
                 **r.evaluation.metrics} for r in self.runs]
        stopped = {"not_scored": self.not_scored} if self.not_scored else {}
        return {**self.info, "results": rows, "skipped": self.skipped,
                "notes": run_notes(self), **stopped}


def run_engines(args: argparse.Namespace, truth: Annotations, class_map: dict,
                log=print) -> RunResult:
    """Detect, time and score with every engine x precision of ``args`` (torch fp32 first).
    A Ctrl-C once an engine is scored stops after the frame or model load in progress: the
    engines scored are kept, the others listed in ``not_scored``; before that, or a second
    one, quits at once."""
    result = RunResult({"input": display_uri(args.input), "gt": args.gt,
                        "conf": score_threshold(args),
                        "torch": torch.__version__, "threads": torch.get_num_threads(),
                        "cpu_features": cpu_features().names()})
    if args.track is not None:
        result.info.update(track=args.track, frame_stride=args.frame_stride)
    stop = threading.Event()  # set by a Ctrl-C once an engine is scored

    def on_signal(signum: int) -> None:
        if stop.is_set() or not result.runs:  # nothing to keep: leave at once, as at start-up
            exits.quit_now(signum)
        stop.set()
        log("interrupted: stopping, the engines scored so far are kept (Ctrl-C again to "
            "quit at once)")

    settings = engine_settings(args)
    with signals.requests(on_signal):
        for done, (engine, precision) in enumerate(settings):
            try:
                _run_one(args, truth, class_map, engine, precision, result, log, stop)
            except KeyboardInterrupt:
                result.not_scored = [f"{e} {p}" for e, p in settings[done:]]
                if not result.runs:
                    raise
                log(f"interrupted: not scored: {', '.join(result.not_scored)}")
                break
    return result


def _run_one(args: argparse.Namespace, truth: Annotations, class_map: dict, engine: str,
             precision: str, result: RunResult, log, stop: threading.Event) -> None:
    """Load, run and score one engine and precision into ``result`` (or skip it, saying
    why: first what can never run here, such as int8 on torch, before its options are
    checked); KeyboardInterrupt as soon as ``stop`` is set."""
    from drivevision.cli.settings import why_not_here
    from drivevision.cli.timing import _device_name
    from drivevision.engines.hardware import device_kind

    if stop.is_set():  # came as the setting before was skipped
        raise KeyboardInterrupt
    reason = why_not_here(engine, precision, device_kind(args.device))
    try:
        if reason is None:
            detector = Detector.from_config(detector_config(argparse.Namespace(
                **{**vars(args), "engine": engine, "precision": precision})), progress=True)
    except (ValueError, ImportError) as e:
        reason = str(e).strip().splitlines()[0]
        if (engine, precision) == REFERENCE:
            raise
    if reason is not None:
        result.skipped.append({"engine": engine, "precision": precision, "reason": reason})
        log(f"skipped {engine} {precision}: {reason}")
        return
    if stop.is_set():  # came while the model loaded
        raise KeyboardInterrupt
    _check_class_map(class_map, detector.names)
    result.info.setdefault("device", _device_name(detector.device))
    log(f"{engine} {precision}: detecting ({detector.describe()})")
    stride = args.frame_stride
    preds, ms, input_notes = detect_all(detector, args.input, truth, args.warmup,
                                        stride=stride, stages=_track_stages(args), stop=stop,
                                        allow_unlabelled=args.allow_unlabelled)
    seen = truth if stride == 1 else replace(
        truth, frames={f: fb for f, fb in truth.frames.items() if f % stride == 0})
    evaluation = evaluate(seen, preds, class_map=class_map,
                          allow_unlabelled=args.allow_unlabelled)
    evaluation.notes[:0] = input_notes
    result.damaged = result.damaged or bool(input_notes)
    engine, precision = detector.engine.name, detector.precision  # what auto picked
    result.runs.append(EngineRun(engine, precision, ms, evaluation))
    log(f"{engine} {precision}: AP {evaluation.metrics['AP']:.4f}, {ms:.1f} ms/frame")


def _check_class_map(class_map: dict[str, str], names) -> None:
    """A ``--class-map`` model class the model does not have (a typo, another model's name):
    a ValueError naming the close ones or listing the model's, before any frame is detected,
    where it would only leave that ground-truth class without detections."""
    lower = ClassNames(n.lower() for n in names)
    for model in class_map:
        if model not in lower:
            try:
                lower.index(model)
            except ValueError as e:
                raise ValueError(f"--class-map: {e}") from None


def _track_stages(args: argparse.Namespace) -> list:
    """A new tracker (as ``[TrackStage]``) for one run, or none without ``--track``."""
    from drivevision.cli.tracking import track_stages

    if args.track is None:
        return []
    return list(track_stages(args)(0))


def detect_all(detector: Detector, uri: str, truth: Annotations, warmup: int, *,
               stride: int = 1, stages=(), stop: threading.Event | None = None,
               allow_unlabelled: bool = True) -> tuple[Annotations, float]:
    """Detections of frames 0, ``stride``, 2 x ``stride``, ... of ``uri`` (by their index in
    it, whatever frames could not be decoded), passed through ``stages`` (a tracker's: then
    with track ids), the median ms of one detector call, and the notes on what of the input
    could not be decoded (the source's, and which labelled frames that leaves as missed).
    KeyboardInterrupt before a frame once ``stop`` is set (a Ctrl-C came); unless
    ``allow_unlabelled``, a ValueError at the first frame ``truth`` does not label, before
    it is detected; a ValueError for labelled frames past the input's end."""
    from drivevision.io.sources import open_source
    from drivevision.pipeline.result import Result

    frames, files, samples = {}, {}, []
    with open_source(uri) as source:
        by_name = _by_name(source, truth)
        frame_of = _truth_frames(truth, by_name)
        _check_files(source, truth, by_name)
        source.keep_every(stride)
        for frame in source:
            if stop is not None and stop.is_set():
                raise KeyboardInterrupt
            if not (allow_unlabelled or by_name or frame.index in truth.frames):
                raise ValueError(_unlabelled(source.name, frame.index, truth))
            _check_size(frame_of(frame), frame.image.shape, truth)
            if not samples and frame.index == next(iter(truth.frames), 0):
                for _ in range(warmup):
                    detector(frame.image)
            t0 = time.perf_counter()
            dets = detector(frame.image)
            samples.append((time.perf_counter() - t0) * 1000)
            for stage in stages:
                dets = stage(Result(frame, dets)).detections
            frames[frame.index] = _frame_boxes(dets, detector.names)
            if frame.file is not None:
                files[frame.index] = frame.file
    if not samples:
        raise ValueError(f"{source.name}: no frame to detect in")
    notes = list(source.notes)
    if not by_name:  # images matched by name (_check_files): their indices tell nothing
        held = max(source.frame_count or 0, max(frames) + 1)  # what the container says
        _check_end(source.name, held, truth, stride, stored=source.frame_count is not None)
        notes += _missed_note(source.name, held, truth, stride, frames)
    classes = tuple(dict.fromkeys(n for f in frames.values() for n in f.labels))
    return (Annotations(uri, frames, classes, file_names=files), float(np.median(samples)),
            notes)


def _by_name(source, truth: Annotations) -> bool:
    """The input's frames are matched to the ground truth's by image name, as ``evaluate``
    matches them: a dataset's always, a COCO file's that names them when the input is a
    folder of images."""
    return truth.match_files or (getattr(source, "paths", None) is not None and truth.named)


def _truth_frames(truth: Annotations, by_name: bool):
    """Frame -> the ground truth's frame for it: the same index, or the image of the same
    name (None: not labelled)."""
    if not by_name:
        return lambda frame: frame.index
    stems = {Path(n).stem: f for f, n in truth.file_names.items()}
    return lambda frame: stems.get(image_stem(frame.index, frame.file))


def _frame_boxes(dets, names: list[str]) -> FrameBoxes:
    ids = None if dets.track_ids is None else dets.track_ids.astype(np.int64)
    return FrameBoxes(dets.xyxy.astype(np.float64),
                      tuple(names[int(c)].lower() for c in dets.class_ids),
                      dets.scores.astype(np.float64), ids)


def _check_files(source, truth: Annotations, by_name: bool) -> None:
    """A folder matched by name: every image of the ground truth, and more if it likes;
    against COCO file names that name no image uniquely: the same images, or frame numbers
    mean nothing."""
    paths = getattr(source, "paths", None)
    if paths is None or not truth.file_names:
        return
    if by_name:
        have = {p.stem for p in paths}
        lacking = [n for n in truth.file_names.values() if Path(n).stem not in have]
        give = "its images/ folder" if truth.match_files else "the folder of its images"
        if lacking:
            raise ValueError(f"{source.name} lacks {counted(len(lacking), 'image')} of "
                             f"{truth.path} ({', '.join(lacking[:3])}"
                             f"{', ...' if len(lacking) > 3 else ''}): give {give}")
        return
    mine = [p.name for p in paths]
    theirs = [truth.file_names[f] for f in sorted(truth.file_names)]
    if mine != theirs:
        missing = sorted(set(theirs) - set(mine))[:3] or sorted(set(mine) - set(theirs))[:3]
        raise ValueError(f"{source.name} does not hold exactly the images of the ground truth "
                         f"({len(mine)} here, {len(theirs)} there; e.g. {', '.join(missing)})")


def _unlabelled(uri: str, index: int, truth: Annotations) -> str:
    """Frame ``index`` of ``uri`` has no ground truth: said at once, not after every frame
    past the labelled ones was detected (a long video against a short ground truth)."""
    labelled = sorted(truth.frames)
    span = f", {labelled[0]}-{labelled[-1]}" if labelled else ""
    return (f"{uri} has frame {index}, which {truth.path} does not label (it labels "
            f"{counted(len(labelled), 'frame')}{span}); pass --allow-unlabelled to leave "
            "the frames it lacks out")


def _check_end(uri: str, held: int, truth: Annotations, stride: int, *,
               stored: bool = True) -> None:
    """Labelled frames (of those the stride keeps) past the frames the input holds would
    count as missed: the ground truth is another, longer video's, or the video was cut.
    ``stored``: ``held`` is what the container stores (MP4: a cut file keeps its count, its
    lost frames are missed, not past the end), else the frames up to the last that decoded
    (MPEG-TS, MKV store no count), where a file cut short ends early with no other sign."""
    past = sorted(f for f in truth.frames if f >= held and f % stride == 0)
    if not past:
        return
    which = str(past[0]) if len(past) == 1 else f"{past[0]}-{past[-1]}"
    end = f"frame {held - 1}," if stored else \
        f"frame {held - 1}, the last that decodes (it stores no frame count),"
    why = ("the ground truth of a longer video? Give the ground truth of the frames the input "
           "has" if stored else
           f"is {uri} cut short (a copy or recording that did not finish), or is this the "
           "ground truth of a longer video? Give the whole video, or the ground truth of the "
           "frames it has")
    raise ValueError(f"{uri} ends at {end} but {truth.path} labels "
                     f"{counted(len(past), 'frame')} after it ({which}), whose objects would "
                     f"count as missed: {why}")


def _missed_note(uri: str, held: int, truth: Annotations, stride: int,
                 frames: dict) -> list[str]:
    """A note on the labelled frames the input holds but could not decode (a damaged
    stretch, a cut file's last frames): their objects count as missed, as ``detect`` would
    find none there."""
    lost = sorted(f for f in truth.frames if f < held and f % stride == 0 and f not in frames)
    if not lost:
        return []
    shown = ", ".join(map(str, lost[:SHOWN])) + (", ..." if len(lost) > SHOWN else "")
    them = "it, but it" if len(lost) == 1 else "them, but they"
    return [f"the objects of {counted(len(lost), 'labelled frame')} count as missed: {uri} "
            f"has {them} could not be decoded ({shown})"]


def _check_size(index: int | None, shape: tuple, truth: Annotations) -> None:
    size = truth.sizes.get(index)
    if size is None or (shape[1], shape[0]) == size:
        return
    if truth.match_files:
        raise ValueError(f"Image {truth.file_names[index]} of the input is {shape[1]}x"
                         f"{shape[0]}, but the dataset's is {size[0]}x{size[1]}: another "
                         "image of that name?")
    raise ValueError(f"Frame {index} of the input is {shape[1]}x{shape[0]}, but the ground "
                     f"truth's is {size[0]}x{size[1]}: not the labelled video?")


def run_notes(result: RunResult) -> list[str]:
    """The runs' notes (what scoring left out, and why), each once, after the runs that
    have it: "torch fp32, torch bf16: left out ..."."""
    runs: dict[str, list[str]] = {}
    for r in result.runs:
        for note in r.evaluation.notes:
            runs.setdefault(note, []).append(f"{r.engine} {r.precision}")
    return [f"{', '.join(names)}: {note}" for note, names in runs.items()]
