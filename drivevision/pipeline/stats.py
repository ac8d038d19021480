"""Per-stage timers and rate meters with bounded memory (runs may last for hours)."""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

import numpy as np

# "capture" replaces "decode" for live sources: their reads include waiting for the frame.
PIPELINE_STAGES = ("decode", "capture", "preprocess", "inference", "postprocess", "render",
                   "encode")


class StageStats:
    """Mean over the whole run and p95 over the newest ``window`` samples, per stage."""

    def __init__(self, window: int = 4096):
        self._count: dict[str, int] = {}
        self._total: dict[str, float] = {}
        self._recent: dict[str, deque] = {}
        self._window = window

    def add(self, timings: dict[str, float]) -> None:
        for stage, ms in timings.items():
            if stage not in self._recent:
                self._recent[stage] = deque(maxlen=self._window)
                self._count[stage], self._total[stage] = 0, 0.0
            self._recent[stage].append(ms)
            self._count[stage] += 1
            self._total[stage] += ms

    def mean(self, stage: str) -> float:
        return self._total.get(stage, 0.0) / max(self._count.get(stage, 0), 1)

    def p95(self, stage: str) -> float:
        recent = self._recent.get(stage)
        return float(np.percentile(recent, 95)) if recent else 0.0

    def stages(self) -> list[str]:
        known = [s for s in PIPELINE_STAGES if s in self._recent]
        return known + [s for s in self._recent if s not in known]


class RateMeter:
    """Events per second over the last ``window`` events (monotonic clock)."""

    def __init__(self, window: int = 60):
        self._times: deque[float] = deque(maxlen=window)

    def tick(self, now: float | None = None) -> None:
        self._times.append(time.monotonic() if now is None else now)

    @property
    def rate(self) -> float:
        if len(self._times) < 2:
            return 0.0
        span = self._times[-1] - self._times[0]
        return (len(self._times) - 1) / span if span > 0 else 0.0


@dataclass
class RunSummary:
    """What a finished run reports: counts, per-class totals and stage timings."""

    frames: int
    seconds: float
    class_counts: dict[str, int]
    stages: StageStats
    notes: list[str]
    interrupted: bool = False

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def format(self) -> str:
        lines = [f"{self.frames} frames in {self.seconds:.1f} s ({self.fps:.2f} fps end to end)"
                 + (", interrupted" if self.interrupted else "")]
        total = sum(self.class_counts.values())
        counts = ", ".join(f"{n} {c}" for c, n in sorted(self.class_counts.items(),
                                                          key=lambda kv: -kv[1]))
        lines.append(f"{total} detections" + (f": {counts}" if counts else ""))
        lines.append(f"{'stage':<12}{'mean ms':>10}{'p95 ms':>10}")
        for stage in self.stages.stages():
            lines.append(f"{stage:<12}{self.stages.mean(stage):>10.1f}{self.stages.p95(stage):>10.1f}")
        return "\n".join(lines)
