"""Camera motion between consecutive frames, from sparse optical flow (as in BoT-SORT).

Corners (``cv2.goodFeaturesToTrack``) found away from the detected objects in a downscaled
grey frame are followed into the next one (``cv2.calcOpticalFlowPyrLK``); a rotation, uniform
scale and shift fitted to them with RANSAC (``cv2.estimateAffinePartial2D``) is the camera's
motion, which moving objects and a few wrong flows do not sway. The corners that fitted are
followed on into the frame after, still away from the objects; new ones are searched for
only when fewer than half are left (as a KLT tracker does), which halves the cost.
"""

from __future__ import annotations

import cv2
import numpy as np

IDENTITY = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


class CameraMotion:
    """Estimates, frame after frame, the affine motion of the whole image.

    Args:
        width: frames are downscaled to this width (pixels) first; wider is finer and slower.
        max_corners: corners followed per frame.
    """

    def __init__(self, width: int = 320, max_corners: int = 120):
        if width < 32 or max_corners < 10:
            raise ValueError(f"Expected width >= 32 and max_corners >= 10, but got {width=}, "
                             f"{max_corners=}")
        self.width, self.max_corners = width, max_corners
        self.reset()

    def __repr__(self) -> str:
        return f"CameraMotion(width={self.width!r}, max_corners={self.max_corners!r})"

    def reset(self) -> None:
        """Forget the previous frame: the next estimate is the identity."""
        self._prev: np.ndarray | None = None
        self._corners: np.ndarray | None = None

    def estimate(self, frame: np.ndarray, boxes: np.ndarray | None = None) -> np.ndarray:
        """The (2, 3) float64 affine mapping the previous frame's pixels to ``frame``'s.

        Args:
            frame: uint8 (H, W, 3) BGR (or (H, W) grey), the same size every call.
            boxes: float (N, 4) xyxy pixels of ``frame``'s objects, left out of the corners
                followed into the next frame (they move on their own).

        The identity on the first frame, on a frame of another size, and when too few
        corners could be followed (a blank or fully changed view).
        """
        scale = min(1.0, self.width / frame.shape[1])
        small = frame if scale == 1.0 else cv2.resize(  # sampling: fast, and enough for corners
            frame, (round(frame.shape[1] * scale), round(frame.shape[0] * scale)),
            interpolation=cv2.INTER_LINEAR)
        if small.ndim == 3:
            small = cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)
        affine, kept = IDENTITY.copy(), None
        if self._prev is not None and self._prev.shape == small.shape:
            affine, kept = self._follow(small, scale)
        self._prev = small
        if kept is not None:
            kept = kept[_outside(kept, small.shape, boxes, scale)]
        if kept is None or len(kept) < self.max_corners // 2:
            kept = cv2.goodFeaturesToTrack(small, self.max_corners, 0.01, 5,
                                           mask=_background(small.shape, boxes, scale))
        self._corners = kept
        return affine

    def _follow(self, small: np.ndarray,
                scale: float) -> tuple[np.ndarray, np.ndarray | None]:
        """The affine from the previous frame and the corners that fit it, where they are
        now ((K, 1, 2) float32, downscaled pixels; None when the estimate failed)."""
        if self._corners is None or len(self._corners) < 10:
            return IDENTITY.copy(), None
        moved, status, _ = cv2.calcOpticalFlowPyrLK(self._prev, small, self._corners, None,
                                                    winSize=(11, 11), maxLevel=2)
        ok = status.ravel() == 1
        if ok.sum() < 10:
            return IDENTITY.copy(), None
        affine, inliers = cv2.estimateAffinePartial2D(
            self._corners[ok], moved[ok], method=cv2.RANSAC, ransacReprojThreshold=1.0)
        if affine is None:
            return IDENTITY.copy(), None
        affine[:, 2] /= scale  # the shift in full-size pixels
        return affine, moved[ok][inliers.ravel() == 1]


def _outside(points: np.ndarray, shape: tuple[int, int], boxes: np.ndarray | None,
             scale: float) -> np.ndarray:
    """bool (K,): which (K, 1, 2) points of a downscaled frame are inside it and in no box."""
    x, y = points[:, 0, 0], points[:, 0, 1]
    keep = (x >= 0) & (y >= 0) & (x < shape[1] - 1) & (y < shape[0] - 1)
    if boxes is not None and len(boxes):
        b = np.asarray(boxes) * scale
        inside = ((x[:, None] >= b[None, :, 0]) & (x[:, None] < b[None, :, 2])
                  & (y[:, None] >= b[None, :, 1]) & (y[:, None] < b[None, :, 3]))
        keep &= ~inside.any(1)
    return keep


def _background(shape: tuple[int, int], boxes: np.ndarray | None,
                scale: float) -> np.ndarray:
    """uint8 mask of a downscaled frame: 255 where no box is."""
    mask = np.full(shape, 255, np.uint8)
    if boxes is not None and len(boxes):
        for x1, y1, x2, y2 in np.round(np.asarray(boxes) * scale).astype(int).tolist():
            mask[max(y1, 0):max(y2, 0), max(x1, 0):max(x2, 0)] = 0
    return mask
