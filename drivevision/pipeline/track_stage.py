"""The tracker as a per-source pipeline stage: ``Result -> Result`` with track ids and
trails set."""

from __future__ import annotations

from dataclasses import replace

from drivevision.config import setting
from drivevision.labels import counted
from drivevision.pipeline.result import Result
from drivevision.render import Trails
from drivevision.tracking import Tracker, create_tracker


class TrackStage:
    """Runs one ``Tracker`` over one source's results, in frame order, and keeps their
    ``Trails`` (by the frames' timestamps) for drawing; its time is reported as "track". The
    frame goes to the tracker too (camera-motion compensation), and its index, so that frames
    a live source dropped count as time gone by. Its notes name ``option``, the setting of
    the tracker's ``track_buffer``: the keyword (``track_stages("bytetrack",
    track_buffer=45)``), or a command's ``--track-buffer``."""

    name = "track"

    def __init__(self, tracker: Tracker, trails: Trails | None = None, *,
                 option: str = "track_buffer"):
        self.tracker = tracker
        self.option = option
        self.trails = trails if trails is not None else Trails()
        self._index: int | None = None  # the previous frame's index
        self._gaps: list[int] = []  # frames between updates that outlasted the buffer
        self._outlasted = False  # the last gap between updates did

    def __repr__(self) -> str:
        return f"TrackStage({self.tracker!r})"

    @property
    def notes(self) -> list[str]:
        """What a user must know: frames gone by between two updates (a slow detector, an
        outage) that outlasted the tracker's ``track_buffer``, which ended every track."""
        buffer = getattr(self.tracker, "track_buffer", None)
        if not self._gaps:
            return []
        return [f"{counted(len(self._gaps), 'gap')} between detected frames outlasted "
                f"{self._setting(buffer)} (up to {max(self._gaps)} frames unseen): at each, "
                "every track ended, and its object got a new id and no box until its next "
                "detection (none at all while the gaps stay that long); "
                f"{self._setting(max(self._gaps))} or more keeps them"]

    @property
    def status(self) -> str:
        """For a status line, while it goes on: the frames between the last two updates
        outlasted the buffer, so every track ended there ("" otherwise)."""
        if not self._outlasted:
            return ""
        buffer = getattr(self.tracker, "track_buffer", None)
        return (f"tracks end: {self._gaps[-1]} frames between detections > "
                f"{self._setting(buffer)}")

    def _setting(self, frames) -> str:
        return setting(self.option, str(frames), quote=False)

    def __call__(self, result: Result) -> Result:
        self._count_gap(result.frame.index)
        tracked = self.tracker.update(result.detections, result.frame.image,
                                      frame_index=result.frame.index)
        paths = self.trails.add(result.frame.timestamp_ms, tracked)
        return replace(result, detections=tracked, trails=paths)

    def reset(self) -> None:
        """Forget every track and trail (the next frame does not follow the last one)."""
        self.tracker.reset()
        self.trails.reset()
        self._index = None
        self._outlasted = False

    def _count_gap(self, index: int) -> None:
        buffer = getattr(self.tracker, "track_buffer", None)
        self._outlasted = (self._index is not None and buffer is not None
                           and index - self._index - 1 > buffer)
        if self._outlasted:
            self._gaps.append(index - self._index - 1)
        self._index = index


def track_stages(name: str, **options):
    """A function of the source's position giving its own ``[TrackStage]`` (what
    ``Pipeline(stages=...)`` takes), so every source has a tracker of its own."""
    if isinstance(name, int) and not options:  # the pipeline calling track_stages itself
        raise TypeError(f"Expected a tracker name, but got the source position {name}: pass "
                        "stages=track_stages('botsort') (what it returns), not the function")
    return stages_naming("track_buffer", name, options)


def stages_naming(option: str, name: str, options: dict):
    """``track_stages(name, **options)`` whose notes name ``option`` for the track buffer
    (a command's ``--track-buffer``)."""
    create_tracker(name, **options)  # bad options fail here, not on a pipeline thread
    return lambda _source: [TrackStage(create_tracker(name, **options), option=option)]
