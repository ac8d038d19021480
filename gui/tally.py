"""What a viewer run has shown: detections per class, each frame counted once, and the frames
each track was seen in. The worker thread counts; the GUI thread asks for a track's span."""

from __future__ import annotations

import threading
from collections import Counter

from drivevision.detections import Detections


class RunTally:
    """Counts since the media was opened (or the detector loaded): ``counts`` per class id,
    and per track id its first and last frame index and the frames it was seen in."""

    def __init__(self):
        self._lock = threading.Lock()  # spans are read from the GUI thread
        self._spans: dict[int, list[int]] = {}  # track id -> first, last frame, frames seen
        self.reset()

    def reset(self) -> None:
        """Count the classes from nothing again."""
        self.counts: Counter = Counter()  # shown detections per class, each frame once
        self._frame_counts: dict[int, Counter] = {}  # seekable media: per frame index

    def reset_tracks(self) -> None:
        """Forget every track's span (the tracker forgot the tracks)."""
        with self._lock:
            self._spans = {}

    def add(self, index: int, shown: Detections, detections: Detections, *,
            replaces: bool) -> None:
        """Count frame ``index``: the classes of the detections ``shown``, the tracks of all
        its ``detections``. With ``replaces`` (a file: a replay or a step shows a frame again)
        its class counts replace the frame's earlier ones instead of adding to them."""
        self._count_tracks(detections, index)
        counts = Counter(int(c) for c in shown.class_ids)
        if replaces:
            self.counts.subtract(self._frame_counts.get(index, Counter()))
            self._frame_counts[index] = counts
        self.counts.update(counts)
        self.counts = +self.counts  # drops classes back at 0

    def _count_tracks(self, detections: Detections, index: int) -> None:
        """Frame ``index`` saw the tracks of ``detections`` (nothing when it has no ids)."""
        if detections.track_ids is None:
            return
        with self._lock:
            for track_id in detections.track_ids.tolist():
                span = self._spans.setdefault(track_id, [index, index, 0])
                span[1], span[2] = index, span[2] + 1

    def span(self, track_id: int) -> tuple[int, int, int] | None:
        """First and last frame index of a track and the frames it was seen in, or None
        when it is not known (never seen, or reset since)."""
        with self._lock:
            span = self._spans.get(track_id)
            return None if span is None else (span[0], span[1], span[2])
