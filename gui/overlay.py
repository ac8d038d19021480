"""What the overlay shows and how it is drawn: filter detections, draw them, make a QImage.

The detector runs with a low internal threshold; these functions apply the user's threshold
and class toggles afterwards, so moving a slider redraws at once without new inference.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from PyQt6.QtGui import QImage

from drivevision.config import AGNOSTIC_IOU, DetectorConfig
from drivevision.detections import Detections
from drivevision.render import annotate

INTERNAL_CONF = 0.05  # the detector keeps everything scoring at least this


def internal_config(config: DetectorConfig) -> DetectorConfig:
    """What the viewer's detector runs with: ``config`` keeping every class, every box down to
    ``INTERNAL_CONF`` and no agnostic NMS; the overlay applies the user's choices of these."""
    return replace(config, conf=min(config.conf, INTERNAL_CONF), classes="all",
                   agnostic_nms=False)


@dataclass(frozen=True)
class OverlaySettings:
    """The overlay controls. ``hidden`` holds class ids switched off; ``thickness`` 0 = auto;
    ``tracks``: track ids and trails shown (when the viewer tracks); ``agnostic_nms``: one
    box where boxes of the classes shown overlap (``Detector``'s ``agnostic_nms``)."""

    conf: float = 0.5
    hidden: frozenset[int] = frozenset()
    labels: bool = True
    thickness: int = 0
    highlight: int | None = None
    tracks: bool = True
    agnostic_nms: bool = False

    def __post_init__(self) -> None:
        if not 0.0 <= self.conf <= 1.0:
            raise ValueError(f"Expected conf in [0, 1], but got {self.conf}")
        if self.thickness < 0:
            raise ValueError(f"Expected thickness >= 0 (0 = auto), but got {self.thickness}")


def visible(detections: Detections, settings: OverlaySettings) -> Detections:
    """The detections the overlay shows: score >= ``conf`` and class not hidden (one of those
    overlapping with ``agnostic_nms``, so a hidden class never hides a shown one); without
    their track ids when ``tracks`` is off."""
    keep = detections.scores >= settings.conf
    if settings.hidden:
        keep &= ~np.isin(detections.class_ids, list(settings.hidden))
    shown = detections[keep]
    if settings.agnostic_nms:
        shown = shown.with_nms(AGNOSTIC_IOU)
    if not settings.tracks and shown.track_ids is not None:
        shown = Detections(shown.xyxy, shown.scores, shown.class_ids)
    return shown


def draw(image: np.ndarray, detections: Detections, names: Sequence[str],
         settings: OverlaySettings, trails: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
    """A copy of ``image`` ((H, W, 3) uint8 BGR) with ``detections`` (already filtered) drawn,
    and the tracks' ``trails`` (``drivevision.render.Trails.paths()``) when ``tracks`` is on."""
    highlight = settings.highlight
    if highlight is not None and not 0 <= highlight < len(detections):
        highlight = None
    return annotate(image, detections, names, labels=settings.labels,
                    thickness=settings.thickness or None, highlight=highlight,
                    trails=trails if settings.tracks else None)


def to_qimage(image: np.ndarray) -> QImage:
    """An (H, W, 3) uint8 BGR array as a QImage that owns a copy of the pixels.

    The copy matters: the QImage crosses threads, the numpy buffer may not outlive it.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"Expected a uint8 (H, W, 3) BGR image, but found {image.dtype} "
                         f"{image.shape}")
    rgb = np.ascontiguousarray(image[:, :, ::-1])
    h, w = rgb.shape[:2]
    return QImage(rgb.data, w, h, 3 * w, QImage.Format.Format_RGB888).copy()
