"""Frames as the detector, the drawing and the trackers take them: one frame as an (H, W, 3)
uint8 BGR array (``as_bgr``), a batch of them (``frame_list``); what is refused is a
TypeError or ValueError that says what came and how to make the right thing
(``frame_kind``, ``channels_first_hint``). numpy only: drawing stays free of torch."""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

import numpy as np


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


def frame_kind(frame) -> str:
    """What a frame that is not a uint8 array is, with the likely fix (torch and PIL stay
    unimported: only the type's module is read)."""
    if frame is None:
        return "None (cv2.imread gives None for a file it cannot read: check the path)"
    if isinstance(frame, (str, os.PathLike)):
        return f"a path ({str(frame)!r}); read the image first, e.g. with cv2.imread"
    if isinstance(frame, np.ndarray):
        if frame.dtype.kind == "f":
            return f"{frame.dtype}; scale it to 0..255 and convert it with .astype(np.uint8)"
        if frame.dtype == np.uint16:
            return ("uint16 (16 bits a channel, as cv2.imread(path, cv2.IMREAD_UNCHANGED) reads "
                    "a 16-bit PNG); take its 8 high bits: (frame >> 8).astype(np.uint8)")
        if frame.dtype.kind in "iu":
            return (f"{frame.dtype}; scale it to 0..255 and convert it with "
                    "np.clip(frame, 0, 255).astype(np.uint8)")
        return str(frame.dtype)
    if any(f"{c.__module__}.{c.__name__}" == "torch.Tensor" for c in type(frame).__mro__):
        return ("Tensor; give it as a numpy (H, W, 3) uint8 array in BGR order: "
                "frame.cpu().numpy() (after .permute(1, 2, 0) for a (3, H, W) tensor)")
    if isinstance(getattr(frame, "image", None), np.ndarray):  # a source's Frame
        return f"{type(frame).__name__}; give its image: frame.image"
    if type(frame).__module__.startswith("PIL."):
        return ("Image (PIL); convert it with "
                "cv2.cvtColor(np.asarray(img.convert('RGB')), cv2.COLOR_RGB2BGR)")
    return type(frame).__name__


def channels_first_hint(shape: tuple[int, ...]) -> str:
    """The fix for a (C, H, W) image, as torch and PIL-to-tensor code holds them, or ""."""
    if len(shape) == 3 and shape[0] in (1, 3, 4) and shape[2] not in (1, 3, 4):
        return "; for a channels-first (C, H, W) array give frame.transpose(1, 2, 0)"
    return ""
