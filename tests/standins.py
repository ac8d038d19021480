"""Stand-in detectors and sources for pipeline tests: they quack like the real ones."""

from __future__ import annotations

import time

import cv2
import numpy as np

from drivevision.detections import Detections
from drivevision.io.frames import Frame, Source
from drivevision.labels import COCO_NAMES


def count_frames(path) -> int:
    """Frames OpenCV can decode from a video file, read to the end."""
    cap = cv2.VideoCapture(str(path))
    count = 0
    while cap.read()[0]:
        count += 1
    cap.release()
    return count


class FixedDetector:
    """Takes ``delay_s`` per call and finds one car whose box encodes the frame's mean."""

    names = COCO_NAMES

    def __init__(self, delay_s: float = 0.0, fail_on_call: int | None = None):
        self.delay_s, self.fail_on_call, self.calls = delay_s, fail_on_call, 0

    def infer_timed(self, frames):
        self.calls += 1
        if self.fail_on_call is not None and self.calls >= self.fail_on_call:
            raise RuntimeError("detector exploded")
        time.sleep(self.delay_s)
        dets = [Detections([[1, 1, 10 + float(f.mean()), 20]], [0.9], [3]) for f in frames]
        return dets, {"preprocess": 0.0, "dense_a": self.delay_s * 1000, "postprocess": 0.0}

    def infer(self, frames):
        return self.infer_timed(frames)[0]


class ArraySource(Source):
    """``n`` frames of (h, w) whose pixel values encode their index; optionally fails."""

    def __init__(self, n: int, h: int = 48, w: int = 64, fail_at: int | None = None):
        super().__init__("array://", fps=10.0, frame_count=n)
        self.n, self.h, self.w, self.fail_at = n, h, w, fail_at

    def __iter__(self):
        for i in range(self.n):
            if i == self.fail_at:
                raise OSError("camera unplugged")
            image = np.full((self.h, self.w, 3), i % 256, np.uint8)
            yield Frame(i, i * 100.0, image, time.monotonic())
