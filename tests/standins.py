"""Stand-in detectors and sources for pipeline tests: they quack like the real ones."""

from __future__ import annotations

import time

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
