"""``detect_video``: everything ``drivevision detect`` does, callable from Python."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import ExitStack

from drivevision.config import DetectorConfig, PipelineConfig
from drivevision.detector import Detector
from drivevision.io.frames import Source
from drivevision.io.live_sinks import GapJsonlSink, LiveVideoSink
from drivevision.io.sinks import CsvSink, JsonlSink, Sink, VideoSink
from drivevision.io.sources import open_source
from drivevision.labels import name_of
from drivevision.pipeline.pipeline import Pipeline, Result
from drivevision.pipeline.stats import RunSummary, StageStats

PathLike = str | os.PathLike


def detect_video(source: PathLike | Source, output: PathLike | None = None, *,
                 jsonl: PathLike | None = None, csv: PathLike | None = None,
                 detector: Detector | DetectorConfig | None = None, batch: int = 1,
                 on_result: Callable[[Result], None] | None = None) -> RunSummary:
    """Detect objects in a video, image or folder; write the annotated video and detections.

    Args:
        source: a path or URI (see ``open_source``) or an opened ``Source``.
        output: annotated video file (.mp4, .mkv, .avi, .mov), or None.
        jsonl / csv: detection files, or None.
        detector: a ``Detector``, a ``DetectorConfig`` to build one, or None for the default.
        batch: frames per detector call.
        on_result: called on this thread with every ``Result``, in order.

    Returns the run's summary. Outputs appear under their names only when the run completes
    (or is stopped with Ctrl-C); a failed run leaves ``<name>.partial<suffix>`` files.
    """
    if detector is None or isinstance(detector, DetectorConfig):
        detector = Detector.from_config(detector or DetectorConfig())
    with ExitStack() as finishing, ExitStack() as stack:  # stack unwinds first
        src = source if isinstance(source, Source) else stack.enter_context(open_source(source))
        sinks = [stack.enter_context(s) for s in _sinks(src, detector, output, jsonl, csv)]
        # (a generator: each sink is entered before the next is made, so none leaks)
        pipeline = Pipeline(src, detector, sinks, config=PipelineConfig(batch_size=batch))
        try:
            summary = _run(pipeline, detector, on_result)
        finally:
            finishing.enter_context(signals_deferred())  # while the outputs are finished
        summary.notes.extend(src.notes)
    summary.notes.extend(n for s in sinks for n in s.notes)
    return summary


@contextlib.contextmanager
def signals_deferred() -> Iterator[None]:
    """Ctrl-C or SIGTERM while outputs are being finished waits until they are in place,
    then is raised as KeyboardInterrupt (unless an error is already on its way). Main thread
    only (elsewhere Python delivers no signals); SIGTERM is deferred when it has a handler."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    caught: list[int] = []
    signums = [s for s in (signal.SIGINT, signal.SIGTERM)
               if s == signal.SIGINT or callable(signal.getsignal(s))]
    previous = {s: signal.signal(s, lambda n, _f: caught.append(n)) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    if caught:
        raise KeyboardInterrupt


def _sinks(src: Source, detector: Detector, output, jsonl, csv) -> Iterator[Sink]:
    """The outputs asked for; a live source's video runs on the capture clock and its JSONL
    records the stream's outages, as in ``drivevision live``."""
    if output is not None:
        yield (LiveVideoSink if src.live else VideoSink)(output, src.fps or 30.0)
    if jsonl is not None:
        if src.live:
            yield GapJsonlSink(jsonl, detector.names, src.gaps)
        else:
            yield JsonlSink(jsonl, detector.names)
    if csv is not None:
        yield CsvSink(csv, detector.names)


def _run(pipeline: Pipeline, detector: Detector,
         on_result: Callable[[Result], None] | None) -> RunSummary:
    stats, counts = StageStats(), Counter()
    start = time.perf_counter()

    def collect(result: Result) -> None:
        stats.add(result.timings)
        counts.update(name_of(int(c), detector.names) for c in result.detections.class_ids)
        if on_result is not None:
            on_result(result)

    frames = pipeline.run(collect)
    return RunSummary(frames, time.perf_counter() - start, dict(counts), stats, [],
                      interrupted=pipeline.interrupted)
