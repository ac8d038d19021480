"""Deterministic dashcam-like scenes with ground-truth boxes, for tests, demos and training.

A pinhole camera 1.3 m above a straight two-way road looks ahead while driving at 10 m/s.
Traffic, pedestrians and traffic lights are spawned per time slot from ``(seed, stream, slot)``,
so any frame renders on its own and the same ``(seed, index)`` always gives the same pixels.
This module decides what is where and what counts as ground truth; how things look (camera,
shapes, colours) is in :mod:`drivevision.synthetic.drawing`. Only numpy and cv2 are used; PyAV is
imported by :func:`write_clip` alone.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from drivevision.synthetic.drawing import DARK, FAR, LENGTH, NEAR, ScenePainter, Sketch

COCO_LABEL_IDS = {"person": 1, "car": 3, "bus": 6, "truck": 8, "traffic light": 10}
MIN_BOX_PX = 8  # boxes with a smaller side after clipping to the image are not ground truth
MIN_VISIBLE = 0.3  # nor objects with less of their silhouette left unoccluded

_EGO, _CHANGE_S = 10.0, 2.5  # our speed (m/s) and how long a lane change takes (s)
# stream: (slot period s, spawn probability, longest life s); see _make_track
_STREAMS = {"oncoming": (1.6, 0.55, 8), "right": (4.5, 0.8, 75), "walk_l": (0.9, 0.4, 16),
            "walk_r": (0.9, 0.4, 16), "light": (6.0, 0.7, 13)}
_PAINTS = ((225, 225, 225), (180, 180, 175), (40, 40, 42), (40, 40, 190), (150, 80, 30),
           (95, 95, 95), (30, 190, 230), (60, 110, 50))
_SHIRTS = ((40, 40, 180), (160, 90, 40), (230, 230, 230), (40, 150, 200), (70, 70, 70))


@dataclass(frozen=True)
class Scene:
    """One rendered frame and its ground truth.

    Attributes:
        image: uint8 (H, W, 3) in BGR order.
        boxes: float32 (N, 4) xyxy pixels, ``0 <= x1 < x2 <= W`` and ``0 <= y1 < y2 <= H``.
        labels: N COCO class names (keys of ``COCO_LABEL_IDS``), one per box.
        ids: int64 (N,) identity of each box's object (>= 0), the same in every frame the
            object is in and never shared by two objects of one drive; the generator always
            sets it, other makers of scenes may leave it None.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: tuple[str, ...]
    ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(f"Expected a uint8 (H, W, 3) image, but found {self.image.dtype} "
                             f"{self.image.shape}")
        if self.boxes.shape != (len(self.labels), 4) or self.boxes.dtype != np.float32:
            raise ValueError(f"Expected float32 boxes of shape ({len(self.labels)}, 4), but found "
                             f"{self.boxes.dtype} {self.boxes.shape}")
        if self.ids is not None and (self.ids.shape != (len(self.labels),)
                                     or self.ids.dtype != np.int64):
            raise ValueError(f"Expected int64 ids of shape ({len(self.labels)},), but found "
                             f"{self.ids.dtype} {self.ids.shape}")


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
        return _Track(kind, start, -3.5, FAR, -_EGO - rng.uniform(6, 10), paint)
    if stream == "right":  # slower traffic; some cars cut into our lane and speed away
        cut_in = kind == "car" and rng.random() < 0.4
        return _Track(kind, start, 3.5, FAR, -4.0, paint, 0.0, 3.0, 21.5 if cut_in else math.inf)
    if stream == "light":
        x = float(rng.choice([2.0, 5.9]))  # over the right lane, or on the pole
        return _Track("traffic light", start, x, FAR, -_EGO, DARK, extra=rng.uniform(0, 9))
    x = rng.uniform(5.7, 7.6) * (1 if stream == "walk_r" else -1)
    walk = rng.uniform(-1.5, 1.5) if rng.random() < 0.7 else 0.0
    shirt = _SHIRTS[rng.integers(len(_SHIRTS))]
    return _Track("person", start, x, FAR, walk - _EGO, shirt, extra=rng.uniform(1.55, 1.9))


@lru_cache(maxsize=8192)
def _spawn(seed: int, stream: str, slot: int) -> _Track | None:
    period, prob, _ = _STREAMS[stream]
    rng = np.random.default_rng([seed, list(_STREAMS).index(stream), slot + (1 << 40)])
    if rng.random() >= prob:
        return None
    return _make_track(stream, rng, (slot + rng.uniform(0, 0.25)) * period)


def _ident(stream: str, slot: int) -> int:
    """The object spawned in ``slot`` of ``stream``: one id per object of a drive, >= 0
    (slots start below 0 for what is already on the road at time 0, never below -64)."""
    return (slot + 64) * len(_STREAMS) + list(_STREAMS).index(stream)


class SceneGenerator:
    """Renders frame ``index`` of an endless drive, deterministic for ``(seed, index)``.

    Images are uint8 (height, width, 3) BGR. ``fps`` only maps indices to time: the same seed
    at another frame rate shows the same drive sampled differently. ``shake`` (pixels) moves
    the camera with the car's yaw and pitch: the world (not the bonnet) sways by about that
    much left and right, a third of it up and down, with frame-to-frame jitter (road bumps)
    of a third of it; 0, the default, is a steady camera.
    """

    def __init__(self, width: int = 640, height: int = 360, seed: int = 0, fps: float = 10.0,
                 shake: float = 0.0):
        if width < 16 or height < 16 or fps <= 0 or seed < 0 or not shake >= 0:
            raise ValueError(f"Expected width, height >= 16, fps > 0, seed >= 0 and shake >= 0, "
                             f"but found {width=}, {height=}, {fps=}, {seed=}, {shake=}")
        self.width, self.height, self.seed, self.fps = width, height, seed, fps
        self.shake = shake
        self._phases = np.random.default_rng([seed, 17]).uniform(0, 2 * np.pi, 3)
        self._painter = ScenePainter(width, height)
        rng = np.random.default_rng([seed, 99])
        self._bg = self._painter.background(rng)
        self._noise = rng.normal(0, 3, (height + 32, width + 32, 3)).astype(np.float32)

    def frame(self, index: int) -> Scene:
        """Scene ``index`` (>= 0): its image and the boxes of its visible objects, far first."""
        if index < 0:
            raise ValueError(f"Expected a frame index >= 0, but found {index}")
        t, img = index / self.fps, self._bg.copy()
        self._painter.markings(_EGO * t).paint(img)
        items = sorted(self._items(t), key=lambda s: -s.depth)
        boxes, labels, ids = self._render(img, items, t, self._shift(index))
        self._painter.hood(t).paint(img)
        return Scene(self._finish(img, index), boxes, labels, ids)

    def clip(self, n: int, start: int = 0) -> list[Scene]:
        """Scenes of frames ``start .. start + n - 1``."""
        return [self.frame(i) for i in range(start, start + n)]

    def _items(self, t: float) -> list[Sketch]:
        """Trees every 15 m on both sides, and every live track at time ``t``."""
        items = [self._painter.tree(x, z) for x in (-9.5, 9.5)
                 for z in np.arange(-((_EGO * t + x) % 15.0), FAR, 15.0) if z > 1.0]
        for stream, (period, _, life) in _STREAMS.items():
            for slot in range(math.floor((t - life) / period), math.floor(t / period) + 1):
                track = _spawn(self.seed, stream, slot)
                if track is None or t < track.start:
                    continue
                x, z = track.at(t - track.start)
                if NEAR - LENGTH.get(track.kind, 0.5) < z < FAR:
                    sketch = self._sketch(track, x, z, t)
                    sketch.ident = _ident(stream, slot)
                    items.append(sketch)
        return items

    def _shift(self, index: int) -> tuple[float, float]:
        """The camera's pan and tilt at frame ``index`` as an image shift (dx, dy) in pixels."""
        if not self.shake:
            return 0.0, 0.0
        t, (a, b, c) = index / self.fps, self._phases
        jitter = np.random.default_rng([self.seed, index, 13]).normal(0, self.shake / 3, 2)
        sway = math.sin(2 * math.pi * 0.25 * t + a) + 0.5 * math.sin(2 * math.pi * 0.9 * t + b)
        tilt = math.sin(2 * math.pi * 1.3 * t + c) / 3
        return self.shake * sway + jitter[0], self.shake * tilt + jitter[1] / 2

    def _sketch(self, track: _Track, x: float, z: float, t: float) -> Sketch:
        """How ``track`` looks at time ``t`` when it stands ``x`` m right and ``z`` m ahead."""
        painter, age = self._painter, t - track.start
        if track.kind == "person":
            return painter.person(x, z, track.extra, track.colour, age, abs(track.vz + _EGO))
        if track.kind == "traffic light":
            return painter.light(x, z, track.colour, t + track.extra)
        return painter.vehicle(track.kind, track.colour, x, z, oncoming=track.vz < -_EGO)

    def _render(self, img: np.ndarray, items: list[Sketch], t: float,
                shift: tuple[float, float]) -> tuple[np.ndarray, tuple[str, ...], np.ndarray]:
        """Paint far to near, shift the view by ``shift`` (camera shake); keep boxes big
        enough and visible enough in the id mask."""
        assert len(items) < 254, "ids 254 (unlabelled) and 255 (hood) are reserved"
        mask, size = np.zeros(img.shape[:2], np.uint8), (self.width, self.height)
        areas = {}
        for i, item in enumerate(items, 1):
            item.paint(img)
            item.paint(mask, i if item.label else 254)
            if item.label is not None:
                areas[i] = np.count_nonzero(mask[self._roi(item.box, (0, 0))] == i)
        if shift != (0.0, 0.0):
            warp = np.array([[1, 0, shift[0]], [0, 1, shift[1]]], np.float32)
            img[:] = cv2.warpAffine(img, warp, size, borderMode=cv2.BORDER_REFLECT_101)
            mask = cv2.warpAffine(mask, warp, size, flags=cv2.INTER_NEAREST, borderValue=0)
        self._painter.hood(t).paint(mask, 255)
        rois = {i: self._roi(items[i - 1].box, shift) for i in areas}
        keep = [i for i, roi in rois.items() if areas[i] and self._big(roi)
                and np.count_nonzero(mask[roi] == i) >= MIN_VISIBLE * areas[i]]
        boxes = np.array([items[i - 1].box for i in keep], np.float32).reshape(-1, 4)
        boxes = (boxes + np.float32(shift * 2)).clip(0, np.array(size * 2, np.float32))
        ids = np.array([items[i - 1].ident for i in keep], np.int64)
        return boxes, tuple(items[i - 1].label for i in keep), ids

    def _roi(self, box: np.ndarray, shift: tuple[float, float]) -> tuple[slice, slice]:
        """The pixels of ``box`` (float xyxy) moved by ``shift``, clipped to the image."""
        size = (self.width, self.height)
        corners = box.reshape(2, 2) + np.array(shift)
        (x1, y1), (x2, y2) = np.clip(corners, 0, size).round().astype(int)
        return np.s_[y1:y2, x1:x2]

    @staticmethod
    def _big(roi: tuple[slice, slice]) -> bool:
        return min(roi[0].stop - roi[0].start, roi[1].stop - roi[1].start) >= MIN_BOX_PX

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
    if n_frames < 1 or width % 2 or height % 2:
        raise ValueError(f"Expected n_frames >= 1 and an even width and height (yuv420p), but "
                         f"found {n_frames=}, {width=}, {height=}")
    scenes = SceneGenerator(width, height, seed=seed, fps=fps).clip(n_frames)
    write_scenes(path, scenes, fps=fps, codec=codec)
    return scenes


def write_scenes(path: str | Path, scenes: list[Scene], *, fps: float = 10.0,
                 codec: str = "libx264") -> None:
    """Write the scenes' images (all of one even size) as ``write_clip`` does."""
    import av

    height, width = scenes[0].image.shape[:2]
    with av.open(str(path), "w", container_options={"movflags": "+faststart"}) as out:
        stream = out.add_stream(codec, rate=Fraction(fps).limit_denominator(1001), width=width,
                                height=height, pix_fmt="yuv420p",
                                options={"crf": "28", "preset": "medium"})
        for scene in scenes:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(scene.image, format="bgr24")))
        out.mux(stream.encode())
