"""What the viewer's worker hands the GUI thread: frames ready to show (the newest kept in a
``Mailbox``), and opened media."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field

from PyQt6.QtGui import QImage

from drivevision.detections import Detections
from drivevision.io.frames import Frame
from gui.overlay import OverlaySettings


@dataclass
class Packet:
    """One frame ready to show.

    ``frame.image`` is an (H, W, 3) uint8 BGR copy; ``detections`` are all the detector kept
    (xyxy in original pixels), ``shown`` those the overlay showed when it was drawn into
    ``image`` (RGB888 QImage that owns its pixels) with ``overlay``. ``stats``: input_fps,
    detector_fps (None for a frame shown on a seek or step), dropped, frame_count,
    readable_count (the frames up to where the media was found to end before its
    frame_count, a video cut short; else 0);
    ``run_counts``: shown detections per class id over the frames seen since opening, each
    frame counted once.
    """

    frame: Frame
    detections: Detections
    shown: Detections
    image: QImage
    timings: dict[str, float]
    stats: dict[str, float]
    overlay: OverlaySettings
    run_counts: Counter = field(default_factory=Counter)
    opening: int = 0  # which open of the worker it came from (see MediaInfo.opening)
    trails: dict | None = None  # track id -> (K, 2) centres, when the worker tracks


@dataclass(frozen=True)
class MediaInfo:
    uri: str
    fps: float | None
    frame_count: int | None
    seekable: bool
    live: bool
    opening: int = 0  # counts opens; packets carry the one they came from


class Mailbox:
    """Holds the newest packet from the worker thread until the GUI thread takes it; a packet
    replaced before it was taken counts in ``drops``, so repaints never pile up."""

    def __init__(self):
        self._lock = threading.Lock()
        self._latest: Packet | None = None
        self.drops = 0

    def post(self, packet: Packet) -> bool:
        """Keep ``packet`` as the newest; True when the GUI must be told (it took the last
        one; else a notice sent earlier has not been handled yet)."""
        with self._lock:
            tell = self._latest is None
            if not tell:
                self.drops += 1
            self._latest = packet
        return tell

    def take(self) -> Packet | None:
        """The newest packet, or None when it was already taken."""
        with self._lock:
            packet, self._latest = self._latest, None
            return packet

    def clear(self) -> None:
        """Forget the packet not taken (its source was closed): not a drop."""
        with self._lock:
            self._latest = None
