"""What every source yields and what every source is: ``Frame`` and ``Source`` (and the
``Gap`` a live source records for an outage).

Kept apart from the readers so that sinks, stages and the viewer depend on these types
only, not on OpenCV or the file readers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

# Given a frame's width and height: why it cannot be used (one phrase), or None.
FrameCheck = Callable[[int, int], "str | None"]


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    ``timestamp_ms`` is the frame's position in its stream; ``captured_at`` is
    ``time.monotonic()`` when it was read, the start of its capture-to-render latency.
    ``file`` names the image file of a frame from an image input, relative to the input
    folder (for a single image, its own name); None for a video or live frame. Detections
    are traced back to their image by it: ``index`` leaves gaps where images are skipped.
    """

    index: int
    timestamp_ms: float
    image: np.ndarray
    captured_at: float
    source_id: int = 0
    file: str | None = None


@dataclass(frozen=True)
class Gap:
    """An outage: no frame after ``last_index`` until ``next_index`` (None: it never came back,
    because the source gave up or the run stopped first; ``end_ms`` is then that moment).

    ``start_ms``/``end_ms`` are on the stream's own clock (``Frame.timestamp_ms``).
    """

    last_index: int
    next_index: int | None
    start_ms: float
    end_ms: float
    reason: str
    attempts: int

    @property
    def seconds(self) -> float:
        return (self.end_ms - self.start_ms) / 1000.0


@dataclass
class Source:
    """Base of every source: iterate for frames, ``close()`` when done (or use ``with``).

    ``notes`` collects what the user should hear at the end (e.g. a truncated file).

    The state of a source that can lose its input (a camera or network stream:
    ``can_lose_input`` True), read while it runs; a source that cannot (a file, a folder,
    also when paced in real time) keeps these neutral values:

    - ``gaps``: every outage so far, in order, as ``Gap`` (the list grows while the source
      runs; sinks may hold it); none for files.
    - ``reconnects``: outages the source came back from; 0 for files.
    - ``outage_since``: ``time.monotonic()`` when the current outage began, None while
      frames come (always None for files).
    - ``gave_up``: True once the source stopped trying to reopen (the input is lost for
      good); never for files.

    ``frame_check`` (set before iterating; files and folders apply it) refuses frames of a
    size the consumer cannot take, e.g. ``Detector.size_problem``: they are skipped with a
    note, as damaged ones are.

    ``frame_stride`` (set with ``keep_every`` before iterating; files and folders, where
    ``can_stride`` is True): only frames whose index is a multiple of it are handed out; the
    others are read past as cheaply as the input allows and counted in ``passed``.

    ``decode_ms``: how long the frame last handed out took to read and decode, for a live
    source that can tell that apart from the wait for the frame to be due (a file paced in
    real time); None where the two come together (a camera or stream: OpenCV decodes a
    frame in the read that waits for it).

    ``stream_clock``: True for a network stream whose ``timestamp_ms`` follow its own
    timestamps (HLS, RTSP), which run at real speed while its frames may arrive in bursts
    (an HLS segment at once): its rate and its video's timing are taken from them, not from
    ``captured_at``.
    """

    can_lose_input: ClassVar[bool] = False
    can_stride: ClassVar[bool] = False

    uri: str
    fps: float | None = None
    frame_count: int | None = None
    live: bool = False
    notes: list[str] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list, init=False, repr=False)
    reconnects: int = field(default=0, init=False, repr=False)
    outage_since: float | None = field(default=None, init=False, repr=False)
    gave_up: bool = field(default=False, init=False, repr=False)
    frame_check: FrameCheck | None = field(default=None, init=False, repr=False)
    decode_ms: float | None = field(default=None, init=False, repr=False)
    frame_stride: int = field(default=1, init=False, repr=False)
    passed: int = field(default=0, init=False, repr=False)
    stream_clock: bool = field(default=False, init=False, repr=False)

    @property
    def outage(self) -> str:
        """The input's state for a status line: "" while frames come (always for files),
        "LOST 8 s, reconnecting" during an outage, "gave up" once it is lost for good."""
        if self.gave_up:
            return "gave up"
        since = self.outage_since
        return "" if since is None else f"LOST {time.monotonic() - since:.0f} s, reconnecting"

    @property
    def lost_seconds(self) -> float:
        """Seconds without frames over every outage in ``gaps`` (0.0 for files)."""
        return sum(g.seconds for g in self.gaps)

    def keep_every(self, stride: int) -> None:
        """Hand out only frames 0, ``stride``, 2 ``stride``, ... (by index in the input).

        ValueError for a stride below 1, and for a stride above 1 on a source that cannot
        keep it: a camera or stream (or a file paced in real time) drops frames by itself."""
        if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
            raise ValueError(f"Expected a frame stride >= 1 (an int), but got {stride!r}")
        if stride > 1 and not self.can_stride:
            raise ValueError(f"A frame stride takes a video file or a folder of images, but "
                             f"{self.uri} is read live (a camera, a stream or a file paced in real "
                             "time), which drops frames by itself")
        self.frame_stride = stride

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        """Ask a blocked or waiting ``__iter__`` (on another thread) to end soon."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
