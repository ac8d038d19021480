"""A network stream's own times: the clock its frames are timed by, and the frames a
reconnect hands over again."""

from __future__ import annotations

from collections import deque

_REMEMBERED = 600  # frame times kept: an HLS playlist's window (3 segments of 6 s at 30 fps)


class StreamClock:
    """A stream's frame times in ms from its first frame: between two frames of one
    connection, the step of the stream's own timestamps (``pos``, ms) where it has them, else
    (no timestamps, an outage, a step back or one ahead by more than ``max_jump_s`` and the
    time that passed) the time that passed between their arrivals."""

    def __init__(self, start: float, max_jump_s: float):
        self.ms, self.at, self.pos = 0.0, start, None  # the last frame's time, arrival, pos
        self.max_jump_ms = max_jump_s * 1000.0

    def ms_at(self, now: float) -> float:
        """The clock at ``now`` (``time.monotonic()``) when no frame came since the last."""
        return self.ms + (now - self.at) * 1000.0

    def tick(self, now: float, pos: float | None) -> float:
        """The time of a frame that arrived at ``now``, with its own time ``pos`` (or None)."""
        step = (now - self.at) * 1000.0
        if pos is not None and self.pos is not None and \
                0 < pos - self.pos <= max(step, self.max_jump_ms):
            step = pos - self.pos
        self.ms, self.at, self.pos = self.ms + step, now, pos
        return self.ms


class Replays:
    """The frames a reopened stream hands over again: a frozen HLS stream's playlist, read
    anew, starts again at the segments already read (the same 1-2 s, at every reconnect,
    as if new). They carry the same presentation timestamps (FFmpeg's, per frame) as frames
    already handed out; ``replayed`` tells them, until the first frame that is new (an
    encoder that restarted with the very same times is held back at most ``_REMEMBERED``
    frames)."""

    def __init__(self, *, enabled: bool = True):
        self.enabled = enabled
        self._order: deque[float] = deque(maxlen=_REMEMBERED)
        self._seen: set[float] = set()

    def add(self, pts: float | None) -> None:
        """A frame handed out, with its own timestamp (None: it has none)."""
        if pts is None or not self.enabled:
            return
        if len(self._order) == self._order.maxlen:
            self._seen.discard(self._order[0])
        self._order.append(pts)
        self._seen.add(pts)

    def replayed(self, pts: float | None) -> bool:
        return pts is not None and pts in self._seen
