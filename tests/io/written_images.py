"""Images the image-file tests write: a grey PNG of one level, a textured JPEG."""

from __future__ import annotations

import cv2
import numpy as np


def grey_png(path, level: int, size=(48, 64)) -> None:
    cv2.imwrite(str(path), np.full((*size, 3), level, np.uint8))


def photo(path, seed: int = 0, size=(96, 128)) -> bytes:
    """A JPEG of a textured scene (noise compresses to many bytes of entropy-coded data)."""
    image = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path.read_bytes()
