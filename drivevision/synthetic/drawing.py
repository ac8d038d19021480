"""How the synthetic dashcam scenes look: a pinhole camera and the shapes it paints.

:class:`ScenePainter` projects world metres (right, up, ahead of the camera) to float pixels
and turns road, trees, vehicles, people, traffic lights and our own bonnet into
:class:`Sketch` objects. A sketch is a list of drawing operations that can be replayed on a
uint8 (H, W, 3) BGR image (anti-aliased) and on a uint8 (H, W) id mask (hard edges), which is
how :mod:`drivevision.synthetic.scenes` finds what is left visible of each object. Only numpy and
cv2 are used; nothing here is random except :meth:`ScenePainter.background`'s ``rng``.
"""

from __future__ import annotations

import math

import cv2
import numpy as np

CAM_H, NEAR, FAR = 1.3, 0.25, 110.0  # camera height, near plane and far end of the road (m)
HAZE = (205.0, 195.0, 185.0)
# (width, y0, y1, zz0, zz1, glazed) boxes in metres, zz from the rear; wheel radius and axles
_PARTS = {"car": ((1.8, 0.3, 0.95, 0.0, 4.4, False), (1.55, 0.95, 1.48, 1.0, 3.3, True)),
          "truck": ((2.5, 0.55, 3.4, 0.0, 5.6, False), (2.35, 0.45, 2.7, 5.7, 7.6, True)),
          "bus": ((2.55, 0.3, 3.15, 0.0, 11.5, True),)}
LENGTH = {kind: max(p[4] for p in parts) for kind, parts in _PARTS.items()}  # vehicles (m)
_WHEELS = {"car": (0.32, (0.85, 3.55)), "truck": (0.48, (1.2, 4.4, 6.7)), "bus": (0.5, (2.4, 9.4))}
DARK = (28, 28, 30)
_GLASS, _WHITE, _YELLOW = (80, 62, 50), (235, 235, 235), (40, 190, 225)


def _shade(colour: tuple, z: float, k: float = 1.0) -> tuple:
    """``colour`` darkened by ``k`` and faded into the haze with distance ``z``."""
    fog = min(z / FAR, 1.0) * 0.7
    return tuple(c * k * (1 - fog) + h * fog for c, h in zip(colour, HAZE))


def _seen_side(x: float, w: float) -> int:
    """The vertical side of a box centred at ``x`` that the camera sees: -1 left, 1 right."""
    return -1 if x > w / 2 else 1 if x < -w / 2 else 0


class Sketch:
    """Drawing operations in float pixels, replayed on the BGR image and on the id mask.

    ``depth`` (m) orders sketches far to near; ``label`` (a COCO class name, or None for
    scenery), ``box`` (float (4,) xyxy pixels, unclipped) and ``ident`` (the object's id, set
    by whoever places it) are the ground truth it stands for.
    """

    def __init__(self, depth: float = 0.0, label: str | None = None, box=None):
        self.depth, self.label, self.box, self.ops = depth, label, box, []
        self.ident: int | None = None

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


class ScenePainter:
    """A camera ``CAM_H`` m above the road looking ahead, and the sketches of what it sees.

    Positions are world metres: ``x`` right of the camera, ``y`` up from the road, ``z`` ahead;
    colours are BGR tuples, faded into the haze with distance.
    """

    def __init__(self, width: int, height: int):
        self.width, self.height = width, height
        self.f, self.cx, self.hz = 0.9 * width, width / 2, 0.45 * height

    def project(self, x, y, z) -> np.ndarray:
        """World metres (right, up, ahead) to float (..., 2) pixels; z is clamped to the near
        plane, which is exact for the camera-facing faces and clips the rest well enough."""
        z = np.maximum(z, NEAR)
        u, v = self.cx + self.f * np.asarray(x) / z, self.hz + self.f * (CAM_H - np.asarray(y)) / z
        out = np.empty(np.broadcast(u, v).shape + (2,))
        out[..., 0], out[..., 1] = u, v
        return out

    def rect(self, x: float, w: float, y0: float, y1: float, z) -> np.ndarray:
        """Corners of an upright rectangle facing the camera."""
        return self.project([x - w / 2, x + w / 2, x + w / 2, x - w / 2], [y0, y0, y1, y1], z)

    def flat(self, x0: float, x1: float, y: float, z0, z1) -> np.ndarray:
        """Corners (..., 4, 2) of horizontal rectangles (road, roof, shadow); z0, z1 may be (N,)."""
        z0, z1 = np.asarray(z0, float)[..., None], np.asarray(z1, float)[..., None]
        return self.project([x0, x1, x1, x0], y, np.concatenate([z0, z0, z1, z1], -1))

    def background(self, rng: np.random.Generator) -> np.ndarray:
        """Sky, skyline, grass, pavements and road: uint8 (height, width, 3) BGR."""
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
        road = Sketch()
        road.poly(self.flat(-8.0, 8.0, 0, NEAR, FAR), (150, 150, 148))  # pavements
        road.poly(self.flat(-5.25, 5.25, 0, NEAR, FAR), (88, 86, 86))
        road.paint(img)
        z = self.f * CAM_H / np.maximum(np.arange(h - hz) + hz - self.hz, 1e-3)
        fog = (np.clip(z / FAR, 0, 1) * 0.7)[:, None, None]
        img[hz:] = img[hz:] * (1 - fog) + np.array(HAZE) * fog
        img[hz:] += cv2.GaussianBlur(rng.normal(0, 7, (h - hz, w)), (5, 5), 0)[..., None]
        return img.clip(0, 255).astype(np.uint8)

    def markings(self, travelled: float) -> Sketch:
        """Edge lines, a double yellow centre line and lane dashes that come toward us as the
        camera has ``travelled`` metres."""
        sketch, solid = Sketch(), np.arange(NEAR, FAR, 5.0)  # in segments, for the haze
        dashes = np.arange(-(travelled % 12.0), FAR, 12.0)
        dashes = dashes[dashes > NEAR - 3]
        for x, colour, z0, dz in ((-5.2, _WHITE, solid, 5), (5.2, _WHITE, solid, 5),
                                  (-1.87, _YELLOW, solid, 5), (-1.63, _YELLOW, solid, 5),
                                  (1.75, _WHITE, dashes, 3)):
            for quad, z in zip(self.flat(x - 0.07, x + 0.07, 0, z0, z0 + dz), z0):
                sketch.poly(quad, _shade(colour, z))
        return sketch

    def vehicle(self, kind: str, paint: tuple, x: float, z: float, oncoming: bool) -> Sketch:
        """A car, truck or bus whose near end is ``z`` ahead; ``oncoming`` ones show their front."""
        (radius, axles), length, w = _WHEELS[kind], LENGTH[kind], _PARTS[kind][0][0]
        parts = sorted(((pw, y0, y1, z + (length - b), z + (length - a), g) if oncoming else
                        (pw, y0, y1, z + a, z + b, g) for pw, y0, y1, a, b, g in _PARTS[kind]),
                       key=lambda p: -p[3])
        px = self.project(*np.array([(x + sx * p[0] / 2, y, zz) for p in parts for sx in (-1, 1)
                                     for y in (0, p[2]) for zz in p[3:5]]).T)
        sketch = Sketch(z, kind, np.concatenate([px.min(0), px.max(0)]))
        shadow = self.flat(x - w / 2 - 0.1, x + w / 2 + 0.1, 0, z, z + length)
        sketch.poly(shadow, _shade(DARK, z))
        for pw, _, y1, z0, z1, _ in parts:
            if y1 < CAM_H:  # roof or bonnet seen from above
                sketch.poly(self.flat(x - pw / 2, x + pw / 2, y1, z0, z1), _shade(paint, z0, 0.85))
        lamp = (215, 235, 245) if oncoming else (35, 35, 210)
        for part in parts:
            self._part(sketch, x, part, paint, part[3] == z, lamp)
        side, ang = _seen_side(x, w), np.linspace(0, 2 * np.pi, 14)
        for a in [length - a if oncoming else a for a in axles] if side else ():
            sketch.poly(self.project(x + side * w / 2, radius * (1 + np.sin(ang)),
                                     z + a + radius * np.cos(ang)), _shade(DARK, z))
        return sketch

    def _part(self, sketch: Sketch, x: float, part: tuple, paint: tuple, first: bool,
              lamp: tuple) -> None:
        """One box of a vehicle: its visible side with windows, then its near face."""
        w, y0, y1, z0, z1, glazed = part
        gy0, gy1, side = max(y0 + 0.05, y1 - 1.6), y1 - 0.07, _seen_side(x, w)
        if side:
            xs, n = x + side * w / 2, max(1, round((z1 - z0) / 2.3))
            sketch.poly(self.project(xs, [y0, y0, y1, y1], [z0, z1, z1, z0]),
                        _shade(paint, z0, 0.7))
            for a in np.linspace(z0, z1, n + 1)[:-1] if glazed else ():
                b = a + (z1 - z0) / n - 0.15
                sketch.poly(self.project(xs, [gy0, gy0, gy1, gy1], [a + 0.15, b, b, a + 0.15]),
                            _shade(_GLASS, z0, 0.8))
        for sx in (-1, 1) if first else ():  # tyres under the bumper
            tyre = self.rect(x + sx * (w / 2 - 0.2), 0.3, 0, y0 + 0.1, z0 + 0.5)
            sketch.poly(tyre, _shade(DARK, z0))
        sketch.poly(self.rect(x, w, y0, y1, z0), _shade(paint, z0))
        if glazed:
            sketch.poly(self.rect(x, w - 0.24, gy0, gy1, z0), _shade(_GLASS, z0))
        for sx in (-1, 1) if first else ():
            light = self.rect(x + sx * (w / 2 - 0.22), 0.3, y0 + 0.35, y0 + 0.55, z0)
            sketch.poly(light, _shade(lamp, z0))
        if first:  # number plate
            sketch.poly(self.rect(x, 0.5, y0 + 0.1, y0 + 0.26, z0), _shade(_WHITE, z0, 0.95))

    def person(self, x: float, z: float, height: float, shirt: tuple, age: float,
               speed: float) -> Sketch:
        """A person ``height`` m tall, ``age`` s into a walk at ``speed`` m/s (legs swing)."""
        h, s = height, self.f / max(z, NEAR)
        swing = 0.22 * math.sin(3.0 * age * speed)
        head = self.project(x, h - 0.11, z)
        hips = self.project([x - 0.1, x + 0.1], h * 0.5, z)
        feet = self.project([x - 0.1, x + 0.1], 0, [z - swing, z + swing])
        shoulders = self.project([x - 0.2, x + 0.2], h * 0.81, z)
        hands = self.project([x - 0.25, x + 0.25], h * 0.46, [z + swing, z - swing])
        pts = np.concatenate([head[None] - (0, 0.11 * s), hips, feet, shoulders, hands])
        pad = (0.07 * s, 0)
        sketch = Sketch(z, "person", np.concatenate([pts.min(0) - pad, pts.max(0) + pad]))
        for hip, foot in zip(hips, feet):
            sketch.line(hip, foot, 0.14 * s, _shade((60, 45, 40), z))
        sketch.poly(np.concatenate([shoulders, hips[::-1]]), _shade(shirt, z))
        for shoulder, hand in zip(shoulders, hands):
            sketch.line(shoulder, hand, 0.09 * s, _shade(shirt, z, 0.8))
        sketch.circle(head, 0.11 * s, _shade((120, 150, 195), z))
        return sketch

    def light(self, x: float, z: float, housing: tuple, clock: float) -> Sketch:
        """A pole on the right pavement holding the housing, or an arm holding it over the lane;
        ``clock`` (s) picks the lamp lit in a 9 s cycle: 4 s green, 1 s amber, 4 s red."""
        y0, s, phase = (2.7 if x > 5 else 5.0), self.f / max(z, NEAR), clock % 9.0
        box, top = self.rect(x, 0.42, y0, y0 + 1.0, z), self.project([5.9, x], y0 + 1.2, z)
        sketch = Sketch(z, "traffic light", box[[3, 1]].ravel())
        sketch.line(self.project(5.9, 0, z), top[0], 0.16 * s, _shade((150, 150, 150), z))
        sketch.line(top[0], top[1], 0.1 * s, _shade((150, 150, 150), z))
        sketch.poly(box, _shade(housing, z))
        lit = 0 if phase < 4 else 1 if phase < 5 else 2
        for k, colour in enumerate(((60, 200, 60), (40, 190, 240), (50, 50, 235))):  # G, A, R
            sketch.circle(self.project(x, y0 + 0.18 + 0.32 * k, z), 0.12 * s,
                          colour if k == lit else _shade(colour, z, 0.3))
        return sketch

    def tree(self, x: float, z: float) -> Sketch:
        sketch, s = Sketch(z), self.f / z
        trunk = self.project(x, [0, 3.0], z)
        sketch.line(trunk[0], trunk[1], 0.3 * s, _shade((40, 60, 85), z))
        for dx, dy, r, k in ((-0.6, 3.4, 1.3, 0.8), (0.6, 3.6, 1.3, 0.9), (0, 4.4, 1.4, 1.0)):
            sketch.circle(self.project(x + dx, dy, z), r * s, _shade((50, 110, 60), z, k))
        return sketch

    def hood(self, t: float) -> Sketch:
        """The bonnet of our own car across the bottom of the view, with a time stamp on it."""
        sketch, ang, (w, h) = Sketch(), np.linspace(0, np.pi, 40), (self.width, self.height)
        sketch.poly(np.stack([w * (0.5 + 0.8 * np.cos(ang)), h * (1.3 - 0.38 * np.sin(ang))], -1),
                    (38, 38, 42))
        stamp = f"2024-05-17 08:{15 + int(t) // 60:02d}:{int(t) % 60:02d}  36 km/h"
        org, font = (round(w * 0.02), round(h * 0.97)), cv2.FONT_HERSHEY_SIMPLEX
        sketch.ops.append((_WHITE, lambda img, c, aa: cv2.putText(img, stamp, org, font, h / 900,
                                                                  c, 1, aa)))
        return sketch
