"""Rate meters with bounded memory: ``RateMeter`` for events (detector results),
``ArrivalRate`` for frames coming in (median intervals, bursts left out)."""

from __future__ import annotations

import threading
import time
from collections import deque

import numpy as np


class RateMeter:
    """Events per second over the last ``window_s`` seconds (at most ``max_events`` kept).

    Thread-safe. The rate falls to 0 once events stop coming: the span runs to ``now``.
    """

    def __init__(self, window_s: float = 5.0, max_events: int = 20_000):
        self.window_s = window_s
        self._times: deque[float] = deque(maxlen=max_events)
        self._lock = threading.Lock()

    def tick(self, now: float | None = None) -> None:
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)

    def rate(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            while self._times and self._times[0] < now - self.window_s:
                self._times.popleft()
            if len(self._times) < 2:
                return 0.0
            span = max(now - self._times[0], self._times[-1] - self._times[0])
            return (len(self._times) - 1) / span if span > 0 else 0.0


class ArrivalRate(RateMeter):
    """The rate frames arrive at, in frames/s: one over the median interval between the
    arrivals of the last ``window_s`` seconds (at least the last ``min_events``, however old),
    or None while that cannot be told yet.

    A count over a window reads a burst as a rate: a stream's first frames, buffered while
    it opened and the model loaded, come together. The median ignores bursts and late frames
    that are a minority; a backlog that opens the window is left out whole (the leading
    intervals under a quarter of the newest five's median). Until the intervals left span
    half the window the rate is None, not known: a status line shows a settled rate, never
    thousands of fps read off a burst. Once settled it stays known: when frames stop (an
    outage, the run's end) the last rate holds until, after ``window_s`` seconds and twice
    its interval, it falls to 0; when they come again, an interval over ``window_s`` among
    shorter ones is that outage, not the flow, and the last rate holds until the new
    frames tell theirs. Where each arrival comes with the frame's own time (``tick``'s
    ``stamp_s``), the intervals are those times' (HLS hands over a segment at once). Thread-safe.
    """

    def __init__(self, window_s: float = 2.0, min_events: int = 3, max_events: int = 2_000):
        super().__init__(window_s, max_events)
        self.min_events = min_events
        self._stamps: deque[float | None] = deque(maxlen=max_events)
        self._settled: float | None = None  # the last known interval, s

    def tick(self, now: float | None = None, stamp_s: float | None = None) -> None:
        """A frame arrived at ``now``; ``stamp_s``: its own time in seconds where the stream
        has one that runs at real speed (HLS: a segment's frames arrive at once), which the
        intervals are then taken from."""
        with self._lock:
            self._times.append(time.monotonic() if now is None else now)
            self._stamps.append(stamp_s)

    def rate(self, now: float | None = None) -> float | None:
        """Frames/s now; 0.0 once frames stopped coming; None while not known yet."""
        now = time.monotonic() if now is None else now
        with self._lock:
            while len(self._times) > self.min_events and self._times[0] < now - self.window_s:
                self._times.popleft()
                self._stamps.popleft()
            times = np.array(self._times, dtype=np.float64)
            stamps = list(self._stamps)
        if times.size == 0:
            return None
        steps = np.diff(np.array(stamps, dtype=np.float64)) if None not in stamps else (
            np.diff(times))
        gaps = steps > self.window_s
        if gaps.any() and not gaps.all():  # an outage between frames: no interval of the flow
            steps = steps[~gaps]
        steps = _after_backlog(steps)
        if steps.size >= self.min_events - 1 and steps.sum() >= self.window_s / 2:
            self._settled = float(np.median(steps))
        interval = self._settled or 0.0
        if now - times[-1] > max(self.window_s, 2 * interval):
            return 0.0
        return 1.0 / interval if interval > 0 else None


def _after_backlog(steps: np.ndarray) -> np.ndarray:
    """``steps`` (intervals between frames, s) from the end of a backlog that opens them:
    the leading ones under a quarter of the median of the newest five (the flow now)."""
    newest = float(np.median(steps[-5:])) if steps.size else 0.0
    return steps[np.cumsum(steps >= newest / 4) > 0]  # from the first that is not short
