"""The one result type that crosses every boundary: boxes, scores and class ids of a frame."""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np


# eq=False keeps the class's own __eq__ and __hash__ = None: with eq=True a frozen dataclass
# adds a __hash__ over the arrays, which fails naming numpy.ndarray
@dataclass(frozen=True, eq=False)
class Detections:
    """Detections of one frame, every field the same length N.

    Attributes:
        xyxy: float32 (N, 4) boxes in the original frame's pixel coordinates,
            ``0 <= x1 <= x2 <= W`` and ``0 <= y1 <= y2 <= H``.
        scores: float32 (N,) confidences in [0, 1].
        class_ids: int32 (N,) label ids of the model that produced them.
        track_ids: optional int32 (N,) track ids.

    Arrays are converted to those dtypes on construction; indexing with a slice, an integer
    array or a boolean mask returns a new ``Detections``.
    """

    xyxy: np.ndarray
    scores: np.ndarray
    class_ids: np.ndarray
    track_ids: np.ndarray | None = None

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.size == 0:
            xyxy = xyxy.reshape(0, 4)
        object.__setattr__(self, "xyxy", xyxy)
        object.__setattr__(self, "scores", np.asarray(self.scores, dtype=np.float32))
        object.__setattr__(self, "class_ids", np.asarray(self.class_ids, dtype=np.int32))
        if self.track_ids is not None:
            object.__setattr__(self, "track_ids", np.asarray(self.track_ids, dtype=np.int32))
        self._validate()

    def _validate(self) -> None:
        if self.xyxy.ndim != 2 or self.xyxy.shape[1] != 4:
            raise ValueError(f"Expected xyxy of shape (N, 4), but found shape {self.xyxy.shape}")
        n = len(self.xyxy)
        for f in fields(self)[1:]:
            value = getattr(self, f.name)
            if value is not None and value.shape != (n,):
                raise ValueError(
                    f"Expected {f.name} of shape ({n},) to match xyxy, "
                    f"but found shape {value.shape}"
                )

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4), np.float32), np.zeros(0, np.float32), np.zeros(0, np.int32))

    def __len__(self) -> int:
        return len(self.xyxy)

    def __getitem__(self, index: slice | np.ndarray | list[int]) -> Detections:
        if isinstance(index, (int, np.integer)):
            index = [int(index)]
        return Detections(
            self.xyxy[index],
            self.scores[index],
            self.class_ids[index],
            None if self.track_ids is None else self.track_ids[index],
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Detections):
            return NotImplemented
        return all(
            np.array_equal(getattr(self, f.name), getattr(other, f.name)) for f in fields(self)
        )

    __hash__ = None  # arrays are mutable; equality is by value

    @property
    def area(self) -> np.ndarray:
        """float32 (N,) box areas in pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def with_nms(self, iou: float = 0.7, *, class_agnostic: bool = True) -> Detections:
        """The detections that non-maximum suppression keeps, in their order here.

        ``class_agnostic`` (the default) suppresses across classes: of boxes overlapping by
        more than ``iou``, only the highest-scoring is kept, whatever its class. It is for the
        same vehicle found twice, as a car and as a truck, which the model's own NMS (per
        class) keeps both of. False runs NMS within each class only.
        """
        if not 0.0 <= iou <= 1.0:
            raise ValueError(f"Expected iou in [0, 1], but got {iou}")
        if len(self) < 2:
            return self
        import torch
        from torchvision.ops import batched_nms, nms

        boxes, scores = torch.from_numpy(self.xyxy), torch.from_numpy(self.scores)
        if class_agnostic:
            keep = nms(boxes, scores, iou)
        else:
            keep = batched_nms(boxes, scores, torch.from_numpy(self.class_ids), iou)
        return self[np.sort(keep.numpy())]
