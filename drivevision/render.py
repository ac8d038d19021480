"""Drawing detections on frames: a pure function of (frame, detections), OpenCV only."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from drivevision.detections import Detections
from drivevision.labels import colour_for, name_of

_FONT = cv2.FONT_HERSHEY_SIMPLEX


def annotate(frame: np.ndarray, detections: Detections, names: Sequence[str], *,
             labels: bool = True, thickness: int | None = None,
             highlight: int | None = None) -> np.ndarray:
    """A copy of ``frame`` ((H, W, 3) uint8 BGR) with boxes, class names and scores drawn.

    Line width and text size scale with the frame (``thickness`` overrides the line width);
    ``highlight`` is the index of one detection to draw thicker. The input is never changed.
    """
    out = frame.copy()
    scale = max(out.shape[0], out.shape[1]) / 1280.0
    width = thickness or max(1, round(2 * scale))
    for i in range(len(detections)):
        class_id = int(detections.class_ids[i])
        colour = colour_for(class_id, names)
        x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), colour, width * (2 if i == highlight else 1),
                      cv2.LINE_AA)
        if labels:
            text = f"{name_of(class_id, names)} {detections.scores[i]:.2f}"
            if detections.track_ids is not None:
                text = f"#{detections.track_ids[i]} {text}"
            _label(out, text, (x1, y1), colour, max(0.4, 0.55 * scale))
    return out


def _label(img: np.ndarray, text: str, corner: tuple[int, int], colour: tuple[int, int, int],
           font_scale: float) -> None:
    """Text on a filled box above ``corner`` (below it when there is no room above)."""
    weight = max(1, round(font_scale * 2))
    (tw, th), base = cv2.getTextSize(text, _FONT, font_scale, weight)
    x = min(max(corner[0], 0), max(img.shape[1] - tw - 4, 0))
    y = corner[1] - th - base - 4 if corner[1] - th - base - 4 >= 0 else corner[1]
    cv2.rectangle(img, (x, y), (x + tw + 4, y + th + base + 4), colour, -1)
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    cv2.putText(img, text, (x + 2, y + th + 2), _FONT, font_scale, ink, weight, cv2.LINE_AA)
