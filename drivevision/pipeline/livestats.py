"""What a live run shows once a second: rates, drops and latency over the last seconds."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass

import numpy as np

_HIST_MS = 60_000  # latencies above a minute count as a minute


@dataclass(frozen=True)
class Snapshot:
    """One source's state: rates in frames/s, ``dropped_pct`` over the whole run,
    latency (capture to render) in ms over the window, None before the first result."""

    input_fps: float
    detector_fps: float
    captured: int
    processed: int
    dropped: int
    latency_p50: float | None
    latency_p95: float | None
    reconnects: int = 0
    lost_s: float = 0.0
    state: str = ""

    @property
    def dropped_pct(self) -> float:
        return 100.0 * self.dropped / self.captured if self.captured else 0.0

    def format(self) -> str:
        latency = ("-" if self.latency_p50 is None
                   else f"{self.latency_p50:.0f}/{self.latency_p95:.0f} ms")
        text = (f"in {self.input_fps:4.1f} fps  det {self.detector_fps:4.1f} fps  "
                f"dropped {self.dropped_pct:3.0f}%  latency p50/p95 {latency}")
        if self.reconnects or self.lost_s:
            text += f"  reconnects {self.reconnects} ({self.lost_s:.1f} s lost)"
        return f"{text}  {self.state}" if self.state else text


class SourceStats:
    """Counters and sliding-window meters of one source; safe to use from several threads.

    Memory is bounded: the windows keep at most ``window_s`` seconds and ``max_events``.
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 20_000):
        self.window_s = window_s
        self._lock = threading.Lock()
        self._captures: deque[float] = deque(maxlen=max_events)
        self._results: deque[float] = deque(maxlen=max_events)
        self._latency: deque[tuple[float, float]] = deque(maxlen=max_events)
        self.captured = self.processed = self.dropped = 0
        self._histogram = np.zeros(_HIST_MS + 1, np.int64)  # whole-run latency, 1 ms bins

    def on_capture(self, now: float | None = None) -> None:
        with self._lock:
            self.captured += 1
            self._captures.append(time.monotonic() if now is None else now)

    def on_drop(self) -> None:
        with self._lock:
            self.dropped += 1

    def on_result(self, latency_ms: float, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            self.processed += 1
            self._results.append(now)
            self._latency.append((now, latency_ms))
            self._histogram[min(max(int(latency_ms), 0), _HIST_MS)] += 1

    def run_latency(self, q: float) -> float | None:
        """The ``q``-th percentile (0-100) of the whole run's latency in ms (1 ms bins)."""
        with self._lock:
            total = int(self._histogram.sum())
            if total == 0:
                return None
            cumulative = np.cumsum(self._histogram)
            return float(np.searchsorted(cumulative, q / 100.0 * total))

    def snapshot(self, reconnects: int = 0, lost_s: float = 0.0, state: str = "") -> Snapshot:
        now = time.monotonic()
        with self._lock:
            self._prune(now)
            latency = np.array([ms for _, ms in self._latency], dtype=np.float64)
            p50, p95 = (np.percentile(latency, [50, 95]) if latency.size else (None, None))
            return Snapshot(_rate(self._captures, now, self.window_s),
                            _rate(self._results, now, self.window_s), self.captured,
                            self.processed, self.dropped,
                            None if p50 is None else float(p50),
                            None if p95 is None else float(p95), reconnects, lost_s, state)

    def _prune(self, now: float) -> None:
        horizon = now - self.window_s
        for times in (self._captures, self._results):
            while times and times[0] < horizon:
                times.popleft()
        while self._latency and self._latency[0][0] < horizon:
            self._latency.popleft()


def _rate(times: deque, now: float, window_s: float) -> float:
    """Events per second in the window; 0 once events stop coming."""
    if len(times) < 2:
        return 0.0
    span = max(now - times[0], times[-1] - times[0])
    return (len(times) - 1) / span if span > 0 else 0.0
