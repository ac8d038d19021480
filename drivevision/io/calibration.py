"""Frames to calibrate INT8 on: evenly spaced frames of a video file or a folder of images
(the user's own footage), and a digest that names them for the engine cache.

The digest is the SHA-256 of the file (a folder: of its image names and their hashes) and
the frame count, so the same footage finds its cached calibration without being decoded,
and any change to it (another clip, an image added or edited) calibrates anew.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from drivevision.config import setting
from drivevision.errors import SourceError
from drivevision.hashing import file_sha256
from drivevision.io.uri import display_uri

WHAT = "a video file or a folder of images from your own cameras"


def calibration_path(uri: str, option: str = "--calib") -> Path:
    """``uri`` as a local file or folder, or SourceError saying what ``option`` expects: the
    commands' ``--calib``, or the Python API's ``calib`` keyword."""
    path = Path(uri)
    if "://" in uri or uri.isdigit() or uri.startswith("/dev/"):
        raise SourceError(f"Expected {option} to be {WHAT}, but got the stream or camera "
                          f"{display_uri(uri)}")
    if not path.exists():
        raise SourceError(f"Expected {option} to be {WHAT}, but {uri} does not exist")
    if not (path.is_file() or path.is_dir()):
        raise SourceError(f"Expected {option} to be {WHAT}, but {uri} is neither")
    return path


def check_calibration(uri: str, option: str = "--calib") -> Path:
    """``calibration_path`` (naming ``option``), a file also opened and closed as calibration
    will open it (a video: its container, before any frame is read) and a folder checked for
    images, so footage that cannot be read is refused before any slow work. A file is opened
    once per process while it stays as it was (a command checks before the model loads, and
    the digest after)."""
    path = calibration_path(uri, option)
    if path.is_dir():
        _images(path, uri, option)
    else:
        stat = path.stat()
        try:
            _opens(uri, stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
        except SourceError as e:  # said as the option's error: which file was meant is clear
            text = str(e)
            raise SourceError(f"Expected {option} to be {WHAT}, but {text[:1].lower()}{text[1:]}"
                              ) from e
    return path


@functools.lru_cache(maxsize=16)  # an error is not kept: a file that failed is tried again
def _opens(uri: str, *_unchanged) -> None:
    """Open and close ``uri``'s container; ``_unchanged`` (device, inode, size, mtime) keys
    the file as it is now."""
    from drivevision.io.sources import open_source

    open_source(uri).close()


def _images(folder: Path, uri: str, option: str = "--calib") -> list[Path]:
    """The images in ``folder``, in natural order; SourceError when there are none."""
    from drivevision.io.images import folder_images

    images = folder_images(folder)
    if not images:
        raise SourceError(f"Expected {option} to be {WHAT}, but folder {uri} has no images")
    return images


def calibration_digest(uri: str, count: int, option: str = "--calib") -> str:
    """16 hex digits naming ``count`` frames of ``uri`` (its bytes, not its decoded pixels);
    SourceError, before any slow work, for footage that cannot be read (``check_calibration``,
    naming ``option``)."""
    path = check_calibration(uri, option)
    digest = hashlib.sha256(f"frames={count}".encode())
    if path.is_dir():
        for image in _images(path, uri):
            digest.update(f"{image.name}={file_sha256(image)};".encode())
    else:
        digest.update(file_sha256(path).encode())
    return digest.hexdigest()[:16]


def calibration_frames(uri: str, count: int, option: str = "--calib") -> list[np.ndarray]:
    """Up to ``count`` (H, W, 3) uint8 BGR frames of ``uri``, evenly spaced over it.

    A video is decoded to its end (spacing needs its length; a dashcam minute takes a few
    seconds); SourceError, naming ``option``, when nothing could be read.
    """
    from drivevision.io.sources import open_source

    calibration_path(uri, option)
    frames: list[np.ndarray] = []
    with open_source(uri) as source:
        step = max(1, (source.frame_count or 0) // count)
        for frame in source:
            if frame.index % step == 0:
                frames.append(frame.image)
            if len(frames) >= 2 * count:  # longer than its header said: space them wider
                frames, step = frames[::2], step * 2
    if not frames:
        raise SourceError(f"{setting(option, uri)}: no frame could be read")
    keep = np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int)
    return [frames[i] for i in dict.fromkeys(keep.tolist())]
