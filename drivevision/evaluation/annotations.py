"""What the evaluation reads into: boxes per frame, for ground truth and predictions alike."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class FrameBoxes:
    """The boxes of one frame, every field the same length N.

    Attributes:
        boxes: float64 (N, 4) xyxy in the frame's pixels, ``x1 <= x2`` and ``y1 <= y2``.
        labels: N class names, lower case.
        scores: float64 (N,) confidences (predictions), None for ground truth.
        track_ids: int64 (N,) object identities, None when the file has none.
        ignore: bool (N,) ground truth that neither counts as missed nor makes a false
            positive when detected (COCO's crowd regions, MOTChallenge's flag 0); None: none.
    """

    boxes: np.ndarray
    labels: tuple[str, ...]
    scores: np.ndarray | None = None
    track_ids: np.ndarray | None = None
    ignore: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.labels)
        assert self.boxes.shape == (n, 4), (self.boxes.shape, n)
        for name in ("scores", "track_ids", "ignore"):
            value = getattr(self, name)
            assert value is None or value.shape == (n,), (name, value.shape, n)

    @classmethod
    def empty(cls) -> FrameBoxes:
        return cls(np.zeros((0, 4)), (), np.zeros(0))

    def __len__(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Annotations:
    """A whole file: frames by index, the class names it knows, frame sizes where stated.

    ``classes`` is the file's vocabulary in its own order (a COCO file's categories, else the
    names in order of first appearance); ``sizes`` maps a frame to its (width, height) when
    the file says; ``file_names`` a frame to its image file's name (COCO, a YOLO dataset,
    predictions of a folder of images); ``one_class`` marks ground truth without class names
    (MOTChallenge), which every predicted class is scored against; ``match_files`` ground
    truth whose frames predictions are matched to by file name, not by frame index (a YOLO
    dataset: ``yolo.match_files``); ``notes`` what reading it left out and why (KITTI's
    difficulty level), for the user to read with the scores; ``stand_ins`` maps a frame to
    how many of its boxes, the last ones, are a second, ignored box of an object of its
    boxes under another class (KITTI's Van for car), which counts of boxes leave out;
    ``min_height`` the height in pixels (y2 - y1) below which a detection that finds no
    object is ignored, neither a hit nor a false positive, as COCO ignores one outside the
    area range it scores (KITTI's difficulty level; 0: every detection counts).
    """

    path: str
    frames: dict[int, FrameBoxes]
    classes: tuple[str, ...]
    sizes: dict[int, tuple[int, int]] = field(default_factory=dict)
    one_class: bool = False
    file_names: dict[int, str] = field(default_factory=dict)
    match_files: bool = False
    notes: tuple[str, ...] = ()
    stand_ins: dict[int, int] = field(default_factory=dict)
    min_height: float = 0.0

    @property
    def named(self) -> bool:
        """Every frame names its image, each by a stem of its own (a COCO file of a folder,
        a YOLO dataset): frames can be matched to images by name."""
        names = [self.file_names.get(f) for f in self.frames]
        return all(names) and len({Path(n).stem for n in names}) == len(names)

    @property
    def has_tracks(self) -> bool:
        boxes = [f for f in self.frames.values() if len(f)]
        return bool(boxes) and all(f.track_ids is not None for f in boxes)
