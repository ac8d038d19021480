"""Drawing detections on frames: a pure function of (frame, detections), OpenCV only.

Tracked detections (with ``track_ids``) are coloured by track and labelled "#12 car 0.87";
their trails, each track's box centres over the last second, come from a ``Trails`` kept per
source in frame order (the one stateful part: ``annotate`` itself only draws what it is given).

Labels never cover each other: they are placed one by one, highest score first, in the
first free place of above the box, inside its top, below it, then the nearest free place
around it, always inside the frame (``label_layout``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Mapping, Sequence
from functools import partial

import cv2
import numpy as np

from drivevision.config import DrawStyle
from drivevision.detections import Detections
from drivevision.labels import colour_for, name_of, track_colour
from drivevision.ops.frames import channels_first_hint, frame_kind

_FONT = cv2.FONT_HERSHEY_SIMPLEX
_PAD = 2  # pixels of label background around the text


def annotate(frame: np.ndarray, detections: Detections, names: Sequence[str], *,
             labels: bool = True, scores: bool = True, thickness: int | None = None,
             highlight: int | None = None,
             trails: Mapping[int, np.ndarray] | None = None) -> np.ndarray:
    """A new (H, W, 3) uint8 BGR array: ``frame`` with boxes, class names and scores drawn.

    ``frame`` is uint8 (H, W, 3) BGR, or (H, W) grayscale or (H, W, 4) BGRA (converted to
    BGR, as the detector takes them); it is never changed (the drawing is on a copy).
    ``names`` are the detector's class names (``detector.names``). Line width and text size
    scale with the frame (``thickness`` overrides the line width); ``labels`` False draws
    boxes only, ``scores`` False leaves the score out of each label; ``highlight`` is the
    index of one detection to draw thicker. Labels go where ``label_layout`` puts them; a
    label with no free place near its box is left out (its box is still drawn). Detections
    with ``track_ids`` take their track's colour (``track_colour``), others their class's.
    ``trails`` maps track ids to float (K, 2) x, y pixel points, oldest first (``Trails``):
    each is drawn as a line in its track's colour, under the boxes.
    """
    out = _bgr_copy(frame)
    width = thickness or max(1, round(2 * _scale(out.shape)))
    for track_id, points in (trails or {}).items():
        if len(points) > 1:
            cv2.polylines(out, [np.round(points).astype(np.int32)], False,
                          track_colour(track_id), max(2, width), cv2.LINE_AA)
    colours = box_colours(detections, names)
    for i in range(len(detections)):
        x1, y1, x2, y2 = (int(round(v)) for v in detections.xyxy[i])
        cv2.rectangle(out, (x1, y1), (x2, y2), colours[i], width * (2 if i == highlight else 1),
                      cv2.LINE_AA)
    if labels:
        font_scale = _font_scale(out.shape)
        texts = label_texts(detections, names, scores=scores)
        layout = label_layout(out.shape, detections, names, highlight=highlight, scores=scores)
        for i in _order(detections, highlight):
            if layout[i] is not None:
                _draw_label(out, texts[i], layout[i], colours[i], font_scale)
    return out


def renderer(style: DrawStyle, names: Sequence[str]) -> Callable[..., np.ndarray]:
    """``annotate`` in ``style``, as ``Pipeline(render=...)`` takes it:
    ``render(frame, detections, trails=...)``."""
    return partial(annotate, names=names, labels=style.labels, scores=style.scores,
                   thickness=style.line_width)


def _bgr_copy(frame: np.ndarray) -> np.ndarray:
    """A new (H, W, 3) uint8 BGR array of ``frame``; TypeError or ValueError, saying what
    came, for anything that is not a uint8 image to draw on."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise TypeError(f"Expected a uint8 numpy image (H, W[, C]) to draw on, but found "
                        f"{frame_kind(frame)}")
    channels = frame.shape[2] if frame.ndim == 3 else 1 if frame.ndim == 2 else 0
    if frame.size == 0 or channels not in (1, 3, 4):
        raise ValueError(f"Expected an image of shape (H, W), (H, W, 3) or (H, W, 4), H and W "
                         f">= 1, to draw on, but found shape {frame.shape}"
                         f"{channels_first_hint(frame.shape)}")
    if channels == 1:
        return cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
    if channels == 4:
        return cv2.cvtColor(frame, cv2.COLOR_BGRA2BGR)
    return frame.copy()


def box_colours(detections: Detections, names: Sequence[str]) -> list[tuple[int, int, int]]:
    """The BGR colour ``annotate`` gives each detection: its track's, else its class's."""
    if detections.track_ids is not None:
        return [track_colour(t) for t in detections.track_ids.tolist()]
    return [colour_for(c, names) for c in detections.class_ids.tolist()]


class Trails:
    """Where each track has been: its box centres over the last ``seconds``, per source.

    Feed it every frame's tracked detections in frame order (``add``); ``paths()`` is what
    ``annotate(trails=...)`` draws. A track that ends keeps its trail until its last point is
    ``seconds`` old. Time going backwards (a seek) forgets everything, as ``reset`` does.
    """

    def __init__(self, seconds: float = 1.0):
        if seconds <= 0:
            raise ValueError(f"Expected a trail length in seconds > 0, but got {seconds}")
        self.window_ms = seconds * 1000.0
        self.reset()

    def reset(self) -> None:
        self._points: dict[int, deque[tuple[float, float, float]]] = {}
        self._now = -np.inf

    def add(self, timestamp_ms: float, detections: Detections) -> dict[int, np.ndarray]:
        """Record the centres of ``detections`` (those with ``track_ids``) seen at
        ``timestamp_ms`` (the frame's time); forget points older than the window. Returns
        ``paths()``."""
        if timestamp_ms < self._now:
            self.reset()
        self._now = timestamp_ms
        if detections.track_ids is not None:
            centres = (detections.xyxy[:, :2] + detections.xyxy[:, 2:]) / 2
            for track_id, (x, y) in zip(detections.track_ids.tolist(), centres.tolist()):
                self._points.setdefault(track_id, deque()).append((timestamp_ms, x, y))
        oldest = timestamp_ms - self.window_ms
        for track_id in list(self._points):
            points = self._points[track_id]
            while points and points[0][0] < oldest:
                points.popleft()
            if not points:
                del self._points[track_id]
        return self.paths()

    def paths(self) -> dict[int, np.ndarray]:
        """Track id -> float32 (K, 2) centres x, y in pixels, oldest first."""
        return {t: np.array(p, np.float32)[:, 1:] for t, p in self._points.items()}


def label_texts(detections: Detections, names: Sequence[str], *,
                scores: bool = True) -> list[str]:
    """The label of each detection: "car 0.91", or "#7 car 0.91" with a track id ("car" and
    "#7 car" without ``scores``)."""
    texts = []
    for i in range(len(detections)):
        text = name_of(int(detections.class_ids[i]), names)
        if scores:
            text = f"{text} {detections.scores[i]:.2f}"
        if detections.track_ids is not None:
            text = f"#{detections.track_ids[i]} {text}"
        texts.append(text)
    return texts


def label_layout(shape: tuple[int, ...], detections: Detections, names: Sequence[str], *,
                 highlight: int | None = None,
                 scores: bool = True) -> list[tuple[int, int, int, int] | None]:
    """Where ``annotate`` draws each detection's label (``label_texts``) on a frame of
    ``shape`` (H, W, ...).

    One rectangle (x1, y1, x2, y2) per detection, in pixels, x2 and y2 exclusive, or None
    where no free place was found near the box. Rectangles are inside the frame and never
    intersect. Placed greedily in score order (``highlight`` first): above the box, else
    inside its top edge, else below it, else the nearest free place around it.
    """
    height, width = shape[0], shape[1]
    font_scale = _font_scale(shape)
    weight = _weight(font_scale)
    placed = np.empty((0, 4), dtype=np.int64)
    layout: list[tuple[int, int, int, int] | None] = [None] * len(detections)
    texts = label_texts(detections, names, scores=scores)
    for i in _order(detections, highlight):
        (tw, th), base = cv2.getTextSize(texts[i], _FONT, font_scale, weight)
        size = (tw + 2 * _PAD, th + base + 2 * _PAD)
        if size[0] > width or size[1] > height:
            continue
        box = tuple(int(round(v)) for v in detections.xyxy[i])
        for candidates in (_preferred(box, size), _shifted(box, size)):  # most fit the first
            candidates = _inside(candidates, size, width, height)
            free = ~_intersects(candidates, placed).any(axis=1)
            if free.any():
                rect = candidates[int(np.argmax(free))]
                layout[i] = tuple(int(v) for v in rect)
                placed = np.vstack([placed, rect[None]])
                break
    return layout


def _preferred(box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """(3, 2) top-left corners: above the box, inside its top edge, below it."""
    x1, y1, _, y2 = box
    return np.array([(x1, y1 - size[1]), (x1, y1), (x1, y2)])


def _shifted(box: tuple[int, int, int, int], size: tuple[int, int]) -> np.ndarray:
    """(C, 2) top-left corners around the box, up to a few label sizes away, nearest first
    (by the gap between label and box, then by the distance from the place above it)."""
    w, h = size
    x1, y1, x2, y2 = box
    rows = np.concatenate([y1 - h + np.arange(-6, 7) * h, y2 + np.arange(-6, 7) * h])
    gx, gy = np.meshgrid(x1 + np.arange(-6, 7) * max(w // 2, 1), rows)
    corners = np.stack([gx.ravel(), gy.ravel()], axis=1)
    gap = np.hypot(np.maximum(0, np.maximum(corners[:, 0] - x2, x1 - corners[:, 0] - w)),
                   np.maximum(0, np.maximum(corners[:, 1] - y2, y1 - corners[:, 1] - h)))
    shift = np.abs(corners[:, 0] - x1) + np.abs(corners[:, 1] - (y1 - h))
    return corners[np.lexsort((shift, gap))]


def _inside(corners: np.ndarray, size: tuple[int, int], width: int,
            height: int) -> np.ndarray:
    """(C, 4) rectangles of ``size`` at ``corners``, moved the least to fit in the frame."""
    x = np.clip(corners[:, 0], 0, width - size[0])
    y = np.clip(corners[:, 1], 0, height - size[1])
    return np.stack([x, y, x + size[0], y + size[1]], axis=1)


def _intersects(candidates: np.ndarray, placed: np.ndarray) -> np.ndarray:
    """(C, P) bool: whether candidate c overlaps placed rectangle p (touching is not)."""
    c, p = candidates[:, None, :], placed[None, :, :]
    return ((c[..., 0] < p[..., 2]) & (p[..., 0] < c[..., 2])
            & (c[..., 1] < p[..., 3]) & (p[..., 1] < c[..., 3]))


def _order(detections: Detections, highlight: int | None) -> list[int]:
    order = [int(i) for i in np.argsort(-detections.scores, kind="stable")]
    if highlight is not None and 0 <= highlight < len(order):
        order.remove(highlight)
        order.insert(0, highlight)
    return order


def _scale(shape: tuple[int, ...]) -> float:
    return max(shape[0], shape[1]) / 1280.0


def _font_scale(shape: tuple[int, ...]) -> float:
    return max(0.4, 0.55 * _scale(shape))


def _weight(font_scale: float) -> int:
    return max(1, round(font_scale * 2))


def _draw_label(img: np.ndarray, text: str, rect: tuple[int, int, int, int],
                colour: tuple[int, int, int], font_scale: float) -> None:
    """Text on a filled box filling ``rect``, in black or white, whichever reads better."""
    x1, y1, x2, y2 = rect
    cv2.rectangle(img, (x1, y1), (x2 - 1, y2 - 1), colour, -1)
    luminance = 0.114 * colour[0] + 0.587 * colour[1] + 0.299 * colour[2]
    ink = (0, 0, 0) if luminance > 140 else (255, 255, 255)
    weight = _weight(font_scale)
    (_, th), _ = cv2.getTextSize(text, _FONT, font_scale, weight)
    cv2.putText(img, text, (x1 + _PAD, y1 + _PAD + th), _FONT, font_scale, ink, weight,
                cv2.LINE_AA)


def letterbox(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` ((H, W, C) uint8) scaled to fit ``size`` (width, height) with its aspect
    ratio kept, centred on black: a new array of shape (height, width, C)."""
    width, height = size
    scale = min(width / image.shape[1], height / image.shape[0])
    w = max(1, min(width, round(image.shape[1] * scale)))
    h = max(1, min(height, round(image.shape[0] * scale)))
    out = np.zeros((height, width, image.shape[2]), dtype=image.dtype)
    x, y = (width - w) // 2, (height - h) // 2
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out[y:y + h, x:x + w] = cv2.resize(image, (w, h), interpolation=interpolation)
    return out
