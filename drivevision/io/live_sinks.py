"""Outputs of a live run: video on the capture clock, and JSONL that records stream gaps."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from fractions import Fraction

import av
import numpy as np

from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.io.sinks import JsonlSink, VideoSink

_MS = Fraction(1, 1000)


class LiveVideoSink(VideoSink):
    """Annotated video of a live source; each frame is shown at its capture time.

    A live run keeps only the frames the detector had time for, so the video has a variable
    frame rate (timestamps in ms from the first frame); a stream outage is a frozen stretch.
    ``fps`` is only the nominal rate given to the encoder.
    """

    def __init__(self, path: str | os.PathLike, fps: float = 30.0):
        super().__init__(path, fps)
        self._t0: float | None = None
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        super()._open(width, height)
        self._stream.codec_context.time_base = _MS

    def _stamp(self, video_frame: av.VideoFrame, frame: Frame) -> None:
        """Presentation time from the capture clock, so the video plays at real speed."""
        if self._t0 is None:
            self._t0 = frame.captured_at
        pts = max(round((frame.captured_at - self._t0) * 1000.0), self._last_pts + 1)
        video_frame.pts, video_frame.time_base = pts, _MS
        self._last_pts = pts


class GapJsonlSink(JsonlSink):
    """JSONL of a live source: a line per processed frame, plus a line per outage.

    ``gaps`` is the source's live list of ``drivevision.io.frames.Gap`` (``Source.gaps``);
    each is written as ``{"gap": {...}}`` before the first frame after it (or at the end, if
    the stream never came back).
    """

    def __init__(self, path: str | os.PathLike, names: Sequence[str], gaps: list | None = None):
        super().__init__(path, names)
        self.gaps = gaps if gaps is not None else []
        self._written = 0

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        self._write_gaps(frame.index)
        super()._write(frame, detections, annotated)

    def _write_gaps(self, before_index: int | None) -> None:
        while self._written < len(self.gaps):
            gap = self.gaps[self._written]
            if before_index is not None and (gap.next_index is None
                                             or gap.next_index > before_index):
                return
            record = {"after_frame": gap.last_index, "next_frame": gap.next_index,
                      "start_ms": round(gap.start_ms, 1), "end_ms": round(gap.end_ms, 1),
                      "seconds": round(gap.seconds, 3), "reason": gap.reason,
                      "reconnect_attempts": gap.attempts}
            self._file.write(json.dumps({"gap": record}) + "\n")
            self._written += 1

    def _finish(self) -> None:
        if not self._file.closed:
            self._write_gaps(None)
        super()._finish()
