"""What the pipeline and ``detect_video`` accept, checked before any thread starts or any
output opens: sources, a detector, per-source stages and sinks. A refusal says what was
expected, what came, and how to make the right thing."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

from drivevision.config import DetectorConfig
from drivevision.io.frames import Source


def check_sources(given) -> list[Source]:
    """``given`` as a list of sources; TypeError for a path or anything else that is not
    a ``Source`` (or a sequence of them)."""
    if isinstance(given, (str, os.PathLike)):
        raise TypeError(f"Expected a Source or a sequence of them, but found a path "
                        f"({str(given)!r}); open it with drivevision.open_source(path)")
    sources = list(given) if isinstance(given, (Sequence, Iterator)) else [given]
    for source in sources:
        if not isinstance(source, Source):
            raise TypeError(f"Expected a Source (drivevision.open_source(uri)) or a sequence "
                            f"of them, but found {type(source).__name__}")
    return sources


def check_detector(detector, expected: str = "a Detector") -> None:
    """TypeError unless ``detector`` can detect: a ``Detector`` (or one like it: ``names``,
    ``infer_timed``); ``expected`` says what the caller takes, for the message."""
    if hasattr(detector, "infer_timed") and hasattr(detector, "names"):
        return
    if isinstance(detector, DetectorConfig):
        found = "a DetectorConfig; build one with Detector.from_config(config)"
    else:
        found = _found(detector, "for a checkpoint build one with "
                                 "Detector.from_config(DetectorConfig(weights=path))")
    raise TypeError(f"Expected {expected}, but found {found}")


SINK = ("a sink, an opened output (JsonlSink(path, detector.names), CsvSink(path, "
        "detector.names) in drivevision.io.sinks, VideoSink(path, fps) in "
        "drivevision.io.video_sink; each in a with block)")


def check_sinks(chain: Sequence) -> None:
    """TypeError, saying how to make one, for anything in ``chain`` (one source's sinks)
    that is not a sink (``write`` and ``needs_annotated``, as ``io.sinks.Sink`` has): an
    output's path, which ``detect_video`` takes but a ``Pipeline`` does not."""
    for sink in chain:
        if not (hasattr(sink, "write") and hasattr(sink, "needs_annotated")):
            found = _found(sink, "detect_video(source, output, jsonl=...) takes paths")
            raise TypeError(f"Expected {SINK}, but found {found}")


def _found(given, for_a_path: str) -> str:
    """What ``given`` is, for a refusal's "but found ...": its type's name, or for a path
    (given where what is opened or built from one belongs) the path and ``for_a_path``,
    what to do with it instead."""
    if isinstance(given, (str, os.PathLike)):
        return f"a path ({str(given)!r}); {for_a_path}"
    return type(given).__name__


def check_stages(chain) -> None:
    """TypeError, saying how to make one, for anything in ``chain`` (one source's stages)
    that is not a ``Stage``: a tracker's name, given in their place or in it, a tracker."""
    for stage in [chain] if isinstance(chain, str) else chain:
        if callable(stage):
            continue
        found = type(stage).__name__
        if isinstance(stage, str):
            found = (f"a str ({stage!r}); for a tracker: stages=track_stages({stage!r}) "
                     "(drivevision.pipeline.track_stage)")
        elif hasattr(stage, "update"):
            found += (", a tracker: run it as a stage, stages=[TrackStage(tracker)] "
                      "(drivevision.pipeline.track_stage)")
        raise TypeError(f"Expected a stage, a Result -> Result callable, but found {found}")


def per_source(what: str, given: Sequence, n: int, single: bool) -> list[list]:
    """``given`` as one list per source: a single source's flat list, or one per source."""
    if single:
        return [_listed(given)]
    given = list(given)
    if not given:
        return [[] for _ in range(n)]
    if len(given) != n:
        raise ValueError(f"Expected one sequence of {what} per source ({n}), "
                         f"but got {len(given)}")
    return [_listed(g) for g in given]


def _listed(given) -> list:
    """A sequence as a list; a str (a tracker's name, say) stays whole, for the message."""
    return [given] if isinstance(given, str) else list(given)
