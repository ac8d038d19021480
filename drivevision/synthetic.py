"""Deterministic dashcam-like scenes with ground-truth boxes, for tests, demos and training.

A pinhole camera 1.3 m above a straight two-way road looks ahead while driving at 10 m/s.
Traffic, pedestrians and traffic lights are spawned per time slot from ``(seed, stream, slot)``,
so any frame renders on its own and the same ``(seed, index)`` always gives the same pixels.
Only numpy and cv2 are used; PyAV is imported by :func:`write_clip` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

COCO_LABEL_IDS = {"person": 1, "car": 3, "bus": 6, "truck": 8, "traffic light": 10}
MIN_BOX_PX = 8  # boxes with a smaller side after clipping to the image are not ground truth
MIN_VISIBLE = 0.3  # nor objects with less of their silhouette left unoccluded

_EGO, _CAM_H, _NEAR, _FAR, _CHANGE_S = 10.0, 1.3, 0.25, 110.0, 2.5
_HAZE = (205.0, 195.0, 185.0)
# stream: (slot period s, spawn probability, longest life s); see _make_track
_STREAMS = {"oncoming": (1.6, 0.55, 8), "right": (4.5, 0.8, 75), "walk_l": (0.9, 0.4, 16),
            "walk_r": (0.9, 0.4, 16), "light": (6.0, 0.7, 13)}
# (width, y0, y1, zz0, zz1, glazed) boxes in metres, zz from the rear; wheel radius and axles
_PARTS = {"car": ((1.8, 0.3, 0.95, 0.0, 4.4, False), (1.55, 0.95, 1.48, 1.0, 3.3, True)),
          "truck": ((2.5, 0.55, 3.4, 0.0, 5.6, False), (2.35, 0.45, 2.7, 5.7, 7.6, True)),
          "bus": ((2.55, 0.3, 3.15, 0.0, 11.5, True),)}
_LENGTH = {kind: max(p[4] for p in parts) for kind, parts in _PARTS.items()}
_WHEELS = {"car": (0.32, (0.85, 3.55)), "truck": (0.48, (1.2, 4.4, 6.7)), "bus": (0.5, (2.4, 9.4))}
_PAINTS = ((225, 225, 225), (180, 180, 175), (40, 40, 42), (40, 40, 190), (150, 80, 30),
           (95, 95, 95), (30, 190, 230), (60, 110, 50))
_SHIRTS = ((40, 40, 180), (160, 90, 40), (230, 230, 230), (40, 150, 200), (70, 70, 70))
_GLASS, _DARK, _WHITE, _YELLOW = (80, 62, 50), (28, 28, 30), (235, 235, 235), (40, 190, 225)


@dataclass(frozen=True)
class Scene:
    """One rendered frame and its ground truth.

    Attributes:
        image: uint8 (H, W, 3) in BGR order.
        boxes: float32 (N, 4) xyxy pixels, ``0 <= x1 < x2 <= W`` and ``0 <= y1 < y2 <= H``.
        labels: N COCO class names (keys of ``COCO_LABEL_IDS``), one per box.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: tuple[str, ...]

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 (H, W, 3) image, but found {self.image.dtype} "
                             f"{self.image.shape}")
        if self.boxes.shape != (len(self.labels), 4) or self.boxes.dtype != np.float32:
            raise ValueError(f"Expected float32 boxes of shape ({len(self.labels)}, 4), but found "
                             f"{self.boxes.dtype} {self.boxes.shape}")


@dataclass(frozen=True)
class _Track:
    kind: str
    start: float  # seconds
    x0: float  # lateral position (m, right positive)
    z0: float  # distance of the near face ahead of the camera (m)
    vz: float  # speed relative to the camera (m/s)
    colour: tuple
    x1: float = 0.0  # lane after a lane change starting tc s after start ...
    v2: float = 0.0  # ... that ends at this relative speed
    tc: float = math.inf
    extra: float = 0.0  # person height or traffic-light phase

    def at(self, age: float) -> tuple[float, float]:
        u = (age - self.tc) / _CHANGE_S
        if u <= 0:
            return self.x0, self.z0 + self.vz * age
        s = min(u, 1.0)
        ramp = (s**3 - s**4 / 2 + max(u - 1.0, 0.0)) * _CHANGE_S  # integral of smoothstep
        x = self.x0 + (self.x1 - self.x0) * s * s * (3 - 2 * s)
        return x, self.z0 + self.vz * age + (self.v2 - self.vz) * ramp


def _make_track(stream: str, rng: np.random.Generator, start: float) -> _Track:
    kind = str(rng.choice(["car", "truck", "bus"], p=[0.6, 0.22, 0.18]))
    paint = _PAINTS[rng.integers(len(_PAINTS))]
    if stream == "oncoming":
        return _Track(kind, start, -3.5, _FAR, -_EGO - rng.uniform(6, 10), paint)
    if stream == "right":  # slower traffic; some cars cut into our lane and speed away
        cut_in = kind == "car" and rng.random() < 0.4
        return _Track(kind, start, 3.5, _FAR, -4.0, paint, 0.0, 3.0, 21.5 if cut_in else math.inf)
    if stream == "light":
        x = float(rng.choice([2.0, 5.9]))  # over the right lane, or on the pole
        return _Track("traffic light", start, x, _FAR, -_EGO, _DARK, extra=rng.uniform(0, 9))
    x = rng.uniform(5.7, 7.6) * (1 if stream == "walk_r" else -1)
    walk = rng.uniform(-1.5, 1.5) if rng.random() < 0.7 else 0.0
    shirt = _SHIRTS[rng.integers(len(_SHIRTS))]
    return _Track("person", start, x, _FAR, walk - _EGO, shirt, extra=rng.uniform(1.55, 1.9))


@lru_cache(maxsize=8192)
def _spawn(seed: int, stream: str, slot: int) -> _Track | None:
    period, prob, _ = _STREAMS[stream]
    rng = np.random.default_rng([seed, list(_STREAMS).index(stream), slot + (1 << 40)])
    if rng.random() >= prob:
        return None
    return _make_track(stream, rng, (slot + rng.uniform(0, 0.25)) * period)


def _shade(colour: tuple, z: float, k: float = 1.0) -> tuple:
    """``colour`` darkened by ``k`` and faded into the haze with distance ``z``."""
    fog = min(z / _FAR, 1.0) * 0.7
    return tuple(c * k * (1 - fog) + h * fog for c, h in zip(colour, _HAZE))


def _seen_side(x: float, w: float) -> int:
    """The vertical side of a box centred at ``x`` that the camera sees: -1 left, 1 right."""
    return -1 if x > w / 2 else 1 if x < -w / 2 else 0


class _Sketch:
    """Drawing operations in float pixels, replayed on the BGR image and on the id mask."""

    def __init__(self, depth: float = 0.0, label: str | None = None, box=None):
        self.depth, self.label, self.box, self.ops = depth, label, box, []

    def poly(self, pts: np.ndarray, colour: tuple) -> None:
        pts = [np.round(np.asarray(pts) * 4).astype(np.int32)]
        self.ops.append((colour, lambda img, c, aa: cv2.fillPoly(img, pts, c, aa, 2)))

    def line(self, p: np.ndarray, q: np.ndarray, width: float, colour: tuple) -> None:
        (p, q), w = np.round(np.array([p, q]) * 4).astype(int).tolist(), max(1, round(width))
        self.ops.append((colour, lambda img, c, aa: cv2.line(img, p, q, c, w, aa, 2)))

    def circle(self, centre: np.ndarray, r: float, colour: tuple) -> None:
        centre, r = np.round(np.asarray(centre) * 4).astype(int).tolist(), max(1, round(r * 4))
        self.ops.append((colour, lambda img, c, aa: cv2.circle(img, centre, r, c, -1, aa, 2)))

    def paint(self, canvas: np.ndarray, flat: int | None = None) -> None:
        """Draw anti-aliased colours, or, given ``flat``, that value with hard edges."""
        aa = cv2.LINE_AA if flat is None else cv2.LINE_8
        for colour, op in self.ops:
            op(canvas, colour if flat is None else (flat,), aa)


class SceneGenerator:
    """Renders frame ``index`` of an endless drive, deterministic for ``(seed, index)``.

    Images are uint8 (height, width, 3) BGR. ``fps`` only maps indices to time: the same seed
    at another frame rate shows the same drive sampled differently.
    """

    def __init__(self, width: int = 640, height: int = 360, seed: int = 0, fps: float = 10.0):
        if width < 16 or height < 16 or fps <= 0 or seed < 0:
            raise ValueError(f"Expected width, height >= 16, fps > 0 and seed >= 0, but found "
                             f"{width=}, {height=}, {fps=}, {seed=}")
        self.width, self.height, self.seed, self.fps = width, height, seed, fps
        self.f, self.cx, self.hz = 0.9 * width, width / 2, 0.45 * height
        rng = np.random.default_rng([seed, 99])
        self._bg = self._background(rng)
        self._noise = rng.normal(0, 3, (height + 32, width + 32, 3)).astype(np.float32)

    def frame(self, index: int) -> Scene:
        """Scene ``index`` (>= 0): its image and the boxes of its visible objects, far first."""
        if index < 0:
            raise ValueError(f"Expected a frame index >= 0, but found {index}")
        t, img = index / self.fps, self._bg.copy()
        self._markings(t).paint(img)
        boxes, labels = self._render(img, sorted(self._items(t), key=lambda s: -s.depth), t)
        self._hood(t).paint(img)
        return Scene(self._finish(img, index), boxes, labels)

    def clip(self, n: int, start: int = 0) -> list[Scene]:
        """Scenes of frames ``start .. start + n - 1``."""
        return [self.frame(i) for i in range(start, start + n)]

    def _project(self, x, y, z) -> np.ndarray:
        """World metres (right, up, ahead) to float (..., 2) pixels; z is clamped to the near
        plane, which is exact for the camera-facing faces and clips the rest well enough."""
        z = np.maximum(z, _NEAR)
        u, v = self.cx + self.f * np.asarray(x) / z, self.hz + self.f * (_CAM_H - np.asarray(y)) / z
        out = np.empty(np.broadcast(u, v).shape + (2,))
        out[..., 0], out[..., 1] = u, v
        return out

    def _rect(self, x: float, w: float, y0: float, y1: float, z) -> np.ndarray:
        """Corners of an upright rectangle facing the camera."""
        return self._project([x - w / 2, x + w / 2, x + w / 2, x - w / 2], [y0, y0, y1, y1], z)

    def _flat(self, x0: float, x1: float, y: float, z0, z1) -> np.ndarray:
        """Corners (..., 4, 2) of horizontal rectangles (road, roof, shadow); z0, z1 may be (N,)."""
        z0, z1 = np.asarray(z0, float)[..., None], np.asarray(z1, float)[..., None]
        return self._project([x0, x1, x1, x0], y, np.concatenate([z0, z0, z1, z1], -1))

    def _background(self, rng: np.random.Generator) -> np.ndarray:
        h, w, hz = self.height, self.width, int(self.hz)
        img = np.empty((h, w, 3), np.float32)
        ramp = np.linspace(0, 1, hz)[:, None, None]
        img[:hz] = np.array([190, 140, 95]) * (1 - ramp) + np.array([235, 220, 210]) * ramp
        img[hz:] = (70, 120, 95)
        x = 0
        while x < w:  # distant skyline
            bw, bh = rng.integers(w // 30, w // 8), rng.integers(h // 30, h // 7)
            img[hz - bh:hz, x:x + bw] = rng.uniform(165, 195) + np.array([8, 4, 0])
            x += bw
        road = _Sketch()
        road.poly(self._flat(-8.0, 8.0, 0, _NEAR, _FAR), (150, 150, 148))  # pavements
        road.poly(self._flat(-5.25, 5.25, 0, _NEAR, _FAR), (88, 86, 86))
        road.paint(img)
        z = self.f * _CAM_H / np.maximum(np.arange(h - hz) + hz - self.hz, 1e-3)
        fog = (np.clip(z / _FAR, 0, 1) * 0.7)[:, None, None]
        img[hz:] = img[hz:] * (1 - fog) + np.array(_HAZE) * fog
        img[hz:] += cv2.GaussianBlur(rng.normal(0, 7, (h - hz, w)), (5, 5), 0)[..., None]
        return img.clip(0, 255).astype(np.uint8)

    def _markings(self, t: float) -> _Sketch:
        """Edge lines, a double yellow centre line and lane dashes that come toward us."""
        sketch, solid = _Sketch(), np.arange(_NEAR, _FAR, 5.0)  # in segments, for the haze
        dashes = np.arange(-(_EGO * t % 12.0), _FAR, 12.0)
        dashes = dashes[dashes > _NEAR - 3]
        for x, colour, z0, dz in ((-5.2, _WHITE, solid, 5), (5.2, _WHITE, solid, 5),
                                  (-1.87, _YELLOW, solid, 5), (-1.63, _YELLOW, solid, 5),
                                  (1.75, _WHITE, dashes, 3)):
            for quad, z in zip(self._flat(x - 0.07, x + 0.07, 0, z0, z0 + dz), z0):
                sketch.poly(quad, _shade(colour, z))
        return sketch

    def _items(self, t: float) -> list[_Sketch]:
        """Trees every 15 m on both sides, and every live track at time ``t``."""
        items = [self._tree(x, z) for x in (-9.5, 9.5)
                 for z in np.arange(-((_EGO * t + x) % 15.0), _FAR, 15.0) if z > 1.0]
        draw = {"person": self._person, "traffic light": self._light}
        for stream, (period, _, life) in _STREAMS.items():
            for slot in range(math.floor((t - life) / period), math.floor(t / period) + 1):
                track = _spawn(self.seed, stream, slot)
                if track is None or t < track.start:
                    continue
                x, z = track.at(t - track.start)
                if _NEAR - _LENGTH.get(track.kind, 0.5) < z < _FAR:
                    items.append(draw.get(track.kind, self._vehicle)(track, x, z, t))
        return items

    def _render(self, img: np.ndarray, items: list[_Sketch], t: float
                ) -> tuple[np.ndarray, tuple[str, ...]]:
        """Paint far to near; keep boxes big enough and visible enough in the id mask."""
        assert len(items) < 254, "ids 254 (unlabelled) and 255 (hood) are reserved"
        mask, size = np.zeros(img.shape[:2], np.uint8), (self.width, self.height)
        rois, areas = {}, {}
        for i, item in enumerate(items, 1):
            item.paint(img)
            item.paint(mask, i if item.label else 254)
            if item.label is None:
                continue
            (x1, y1), (x2, y2) = np.clip(item.box.reshape(2, 2), 0, size).round().astype(int)
            if min(x2 - x1, y2 - y1) >= MIN_BOX_PX:
                rois[i] = np.s_[y1:y2, x1:x2]
                areas[i] = np.count_nonzero(mask[rois[i]] == i)
        self._hood(t).paint(mask, 255)
        keep = [i for i in rois if np.count_nonzero(mask[rois[i]] == i) >= MIN_VISIBLE * areas[i]]
        boxes = np.array([items[i - 1].box for i in keep], np.float32).reshape(-1, 4)
        boxes = boxes.clip(0, np.array(size * 2, np.float32))
        return boxes, tuple(items[i - 1].label for i in keep)

    def _vehicle(self, track: _Track, x: float, z: float, t: float) -> _Sketch:
        kind, paint, flip = track.kind, track.colour, track.vz < -_EGO  # oncoming: front shows
        (radius, axles), length, w = _WHEELS[kind], _LENGTH[kind], _PARTS[kind][0][0]
        parts = sorted(((pw, y0, y1, z + (length - b), z + (length - a), g) if flip else
                        (pw, y0, y1, z + a, z + b, g) for pw, y0, y1, a, b, g in _PARTS[kind]),
                       key=lambda p: -p[3])
        px = self._project(*np.array([(x + sx * p[0] / 2, y, zz) for p in parts for sx in (-1, 1)
                                      for y in (0, p[2]) for zz in p[3:5]]).T)
        sketch = _Sketch(z, kind, np.concatenate([px.min(0), px.max(0)]))
        shadow = self._flat(x - w / 2 - 0.1, x + w / 2 + 0.1, 0, z, z + length)
        sketch.poly(shadow, _shade(_DARK, z))
        for pw, _, y1, z0, z1, _ in parts:
            if y1 < _CAM_H:  # roof or bonnet seen from above
                sketch.poly(self._flat(x - pw / 2, x + pw / 2, y1, z0, z1), _shade(paint, z0, 0.85))
        lamp = (215, 235, 245) if flip else (35, 35, 210)
        for part in parts:
            self._part(sketch, x, part, paint, part[3] == z, lamp)
        side, ang = _seen_side(x, w), np.linspace(0, 2 * np.pi, 14)
        for a in [length - a if flip else a for a in axles] if side else ():
            sketch.poly(self._project(x + side * w / 2, radius * (1 + np.sin(ang)),
                                      z + a + radius * np.cos(ang)), _shade(_DARK, z))
        return sketch

    def _part(self, sketch: _Sketch, x: float, part: tuple, paint: tuple, first: bool,
              lamp: tuple) -> None:
        """One box of a vehicle: its visible side with windows, then its near face."""
        w, y0, y1, z0, z1, glazed = part
        gy0, gy1, side = max(y0 + 0.05, y1 - 1.6), y1 - 0.07, _seen_side(x, w)
        if side:
            xs, n = x + side * w / 2, max(1, round((z1 - z0) / 2.3))
            sketch.poly(self._project(xs, [y0, y0, y1, y1], [z0, z1, z1, z0]),
                        _shade(paint, z0, 0.7))
            for a in np.linspace(z0, z1, n + 1)[:-1] if glazed else ():
                b = a + (z1 - z0) / n - 0.15
                sketch.poly(self._project(xs, [gy0, gy0, gy1, gy1], [a + 0.15, b, b, a + 0.15]),
                            _shade(_GLASS, z0, 0.8))
        for sx in (-1, 1) if first else ():  # tyres under the bumper
            tyre = self._rect(x + sx * (w / 2 - 0.2), 0.3, 0, y0 + 0.1, z0 + 0.5)
            sketch.poly(tyre, _shade(_DARK, z0))
        sketch.poly(self._rect(x, w, y0, y1, z0), _shade(paint, z0))
        if glazed:
            sketch.poly(self._rect(x, w - 0.24, gy0, gy1, z0), _shade(_GLASS, z0))
        for sx in (-1, 1) if first else ():
            light = self._rect(x + sx * (w / 2 - 0.22), 0.3, y0 + 0.35, y0 + 0.55, z0)
            sketch.poly(light, _shade(lamp, z0))
        if first:  # number plate
            sketch.poly(self._rect(x, 0.5, y0 + 0.1, y0 + 0.26, z0), _shade(_WHITE, z0, 0.95))

    def _person(self, track: _Track, x: float, z: float, t: float) -> _Sketch:
        h, s = track.extra, self.f / max(z, _NEAR)
        swing = 0.22 * math.sin(3.0 * (t - track.start) * abs(track.vz + _EGO))
        head = self._project(x, h - 0.11, z)
        hips = self._project([x - 0.1, x + 0.1], h * 0.5, z)
        feet = self._project([x - 0.1, x + 0.1], 0, [z - swing, z + swing])
        shoulders = self._project([x - 0.2, x + 0.2], h * 0.81, z)
        hands = self._project([x - 0.25, x + 0.25], h * 0.46, [z + swing, z - swing])
        pts = np.concatenate([head[None] - (0, 0.11 * s), hips, feet, shoulders, hands])
        pad = (0.07 * s, 0)
        sketch = _Sketch(z, "person", np.concatenate([pts.min(0) - pad, pts.max(0) + pad]))
        for hip, foot in zip(hips, feet):
            sketch.line(hip, foot, 0.14 * s, _shade((60, 45, 40), z))
        sketch.poly(np.concatenate([shoulders, hips[::-1]]), _shade(track.colour, z))
        for shoulder, hand in zip(shoulders, hands):
            sketch.line(shoulder, hand, 0.09 * s, _shade(track.colour, z, 0.8))
        sketch.circle(head, 0.11 * s, _shade((120, 150, 195), z))
        return sketch

    def _light(self, track: _Track, x: float, z: float, t: float) -> _Sketch:
        """A pole on the right pavement holding the housing, or an arm holding it over the lane."""
        y0, s, phase = (2.7 if x > 5 else 5.0), self.f / max(z, _NEAR), (t + track.extra) % 9.0
        housing, top = self._rect(x, 0.42, y0, y0 + 1.0, z), self._project([5.9, x], y0 + 1.2, z)
        sketch = _Sketch(z, "traffic light", housing[[3, 1]].ravel())
        sketch.line(self._project(5.9, 0, z), top[0], 0.16 * s, _shade((150, 150, 150), z))
        sketch.line(top[0], top[1], 0.1 * s, _shade((150, 150, 150), z))
        sketch.poly(housing, _shade(track.colour, z))
        lit = 0 if phase < 4 else 1 if phase < 5 else 2
        for k, colour in enumerate(((60, 200, 60), (40, 190, 240), (50, 50, 235))):  # G, A, R
            sketch.circle(self._project(x, y0 + 0.18 + 0.32 * k, z), 0.12 * s,
                          colour if k == lit else _shade(colour, z, 0.3))
        return sketch

    def _tree(self, x: float, z: float) -> _Sketch:
        sketch, s = _Sketch(z), self.f / z
        trunk = self._project(x, [0, 3.0], z)
        sketch.line(trunk[0], trunk[1], 0.3 * s, _shade((40, 60, 85), z))
        for dx, dy, r, k in ((-0.6, 3.4, 1.3, 0.8), (0.6, 3.6, 1.3, 0.9), (0, 4.4, 1.4, 1.0)):
            sketch.circle(self._project(x + dx, dy, z), r * s, _shade((50, 110, 60), z, k))
        return sketch

    def _hood(self, t: float) -> _Sketch:
        """The bonnet of our own car across the bottom of the view, with a time stamp on it."""
        sketch, ang, (w, h) = _Sketch(), np.linspace(0, np.pi, 40), (self.width, self.height)
        sketch.poly(np.stack([w * (0.5 + 0.8 * np.cos(ang)), h * (1.3 - 0.38 * np.sin(ang))], -1),
                    (38, 38, 42))
        stamp = f"2024-05-17 08:{15 + int(t) // 60:02d}:{int(t) % 60:02d}  36 km/h"
        org, font = (round(w * 0.02), round(h * 0.97)), cv2.FONT_HERSHEY_SIMPLEX
        sketch.ops.append((_WHITE, lambda img, c, aa: cv2.putText(img, stamp, org, font, h / 900,
                                                                  c, 1, aa)))
        return sketch

    def _finish(self, img: np.ndarray, index: int) -> np.ndarray:
        """Soft optics and sensor noise (a random crop of a fixed noise field)."""
        dy, dx = np.random.default_rng([self.seed, index, 7]).integers(0, 32, 2)
        out = cv2.GaussianBlur(img, (3, 3), 0).astype(np.float32)
        out += self._noise[dy:dy + self.height, dx:dx + self.width]
        return out.clip(0, 255).astype(np.uint8)


def write_clip(path: str | Path, n_frames: int, *, width: int = 640, height: int = 360,
               fps: float = 10.0, seed: int = 0, codec: str = "libx264") -> list[Scene]:
    """Write frames ``0 .. n_frames - 1`` as an H.264 yuv420p MP4 (crf 28, moov atom first,
    so browsers can play it) and return their scenes."""
    import av

    if n_frames < 1 or width % 2 or height % 2:
        raise ValueError(f"Expected n_frames >= 1 and an even width and height (yuv420p), but "
                         f"found {n_frames=}, {width=}, {height=}")
    scenes = SceneGenerator(width, height, seed=seed, fps=fps).clip(n_frames)
    with av.open(str(path), "w", container_options={"movflags": "+faststart"}) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), width=width,
                                height=height, pix_fmt="yuv420p",
                                options={"crf": "28", "preset": "medium"})
        for scene in scenes:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(scene.image, format="bgr24")))
        out.mux(stream.encode())
    return scenes
