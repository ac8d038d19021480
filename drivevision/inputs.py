"""What the detector takes: one frame as an (H, W, 3) uint8 BGR array (``as_bgr``) and a
batch of them (``frame_list``); what is refused is a TypeError or ValueError that says what
came and how to make the right thing."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np

from drivevision.render import channels_first_hint, frame_kind


def as_bgr(frame: np.ndarray) -> np.ndarray:
    """A frame as (H, W, 3) uint8 BGR: grayscale is repeated, BGRA drops its alpha."""
    if not isinstance(frame, np.ndarray) or frame.dtype != np.uint8:
        raise TypeError(f"Expected a uint8 numpy image (H, W[, C]), but found "
                        f"{frame_kind(frame)}")
    if frame.ndim in (2, 3) and (frame.shape[0] < 1 or frame.shape[1] < 1):
        raise ValueError(f"Expected an image with height and width >= 1, but found shape "
                         f"{frame.shape}")
    if frame.ndim == 2 or (frame.ndim == 3 and frame.shape[2] == 1):
        return np.repeat(frame.reshape(frame.shape[0], frame.shape[1], 1), 3, axis=2)
    if frame.ndim == 3 and frame.shape[2] in (3, 4):
        return frame[:, :, :3]
    raise ValueError(f"Expected an image of shape (H, W), (H, W, 3) or (H, W, 4), "
                     f"but found shape {frame.shape}{channels_first_hint(frame.shape)}")


def frame_list(frames: Iterable[np.ndarray]) -> Sequence[np.ndarray]:
    """``frames`` as a sequence (a generator's frames taken in); TypeError or ValueError for
    what is not a batch of frames (one frame, a path)."""
    if isinstance(frames, np.ndarray):
        if frames.ndim != 4:
            raise ValueError(f"Expected a list of frames or an (N, H, W, 3) array, but found "
                             f"an array of shape {frames.shape}; for one frame use "
                             "detector(frame)")
        return frames
    if isinstance(frames, (str, os.PathLike)) or not isinstance(frames, Iterable):
        raise TypeError(f"Expected a list (or any iterable) of frames, but found "
                        f"{frame_kind(frames)}")
    return frames if isinstance(frames, Sequence) else list(frames)


def batch_kind(frames) -> str:
    if isinstance(frames, np.ndarray):
        return f"an array of shape {frames.shape}"
    return f"a {type(frames).__name__} of {len(frames)}"
