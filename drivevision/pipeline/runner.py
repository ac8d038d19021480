"""``detect_video``: everything ``drivevision detect`` does, callable from Python."""

from __future__ import annotations

import os
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack

from drivevision.config import DEFAULT_VIDEO_PRESET, DetectorConfig, DrawStyle, PipelineConfig
from drivevision.detector import Detector
from drivevision.io.claims import check_distinct, check_not_input
from drivevision.io.dataset_sinks import CropSink, YoloSink
from drivevision.io.frames import Source
from drivevision.io.image_sinks import annotated_output
from drivevision.io.images import ImageSource
from drivevision.io.live_sinks import GapJsonlSink
from drivevision.io.mot import MotSink
from drivevision.io.sinks import CsvSink, JsonlSink, Sink
from drivevision.io.sources import check_uri, open_source
from drivevision.labels import name_of
from drivevision.pipeline import signals
from drivevision.pipeline.checks import check_detector, check_stages
from drivevision.pipeline.pipeline import Pipeline
from drivevision.pipeline.result import Result, Stage
from drivevision.pipeline.stats import RunSummary, StageStats, TrackStats
from drivevision.render import renderer

PathLike = str | os.PathLike


def detect_video(source: PathLike | Source, output: PathLike | None = None, *,
                 jsonl: PathLike | None = None, csv: PathLike | None = None,
                 detector: Detector | DetectorConfig | None = None, batch: int = 1,
                 on_result: Callable[[Result], None] | None = None,
                 stages: Sequence[Stage] | Callable[[int], Sequence[Stage]] = (),
                 mot: PathLike | None = None,
                 video_preset: str = DEFAULT_VIDEO_PRESET, yolo: PathLike | None = None,
                 crops: PathLike | None = None, frame_stride: int = 1,
                 style: DrawStyle = DrawStyle(),
                 dataset_part: str | None = None, start: float | None = None,
                 end: float | None = None) -> RunSummary:
    """Detect objects in a video, image or folder; write the annotated video and detections.

    Args:
        source: a path or URI (see ``open_source``) or an opened ``Source``.
        output: annotated video file (.mp4, .mkv, .avi, .mov), image file (.jpg, .png, ...;
            for a single image) or folder (one image per frame), or None.
        jsonl / csv: detection files, or None.
        detector: a ``Detector``, a ``DetectorConfig`` to build one, or None for the default.
        batch: frames per detector call.
        on_result: called on this thread with every ``Result``, in order.
        stages: stages after inference (``drivevision.pipeline.Stage``), or a function of the
            source position making them, e.g. ``track_stages("botsort")``
            (``drivevision.pipeline.track_stage``).
        mot: MOTChallenge text file of the tracked boxes (needs a tracker stage), or None.
        video_preset: x264's speed/size trade for an annotated video
            (``drivevision.config.VIDEO_PRESETS``).
        yolo: folder for a YOLO dataset of the frames with detections
            (``drivevision.io.dataset_sinks.YoloSink``), or None.
        crops: folder for each detection cut out of its frame, ``CLASS/NAME_INDEX.jpg``
            (``drivevision.io.dataset_sinks.CropSink``), or None.
        frame_stride: detect only frames 0, K, 2K, ... of a video file or folder (K >= 1;
            ``Source.keep_every``): the outputs keep each frame's index and time, the
            annotated video runs at 1/K of the frame rate, a tracker sees the gaps.
        style: how the annotated outputs draw the boxes (labels, scores, line width).
        dataset_part: this input's name in ``yolo`` and ``crops`` folders that other inputs
            write too (a batch's, ``recorded.SharedPart``), or None: the folders are this
            run's.
        start / end: detect only the frames at or after ``start`` and before ``end``, in
            seconds of the input (None: from the first frame, to the last;
            ``Source.keep_range``): a video seeks to the keyframe before ``start`` and stops
            reading at ``end``; the outputs keep each frame's index and time in the input,
            the annotated video holds only the range.

    A camera or stream keeps only its newest frame (drops are counted in the summary); files
    keep every frame, but for a frame the model cannot take (too thin to resize) or cannot
    decode, which is skipped with a note in the summary's ``notes``. Returns the run's
    summary. Outputs appear under their names only when the run completes, replacing files
    of those names, or is stopped (Ctrl-C on the main thread is a stop request: the summary
    says ``interrupted``) where no file has that name: a stopped run keeps the file there and
    writes ``<name>.partial<suffix>`` beside it, as a failed run does; the summary's
    ``placed`` maps each output that went elsewhere to where it went, and a note says so.
    An output that is the input, two outputs of one path, or ``mot`` with no stages, are
    refused (ValueError) before the model loads, as are a frame stride or time range a
    source cannot keep (a live one), a start at or past the input's length, and stages that
    are not ``Stage`` callables (TypeError: a tracker's name, a tracker itself).
    """
    if not isinstance(source, Source):
        check_uri(source)  # a frame or a list of inputs: said before anything else
    _check_outputs(source, [output, jsonl, csv, mot, yolo, crops])
    if not callable(stages):
        check_stages(stages)  # before the model loads
    if mot is not None and not callable(stages) and not stages:
        raise ValueError("Expected stages with a tracker for mot= (a MOT file needs track "
                         "ids), e.g. stages=track_stages('bytetrack'), but got none")
    with ExitStack() as finishing, ExitStack() as stack:  # stack unwinds first
        src = source if isinstance(source, Source) else stack.enter_context(open_source(source))
        src.keep_every(frame_stride)  # before the model loads
        if start is not None or end is not None:
            src.keep_range(start, end)
        if detector is None or isinstance(detector, DetectorConfig):
            detector = Detector.from_config(detector or DetectorConfig())
        check_detector(detector, "a Detector, a DetectorConfig or None")  # before any output
        if src.frame_check is None:  # as the command does: skip a frame the model cannot take
            src.frame_check = getattr(detector, "size_problem", None)
        sinks: list[Sink] = []
        stack.push(lambda _type, error, _tb: _tell_outputs(error, sinks))  # after they close
        for sink in _sinks(src, detector, output, jsonl, csv, mot, video_preset, yolo, crops,
                           dataset_part):  # (each entered before the next is made: none leaks)
            sinks.append(stack.enter_context(sink))
        pipeline = Pipeline(src, detector, sinks, config=PipelineConfig(batch_size=batch),
                            stages=stages, render=renderer(style, detector.names))
        try:
            summary, last = _run(pipeline, detector, on_result)
        finally:  # a signal while the outputs are finished waits until they are in place
            held = finishing.enter_context(signals.held())
        _add_input(summary, src, last)
        for sink in sinks:  # stopped part way: a file of an output's name is kept, not replaced
            sink.interrupted = summary.interrupted and not src.live
    summary.notes.extend(n for chain in pipeline.stages for stage in chain
                         for n in getattr(stage, "notes", ()))  # a tracker's gaps
    summary.notes.extend(n for s in sinks for n in s.notes)
    summary.interrupted = summary.interrupted or bool(held)
    summary.placed = _placed(sinks)
    return summary


def _tell_outputs(error: BaseException | None, sinks: list[Sink]) -> bool:
    """On a failed run, what became of its outputs (their notes: ``.partial`` files kept)
    goes with the error, as ``output_notes``, for the caller to tell, and as ``placed``
    (output -> where what was written of it went), as a summary has it."""
    if error is not None:  # (an output's own failure is the error, not a note beside it)
        error.output_notes = [n for s in sinks for n in s.notes if n != str(error)]
        error.placed = _placed(sinks)
    return False


def _placed(sinks: list[Sink]) -> dict:
    return {s.path: s.final_path for s in sinks if s.path is not None
            and s.final_path is not None and s.final_path != (s.target or s.path)}


def _add_input(summary: RunSummary, src: Source, last: int) -> None:
    """What the summary says of the input: its notes, the frames read (those a stride or
    range passed over too), its frame rate and the range asked for; ``last`` is the index
    of the last frame detected."""
    summary.notes.extend(src.notes)
    summary.frame_stride, summary.read = src.frame_stride, summary.frames + src.passed
    summary.input_fps = src.fps
    if src.ranged:
        summary.range, summary.span = (src.start_s or 0.0, src.end_s), src.span
    if summary.interrupted:  # the reader ran ahead of the detector: count what it covered
        first = src.span[0] if src.ranged and src.span else 0
        summary.read = min(summary.read, last + 1 - first)
        if summary.span is not None:
            summary.span = (first, min(summary.span[1], max(last, first)))


def _check_outputs(source: PathLike | Source, outputs: list[PathLike | None]) -> None:
    """Refuse, before the model loads, an output that is the input (it would be replaced by
    the annotated copy) and two outputs that are one file (their lines would interleave)."""
    given = [path for path in outputs if path is not None]
    check_distinct(given)
    check_not_input([source.uri if isinstance(source, Source) else source], given)


def _sinks(src: Source, detector: Detector, output, jsonl, csv, mot=None,
           video_preset: str = DEFAULT_VIDEO_PRESET, yolo=None, crops=None,
           part: str | None = None) -> Iterator[Sink]:
    """The outputs asked for; a live source's video runs on the capture clock and its JSONL
    records the stream's outages, as in ``drivevision live``; the CSV of images adds each
    row's file."""
    if output is not None:
        yield annotated_output(output, src, video_preset)
    if jsonl is not None:
        if src.live:
            yield GapJsonlSink(jsonl, detector.names, src.gaps)
        else:
            yield JsonlSink(jsonl, detector.names)
    if csv is not None:
        yield CsvSink(csv, detector.names, files=isinstance(src, ImageSource))
    if mot is not None:
        yield MotSink(mot)
    files = src.names if isinstance(src, ImageSource) else None
    if yolo is not None:
        yield YoloSink(yolo, detector.names, getattr(detector, "class_ids", None), files, part)
    if crops is not None:
        yield CropSink(crops, detector.names, files, part)


def _run(pipeline: Pipeline, detector: Detector,
         on_result: Callable[[Result], None] | None) -> tuple[RunSummary, int]:
    """The run's summary and the index of the last frame detected (-1: none)."""
    # the first detector call's frames carry one-off work (compiling for the frame size)
    stats = StageStats(warmup=pipeline.config.batch_size)
    counts, tracks = Counter(), TrackStats()
    start = time.perf_counter()
    last = -1

    def collect(result: Result) -> None:
        nonlocal last
        last = max(last, result.frame.index)
        stats.add(result.timings)
        counts.update(name_of(int(c), detector.names) for c in result.detections.class_ids)
        tracks.add(result.frame, result.detections)
        if on_result is not None:
            on_result(result)

    frames = pipeline.run(collect)
    return RunSummary(frames, time.perf_counter() - start, dict(counts), stats, [],
                      interrupted=pipeline.interrupted, dropped=pipeline.dropped,
                      tracks=tracks.per_class(detector.names) if tracks else None,
                      median_track_length=tracks.median_length(),
                      median_track_span=tracks.median_span()), last
