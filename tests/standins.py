"""Stand-in detectors and sources for pipeline tests: they quack like the real ones."""

from __future__ import annotations

import threading
import time
import types

import cv2
import numpy as np

from drivevision.io.frames import Frame, Source
from drivevision.synthetic.standin import StandInDetector


def count_frames(path) -> int:
    """Frames OpenCV can decode from a video file, read to the end."""
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


def x264_options(path) -> dict[str, str]:
    """The settings x264 wrote into a video's first packet ("cabac=1 ref=2 ..." after the
    preset expanded), as a dict."""
    import av

    with av.open(str(path)) as container:
        packet = bytes(next(container.demux(video=0)))
    text = packet[packet.index(b"options: "):].split(b"\0")[0].decode()
    return dict(item.split("=", 1) for item in text.removeprefix("options: ").split()
                if "=" in item)


# The one stand-in detector lives in the library, where the benchmark scripts use it too.
FixedDetector = StandInDetector


class ArraySource(Source):
    """``n`` frames of (h, w) whose pixel values encode their index; optionally fails.

    ``live`` makes it a camera (the pipeline keeps its newest frame), one frame every
    ``period`` seconds at most.
    """

    def __init__(self, n: int, h: int = 48, w: int = 64, fail_at: int | None = None, *,
                 live: bool = False, period: float = 0.0):
        super().__init__("array://", fps=10.0, frame_count=None if live else n, live=live)
        self.n, self.h, self.w, self.fail_at, self.period = n, h, w, fail_at, period

    def __iter__(self):
        for i in range(self.n):
            if self.period:
                time.sleep(self.period)
            if i == self.fail_at:
                raise OSError("camera unplugged")
            image = np.full((self.h, self.w, 3), i % 256, np.uint8)
            yield Frame(i, i * 100.0, image, time.monotonic())


class BurstyStream(Source):
    """A live stream with its own clock (``stream_clock``), as HLS hands one over: frames
    ``step_ms`` apart in their own time (``timestamp_ms``) arrive a segment of ``per_burst``
    at a time, ``within_s`` apart, the next segment ``gap_s`` later. Frame 0 comes at once,
    the others once ``go`` is set. The pixel values encode the frame's index."""

    def __init__(self, bursts: int, per_burst: int, *, step_ms: float = 100.0,
                 within_s: float = 0.02, gap_s: float = 0.4):
        super().__init__("hls://bursty", fps=1000.0 / step_ms, live=True)
        self.stream_clock = True
        self.bursts, self.per_burst, self.step_ms = bursts, per_burst, step_ms
        self.within_s, self.gap_s = within_s, gap_s
        self.go, self._stop = threading.Event(), threading.Event()

    def __iter__(self):
        yield self._frame(0)
        while not self.go.wait(0.05):
            if self._stop.is_set():
                return
        for i in range(1, self.bursts * self.per_burst + 1):
            if self._stop.wait(self.gap_s if i % self.per_burst == 1 else self.within_s):
                return
            yield self._frame(i)

    def _frame(self, i: int) -> Frame:
        return Frame(i, i * self.step_ms, np.full((48, 64, 3), i, np.uint8), time.monotonic())

    def interrupt(self) -> None:
        self._stop.set()


class ScriptedStream:
    """A network stream on a fake clock, for ``StreamSource`` (``opener`` and ``clock``).

    ``runs`` gives each connection: (frames it sends, seconds between them, seconds the
    reconnect that opens it takes); the stream claims ``fps``. Each read moves the clock on
    by its frame's interval; a connection out of frames fails its next read, as a stream
    that ended does. Patch ``drivevision.io.streams.time`` with ``clock``. ``stamps``: for
    each connection, its frames' own times in ms (FFmpeg's, ``CAP_PROP_POS_MSEC``); without
    them the frames have none (``CAP_PROP_PTS`` is FFmpeg's "no timestamp"), as MJPEG's.
    """

    def __init__(self, runs: list[tuple[int, float, float]], fps: float = 0.0,
                 stamps: list[list[float]] | None = None):
        self.runs, self.fps, self.now, self._opened = list(runs), fps, 100.0, 0
        self.stamps = stamps
        self.clock = types.SimpleNamespace(monotonic=lambda: self.now,
                                           perf_counter=lambda: self.now)

    def opener(self):
        from drivevision.errors import SourceError

        if self._opened == len(self.runs):
            raise SourceError("gone")
        frames, period, opening = self.runs[self._opened]
        stamps = self.stamps[self._opened] if self.stamps else None
        self._opened += 1
        self.now += opening
        return _Connection(self, frames, period, stamps)


class _Connection:
    def __init__(self, stream: ScriptedStream, frames: int, period: float,
                 stamps: list[float] | None = None):
        self.stream, self.left, self.period, self.stamps = stream, frames, period, stamps
        self.read_count = 0

    def get(self, prop):
        if prop == cv2.CAP_PROP_PTS:  # the frame's own time, in the stamps' unit
            return float(self.stamps[self.read_count - 1]) if self.stamps else -2.0 ** 63
        if prop == cv2.CAP_PROP_POS_MSEC and self.stamps:
            return self.stamps[self.read_count - 1]
        return self.stream.fps if prop == cv2.CAP_PROP_FPS else 0.0

    def read(self):
        if self.left == 0:
            return False, None
        self.left -= 1
        self.read_count += 1
        self.stream.now += self.period
        return True, np.zeros((8, 8, 3), np.uint8)

    def release(self):
        pass
