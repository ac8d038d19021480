"""Multi-object tracking: ids that follow objects from frame to frame.

``create_tracker(name, **options)`` makes one ``Tracker`` per video stream:

- ``"bytetrack"``: ByteTrack (Zhang et al., 2022): a Kalman filter per track, high-score
  detections matched first, then low-score ones to the tracks left unmatched.
- ``"botsort"``: the same, with the camera's own motion (a global affine from sparse optical
  flow, as in BoT-SORT, Aharon et al., 2022) taken out of the predictions, so a turning or
  shaking camera does not lose its tracks. Needs the frames.

Options (both): ``track_thresh``, ``track_buffer``, ``match_thresh``, ``low_thresh``
(``drivevision.tracking.bytetrack.ByteTracker``).
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from drivevision.detections import Detections
from drivevision.tracking.bytetrack import ByteTracker
from drivevision.tracking.motion import CameraMotion

TRACKERS = ("botsort", "bytetrack")
DEFAULT_TRACKER = "botsort"


class Tracker(Protocol):
    def update(self, detections: Detections, frame: np.ndarray | None = None,
               frame_index: int | None = None) -> Detections:
        """One frame's detections (boxes in ``frame``'s pixels) -> the detections of the
        tracks seen in it, with ``track_ids`` (unique in a run, never reused: 1, 2, 3, ... in
        the order the tracks are first shown). ``frame`` is uint8 (H, W, 3) BGR, optional;
        ``frame_index``, the frame's index in its stream, tells the tracker how many frames
        went by unseen (dropped); None: one. Frames must come in order."""

    def reset(self) -> None:
        """Forget every track (a new video)."""


def create_tracker(name: str = DEFAULT_TRACKER, **options) -> Tracker:
    """A new tracker by name (``TRACKERS``; by default ``DEFAULT_TRACKER``, what ``--track``
    with no name runs), configured by keyword ``options``."""
    if name == "bytetrack":
        return ByteTracker(**options)
    if name == "botsort":
        return ByteTracker(motion=CameraMotion(), **options)
    raise ValueError(f"Expected a tracker name in {TRACKERS}, but got {name!r}")


__all__ = ["DEFAULT_TRACKER", "TRACKERS", "ByteTracker", "CameraMotion", "Tracker",
           "create_tracker"]
