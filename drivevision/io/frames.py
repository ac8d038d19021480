"""What every source yields and what every source is: ``Frame`` and ``Source`` (and the
``Gap`` a live source records for an outage).

Kept apart from the readers so that sinks, stages and the viewer depend on these types
only, not on OpenCV or the file readers.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from drivevision.io.uri import display_uri
from drivevision.labels import clock

# A frame is in a time range when its time is at or after the start, less this (milliseconds):
# a start typed in seconds meets the frame's time read from the container's exact clock.
RANGE_SLACK_MS = 1e-3

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

    def __repr__(self) -> str:  # the image as its dtype and shape, not thousands of numbers
        image = getattr(self.image, "shape", None)
        image = f"<{self.image.dtype} {image}>" if image is not None else repr(self.image)
        return (f"Frame(index={self.index}, timestamp_ms={self.timestamp_ms}, image={image}, "
                f"source_id={self.source_id}, file={self.file!r})")


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

    ``uri`` is what was opened, as given (a camera's URL with its password); ``name`` is
    what to show, log or write of it (``uri.display_uri``: the password and secret query
    values masked).

    ``notes`` collects what the user should hear at the end (e.g. a truncated file);
    ``about``, what to say once, when it opens, that is no fault of the input (which of its
    video streams is read).

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

    ``start_s``/``end_s`` (set with ``keep_range`` before iterating; files and folders):
    only frames whose time in the input is at or after ``start_s`` and before ``end_s`` are
    read, each keeping its index and time in the input; None: from the first frame, to the
    last. ``span`` is then the first and last index read in the range (those a frame stride
    passed included), None until one is; ``lead_in`` counts the frames decoded before the
    start (a video seeks to the keyframe before it and decodes from there).

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
    about: list[str] = field(default_factory=list, init=False, repr=False)
    gaps: list[Gap] = field(default_factory=list, init=False, repr=False)
    reconnects: int = field(default=0, init=False, repr=False)
    outage_since: float | None = field(default=None, init=False, repr=False)
    gave_up: bool = field(default=False, init=False, repr=False)
    frame_check: FrameCheck | None = field(default=None, init=False, repr=False)
    decode_ms: float | None = field(default=None, init=False, repr=False)
    frame_stride: int = field(default=1, init=False, repr=False)
    passed: int = field(default=0, init=False, repr=False)
    stream_clock: bool = field(default=False, init=False, repr=False)
    start_s: float | None = field(default=None, init=False, repr=False)
    end_s: float | None = field(default=None, init=False, repr=False)
    span: tuple[int, int] | None = field(default=None, init=False, repr=False)
    lead_in: int = field(default=0, init=False, repr=False)

    @property
    def name(self) -> str:
        """``uri`` as it may be shown or written: a URL's password and tokens masked."""
        return display_uri(self.uri)

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
                             f"{self.name} is read live (a camera, a stream or a file paced in "
                             "real time), which drops frames by itself")
        self.frame_stride = stride

    def keep_range(self, start: float | None = None, end: float | None = None) -> None:
        """Hand out only frames at or after ``start`` and before ``end`` (seconds in the input,
        as ``Frame.timestamp_ms`` counts them; None: from the first frame, to the last).

        ValueError for a negative time, an ``end`` not after ``start``, a range on a source
        that cannot keep one (a camera or stream: ``can_stride`` False), a start at or past
        the input's length and a range that holds no frame, or none the frame stride (set
        before, with ``keep_every``) keeps (when the length is known)."""
        for name, value in (("start", start), ("end", end)):
            if value is not None and not 0 <= value < math.inf:
                raise ValueError(f"Expected a {name} time >= 0 seconds, but got {value!r}")
        if start is not None and end is not None and end <= start:
            raise ValueError(f"Expected the end after the start, but got start {clock(start)} "
                             f"and end {clock(end)}")
        if (start is not None or end is not None) and not self.can_stride:
            raise ValueError(f"A time range takes a video file or a folder of images, but "
                             f"{self.name} is read live (a camera, a stream or a file paced in "
                             "real time)")
        length = self.duration_s
        if start is not None and length is not None and start >= length:
            raise ValueError(f"The start, {clock(start)}, is at or past the end of {self.name}, "
                             f"which lasts {clock(length)}")
        self.start_s, self.end_s = start or None, end
        first, stop = self.range_indices()
        if stop is not None and first >= stop:
            self.start_s = self.end_s = None
            raise ValueError(f"No frame of {self.name} lies in {range_text(start or 0, end)}: "
                             f"it has a frame every {1 / self.fps:g} s")
        stride = self.frame_stride
        if stop is not None and -(-first // stride) * stride >= stop:
            self.start_s = self.end_s = None
            raise ValueError(stride_miss(self.name, start or 0, end, (first, stop - 1), stride))

    @property
    def duration_s(self) -> float | None:
        """The input's length in seconds, when known: its frame count over its frame rate."""
        if self.frame_count is None or not self.fps:
            return None
        return self.frame_count / self.fps

    def range_indices(self) -> tuple[int, int | None]:
        """The indices from the first frame in the time range to the first past it (None:
        the count is not known), at ``fps`` (exact for images and constant-frame-rate video)."""
        start_ms, end_s = (self.start_s or 0) * 1000, self.end_s
        if not self.fps:
            return 0, self.frame_count
        first = max(0, math.ceil((start_ms - RANGE_SLACK_MS) * self.fps / 1000))
        stop = (None if end_s is None else
                math.ceil((end_s * 1000 - RANGE_SLACK_MS) * self.fps / 1000))
        if self.frame_count is not None:
            stop = self.frame_count if stop is None else min(stop, self.frame_count)
        return first, stop

    @property
    def ranged(self) -> bool:
        """True when ``keep_range`` left frames out at either end."""
        return self.start_s is not None or self.end_s is not None

    def in_range(self, ms: float) -> int:
        """-1 for a time before the range, 1 past it, 0 in it."""
        if self.start_s is not None and ms < self.start_s * 1000 - RANGE_SLACK_MS:
            return -1
        if self.end_s is not None and ms >= self.end_s * 1000 - RANGE_SLACK_MS:
            return 1
        return 0

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


def range_text(start: float, end: float | None) -> str:
    """A time range as the summary says it: "1:30 to 3:00", "1:30 to the end"."""
    return f"{clock(start)} to {'the end' if end is None else clock(end)}"


def stride_miss(uri: str, start: float, end: float | None, span: tuple[int, int],
                stride: int) -> str:
    """Why a time range gives no frame: those it holds (``span``, first and last index) are
    none of them a multiple of the frame stride."""
    first, last = span
    frames = f"frame {first}" if first == last else f"frames {first}-{last}"
    return (f"No frame of {uri} in {range_text(start, end)} is one the frame stride keeps: "
            f"the range holds {frames}, the stride keeps multiples of {stride}")
