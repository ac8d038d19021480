"""Stand-in detectors and sources for pipeline tests: they quack like the real ones."""

from __future__ import annotations

import threading
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
    """Quacks like ``drivevision.detector.Detector``; the one stand-in detector of the tests.

    Each call waits for ``gate`` (when given, up to 20 s: a detector stuck in a long call),
    takes ``delay_s``, and returns ``detections`` for every frame; by default one car whose
    box x2 is 10 + the frame's mean pixel, so results can be matched to their frames. Call
    number ``fail_on_call`` (from 1) raises RuntimeError; the calls after it work again.
    ``calls`` counts the calls.
    """

    names = COCO_NAMES

    def __init__(self, delay_s: float = 0.0, *, detections: Detections | None = None,
                 fail_on_call: int | None = None, gate: threading.Event | None = None):
        self.delay_s, self.detections, self.fail_on_call = delay_s, detections, fail_on_call
        self.gate, self.calls = gate, 0

    def infer_timed(self, frames):
        start = time.perf_counter()
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(20)
        if self.calls == self.fail_on_call:
            raise RuntimeError("stand-in detector failed")
        time.sleep(self.delay_s)
        dets = [Detections([[1, 1, 10 + float(f.mean()), 20]], [0.9], [3])
                if self.detections is None else self.detections for f in frames]
        ms = (time.perf_counter() - start) * 1000.0
        return dets, {"preprocess": 0.0, "dense_a": ms, "postprocess": 0.0}

    def infer(self, frames):
        return self.infer_timed(frames)[0]


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
