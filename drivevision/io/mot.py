"""MOTChallenge text output: one line per tracked box, what MOT evaluation tools read."""

from __future__ import annotations

import os

import numpy as np

from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.frames import Frame
from drivevision.io.sinks import Sink, close_text, open_text


class MotSink(Sink):
    """``frame,id,x,y,w,h,score,-1,-1,-1`` per tracked box: frames count from 1, ``x, y`` is
    the top-left corner and ``w, h`` the size, in the frame's pixels. Needs ``track_ids``.
    ``-`` writes to stdout, as the JSONL and CSV sinks do."""

    lines = True

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        try:
            self._file = open_text(self.tmp, self.path)
        except SinkError:
            self._release(complete=False)
            raise

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        if detections.track_ids is None:
            raise SinkError(f"{self.path}: a MOT file needs track ids; run with a tracker")
        for (x1, y1, x2, y2), tid, score in zip(detections.xyxy.tolist(),
                                                detections.track_ids.tolist(),
                                                detections.scores.tolist()):
            self._file.write(f"{frame.index + 1},{tid},{x1:.2f},{y1:.2f},{x2 - x1:.2f},"
                             f"{y2 - y1:.2f},{score:.4f},-1,-1,-1\n")
        self._file.flush()  # as the CSV: a reader of stdout sees each frame as it is done

    def _finish(self) -> None:
        close_text(self._file)
