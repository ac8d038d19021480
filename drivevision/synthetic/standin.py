"""A stand-in detector: the pipeline's contract without a model, for tests and benchmarks
that measure everything but the detector (``scripts/bench_pipeline.py``, the test suite)."""

from __future__ import annotations

import threading
import time

from drivevision.detections import Detections
from drivevision.labels import COCO_NAMES


class StandInDetector:
    """Quacks like ``drivevision.detector.Detector`` (``names``, ``infer_timed``, ``infer``).

    Each call waits for ``gate`` (when given, up to 20 s: a detector stuck in a long call),
    takes ``delay_s`` plus ``per_frame_s`` for every frame, and returns ``detections`` for
    every frame; by default one car whose box x2 is 10 + the frame's mean pixel, so results
    can be matched to their frames. Call number ``fail_on_call`` (from 1) raises
    RuntimeError; the calls after it work again. ``calls`` counts the calls.
    """

    names = COCO_NAMES

    def __init__(self, delay_s: float = 0.0, *, per_frame_s: float = 0.0,
                 detections: Detections | None = None, fail_on_call: int | None = None,
                 gate: threading.Event | None = None):
        self.delay_s, self.per_frame_s, self.detections = delay_s, per_frame_s, detections
        self.fail_on_call, self.gate, self.calls = fail_on_call, gate, 0

    def infer_timed(self, frames) -> tuple[list[Detections], dict[str, float]]:
        start = time.perf_counter()
        self.calls += 1
        if self.gate is not None:
            self.gate.wait(20)
        if self.calls == self.fail_on_call:
            raise RuntimeError("stand-in detector failed")
        time.sleep(self.delay_s + self.per_frame_s * len(frames))
        dets = [Detections([[1, 1, 10 + float(f.mean()), 20]], [0.9], [3])
                if self.detections is None else self.detections for f in frames]
        ms = (time.perf_counter() - start) * 1000.0
        return dets, {"preprocess": 0.0, "dense_a": ms, "postprocess": 0.0}

    def infer(self, frames) -> list[Detections]:
        return self.infer_timed(frames)[0]
