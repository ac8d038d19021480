"""Live sources: cameras and network streams that reopen themselves, and files paced in real time.

A ``StreamSource`` reads an OpenCV capture; when the stream ends, errors or stalls (no frame
for ``stall_timeout`` seconds) it closes the capture and reopens it with exponential backoff
(capped), forever or until ``max_reconnects`` attempts in a row have failed. Frame indices
go on after a reconnect as if the frames the outage lost had come (its length x the rate
of the frames before it, on the stream's own clock where it has one), so that a tracker
sees it as time gone by, as it sees frames a live run dropped, and forgets the tracks of an
outage longer than its buffer; every outage is kept as a ``Gap`` in ``gaps`` (its
``next_index`` past those frames), including one still going on when the run stops (see
``Source`` for ``reconnects``, ``outage_since``, ``gave_up`` and ``lost_seconds``).
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import ClassVar

import cv2

from drivevision.config import setting
from drivevision.errors import SourceError
from drivevision.io import limits
from drivevision.io.frames import Frame, Gap, Source
from drivevision.io.stream_times import Replays, StreamClock
from drivevision.io.uri import SourceURI, csi_pipeline, display_uri, ffmpeg_capture_options
from drivevision.labels import counted

_RATE_FRAMES = 31  # the newest frame times a stream's rate is measured over
_ENV_LOCK = threading.Lock()  # OPENCV_FFMPEG_CAPTURE_OPTIONS is read at open time, process-wide
_ENV = "OPENCV_FFMPEG_CAPTURE_OPTIONS"
_NO_PTS = -2.0 ** 62  # OpenCV's CAP_PROP_PTS below this is FFmpeg's AV_NOPTS_VALUE: no time


@dataclass(frozen=True)
class Reconnect:
    """When and how often a live source is reopened.

    ``max_reconnects`` None retries forever; 0 never reopens. Delays double from
    ``backoff_initial`` up to ``backoff_max`` seconds. Errors name the keywords
    (``drivevision live`` checks its ``--stall-timeout`` and ``--max-reconnects`` before),
    as does the note of a stream given up (``option``; the command's policy names its own).
    """

    option: ClassVar[str] = "max_reconnects"  # the setting a stream given up names

    stall_timeout: float = 5.0
    max_reconnects: int | None = None
    backoff_initial: float = 0.5
    backoff_max: float = 10.0

    def __post_init__(self) -> None:
        if self.stall_timeout <= 0:
            raise ValueError(f"Expected stall_timeout > 0 s, but got {self.stall_timeout}")
        if self.max_reconnects is not None and self.max_reconnects < 0:
            raise ValueError(f"Expected max_reconnects >= 0, but got {self.max_reconnects}")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise ValueError(f"Expected 0 < backoff_initial <= backoff_max, but got "
                             f"{self.backoff_initial} and {self.backoff_max}")

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnect attempt ``attempt`` (1, 2, ...)."""
        return min(self.backoff_max, self.backoff_initial * 2.0 ** (attempt - 1))


def open_capture(spec: SourceURI, *, width: int | None = None, height: int | None = None,
                 fps: float | None = None, timeout_s: float = 5.0) -> cv2.VideoCapture:
    """An opened OpenCV capture for a camera, network or GStreamer URI; SourceError if not."""
    if spec.kind in ("csi", "gst"):
        cap = _open_gstreamer(spec, width, height, fps)
    elif spec.kind == "camera":
        cap = _open_camera(spec, width, height, fps)
    else:
        ms = int(timeout_s * 1000)
        params = [cv2.CAP_PROP_OPEN_TIMEOUT_MSEC, ms, cv2.CAP_PROP_READ_TIMEOUT_MSEC, ms]
        with _ENV_LOCK:
            saved = os.environ.get(_ENV)
            options = ffmpeg_capture_options(spec.transport, saved)
            if options:
                os.environ[_ENV] = options
            try:
                cap = cv2.VideoCapture(str(spec.target), cv2.CAP_FFMPEG, params)
            finally:
                if saved is None:
                    os.environ.pop(_ENV, None)
                else:
                    os.environ[_ENV] = saved
    if not cap.isOpened():
        cap.release()
        raise SourceError(f"Cannot open {display_uri(spec.uri)}: {_why(spec)}")
    return cap


def within_limit(cap: cv2.VideoCapture, uri: str, max_pixels: int) -> cv2.VideoCapture:
    """``cap``, or SourceError (``cap`` released) when the frame size it announces is over
    ``max_pixels``: refused before a frame is read into memory."""
    width = int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
    problem = limits.pixel_problem(width, height, max_pixels)
    if problem:
        cap.release()
        raise SourceError(f"Cannot read {display_uri(uri)}: frame size {problem}")
    return cap


def _why(spec: SourceURI) -> str:
    if spec.kind == "camera":
        return "no such camera, it is busy, or no permission to read it"
    if spec.network:
        return ("no stream there (connection refused or timed out, or an answer this OpenCV's "
                "FFmpeg cannot decode)")
    return "GStreamer could not start the pipeline"


def _open_camera(spec: SourceURI, width, height, fps) -> cv2.VideoCapture:
    if isinstance(spec.target, str) and not Path(spec.target).exists():
        raise SourceError(f"Cannot open {display_uri(spec.uri)}: no such device")
    api = cv2.CAP_V4L2 if sys.platform.startswith("linux") else cv2.CAP_ANY
    cap = cv2.VideoCapture(spec.target, api)
    if cap.isOpened():
        cap.set(cv2.CAP_PROP_BUFFERSIZE, 1)  # fewer driver buffers: fresher frames
        for prop, value in ((cv2.CAP_PROP_FRAME_WIDTH, width), (cv2.CAP_PROP_FRAME_HEIGHT, height),
                            (cv2.CAP_PROP_FPS, fps)):
            if value:
                cap.set(prop, value)
    return cap


def _open_gstreamer(spec: SourceURI, width, height, fps) -> cv2.VideoCapture:
    if not cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER):
        raise SourceError(f"Cannot open {display_uri(spec.uri)}: this OpenCV "
                          f"({cv2.__version__}) was built without GStreamer; on a Jetson use "
                          "JetPack's OpenCV")
    pipeline = spec.target if spec.kind == "gst" else csi_pipeline(
        int(spec.target), width=width or 1280, height=height or 720, fps=fps or 30.0)
    return cv2.VideoCapture(pipeline, cv2.CAP_GSTREAMER)


class StreamSource(Source):
    """Frames from a camera or network stream, reopened after outages (see module doc).

    ``opener`` returns an opened capture or raises SourceError; it is called once here, so
    an unopenable source fails at once, and again for every reconnect attempt.
    ``captured_at`` is when a frame was read; ``timestamp_ms`` counts from the first frame
    read, in steps of the stream's own timestamps when ``stream_clock`` is True (an FFmpeg
    capture: HLS hands over a whole segment's frames at once) and it has them, else in the
    time between arrivals (MJPEG over HTTP, cameras); an outage adds the time it lasted.
    """

    can_lose_input = True

    def __init__(self, uri: str, opener: Callable[[], cv2.VideoCapture],
                 policy: Reconnect = Reconnect(), *, stream_clock: bool = False):
        self._cap = opener()
        fps = self._cap.get(cv2.CAP_PROP_FPS)
        super().__init__(uri, fps=fps if 0 < fps < 1000 else None, live=True)
        self.stream_clock = stream_clock
        self._opener, self.policy = opener, policy
        self._interrupt = threading.Event()
        self._attempts = 0
        self._iterating = False
        self.delivered = False  # a frame came since it opened (else it is not an outage)

    @property
    def outage(self) -> str:
        """As ``Source.outage``, but a stream that opened and has not given one frame yet
        says so ("OPENED, no frame decoded in 8 s, retrying"): it never worked, nothing
        was lost."""
        since = self.outage_since
        if self.delivered or since is None or self.gave_up:
            return super().outage
        return f"OPENED, no frame decoded in {time.monotonic() - since:.0f} s, retrying"

    def interrupt(self) -> None:
        self._interrupt.set()

    def __iter__(self) -> Iterator[Frame]:
        self._iterating = True
        try:
            yield from self._frames()
        finally:
            self._note_never_delivered()
            self._iterating = False
            self._release()

    def _frames(self) -> Iterator[Frame]:
        clock = StreamClock(time.monotonic(), self.policy.stall_timeout)
        index, outage = 0, None  # outage: (its start on the clock, reason) while no frame comes
        times: deque[float] = deque(maxlen=_RATE_FRAMES)  # the last frames' times, ms
        # only HLS reads a stream's last seconds again when reopened; an RTSP session's
        # times start afresh, and might meet those of a short one before
        replays = Replays(enabled=self.uri.lower().startswith(("http://", "https://")))
        while not self._interrupt.is_set():
            if self._cap is None and not self._reopen(outage, index, clock):
                break
            asked = time.monotonic()
            ok, image = self._cap.read()
            now = time.monotonic()
            if not ok or image is None or self._held_back(now - asked):
                self._release()
                clock.pos = None  # a new connection's timestamps start afresh
                if outage is None:
                    stalled = now - clock.at >= self.policy.stall_timeout * 0.9
                    outage = (clock.ms, self._failure(stalled))
                    self._attempts, self.outage_since = 0, clock.at
                continue
            pts = self._pts()
            if outage is not None and replays.replayed(pts):
                continue  # reopened, it hands over again frames it gave before
            seconds, ms = now - clock.at, clock.tick(now, self._position_ms(pts))
            if outage is not None:
                lost = self._lost_frames(seconds, times) if self.delivered else 0
                self._close_gap(outage, index - 1, index + lost, ms)
                index += lost
                outage = self.outage_since = None
                times.clear()  # the rate after a reconnect starts afresh
            times.append(ms)
            replays.add(pts)
            self.delivered = True
            yield Frame(index, ms, image, now)
            index += 1
        if outage is not None and not self.gave_up:
            self._stopped_in_gap(outage, index, clock)

    def _held_back(self, waited: float) -> bool:
        """Whether a frame that took ``waited`` seconds to read is one FFmpeg's decoder held
        back until its read timed out (a stream that froze: an HLS playlist that stopped
        growing hands out its decoder's last frames one per timeout, which would put off
        seeing the stall by a timeout per frame); it is dropped and the stream counts as
        stalled now."""
        return self.stream_clock and waited >= self.policy.stall_timeout

    def _pts(self) -> float | None:
        """The frame just read's presentation timestamp (FFmpeg's, as OpenCV gives it) where
        the stream has one; None for MJPEG over HTTP, which has none (OpenCV then counts
        frames at a made-up 25 fps), and for cameras."""
        if not self.stream_clock:
            return None
        pts = self._cap.get(cv2.CAP_PROP_PTS)
        return None if pts < _NO_PTS else pts

    def _position_ms(self, pts: float | None) -> float | None:
        """The frame just read's own time in ms (None where ``pts`` is)."""
        return None if pts is None else self._cap.get(cv2.CAP_PROP_POS_MSEC)

    def _lost_frames(self, seconds: float, times: deque[float]) -> int:
        """Frames an outage of ``seconds`` (from the last frame to the next) cost, besides
        the one expected next: at the median interval between the frames before it (on
        the stream's clock: an HLS segment's frames come at once), else the rate the
        stream claims; 0 when neither is known."""
        gaps = sorted(b - a for a, b in zip(times, list(times)[1:]))
        interval = gaps[len(gaps) // 2] / 1000.0 if gaps else (
            1.0 / self.fps if self.fps else 0.0)
        if interval <= 0:
            return 0
        return max(0, round(seconds / interval) - 1)

    def _failure(self, stalled: bool) -> str:
        if not self.delivered:
            return "no frame decoded since it opened"
        return f"no frame for {self.policy.stall_timeout:g} s" if stalled else \
            "the stream ended or failed"

    def _note_never_delivered(self) -> None:
        if self.gaps and not self.delivered:
            self.notes.append(
                f"{self.name}: opened, but no frame was ever decoded "
                f"({counted(self.gaps[-1].attempts, 'reconnect attempt')} in "
                f"{self.lost_seconds:.0f} s): a codec this OpenCV's FFmpeg cannot decode, or "
                "a stream that sends nothing")

    def _close_gap(self, outage, last_index: int, next_index: int, end_ms: float) -> None:
        self.gaps.append(Gap(last_index, next_index, outage[0], end_ms, outage[1],
                             self._attempts))
        self.reconnects += 1

    def _stopped_in_gap(self, outage, index: int, clock: StreamClock) -> None:
        """The run stopped during an outage: keep it, lost up to now, never came back."""
        self.gaps.append(Gap(index - 1, None, outage[0], clock.ms_at(time.monotonic()),
                             f"{outage[1]}; still lost when the run stopped", self._attempts))
        self.outage_since = None

    def _reopen(self, outage, index: int, clock: StreamClock) -> bool:
        """Open again after the backoff; False when interrupted or out of attempts."""
        limit = self.policy.max_reconnects
        while limit is None or self._attempts < limit:
            if self._interrupt.wait(self.policy.delay(self._attempts + 1)):
                return False  # stopped in the backoff wait: that attempt was never made
            self._attempts += 1
            try:
                self._cap = self._opener()
                return True
            except SourceError:
                continue
        self.gaps.append(Gap(index - 1, None, outage[0], clock.ms_at(time.monotonic()),
                             outage[1], self._attempts))
        self.gave_up = True
        self.notes.append(f"{self.name}: {outage[1]}; gave up after "
                          f"{counted(self._attempts, 'reconnect attempt')} "
                          f"({setting(self.policy.option, str(limit), quote=False)})")
        return False

    def _release(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            cap.release()

    def close(self) -> None:
        """Interrupt; the capture is released here, or by the reading thread when it is in
        the middle of a read (releasing it under a read would crash OpenCV)."""
        self._interrupt.set()
        if not self._iterating:
            self._release()


def paced(frames: Iterable[Frame], speed: float, stop: threading.Event) -> Iterator[Frame]:
    """``frames`` released when their timestamps are due at ``speed`` x real time, counted
    from the first, each stamped ``captured_at`` then; ends early once ``stop`` is set."""
    if speed <= 0:
        raise ValueError(f"Expected a playback speed > 0, but got {speed}")
    t0 = first_ms = None
    for frame in frames:
        if t0 is None:
            t0, first_ms = time.monotonic(), frame.timestamp_ms
        due = t0 + (frame.timestamp_ms - first_ms) / 1000.0 / speed
        if stop.wait(max(0.0, due - time.monotonic())):
            return
        yield replace(frame, captured_at=time.monotonic())


class RealtimeSource(Source):
    """A file or folder source paced at ``speed`` x its own frame rate, with live semantics.

    Frame ``i`` is handed out when its timestamp is due on the wall clock, with
    ``captured_at`` stamped then, as a camera would deliver it; ``interrupt()`` (or
    ``close()``) ends a wait at once. ``decode_ms`` is the read of the frame handed out,
    without the wait. Subclasses may pace other frames of ``inner`` by
    overriding ``_frames`` (the viewer plays from any frame).
    """

    def __init__(self, inner: Source, speed: float = 1.0):
        if speed <= 0:
            raise ValueError(f"Expected a playback speed > 0, but got {speed}")
        super().__init__(inner.uri, fps=inner.fps, frame_count=inner.frame_count, live=True,
                         notes=inner.notes)
        self.about = inner.about
        self.inner, self.speed = inner, speed
        self._interrupt = threading.Event()

    def _frames(self) -> Iterable[Frame]:
        return self.inner

    def keep_range(self, start: float | None = None, end: float | None = None) -> None:
        """Keep a time range of the file or folder (``Source.keep_range``; a stride is
        refused, a paced file drops frames by itself): paced from its first frame in it."""
        self.inner.keep_range(start, end)
        self.start_s, self.end_s = self.inner.start_s, self.inner.end_s

    def interrupt(self) -> None:
        self._interrupt.set()

    def __iter__(self) -> Iterator[Frame]:
        return paced(self._timed(self._frames()), self.speed, self._interrupt)

    def _timed(self, frames: Iterable[Frame]) -> Iterator[Frame]:
        """``frames``, each one's read timed into ``decode_ms`` (``paced`` reads a frame,
        then waits until it is due, in the same call for the next frame)."""
        frames = iter(frames)
        while True:
            start = time.perf_counter()
            frame = next(frames, None)
            if frame is None:
                return
            self.decode_ms = (time.perf_counter() - start) * 1000.0
            yield frame

    def close(self) -> None:
        self._interrupt.set()
        self.inner.close()
