"""Files and folders: video files (OpenCV's FFmpeg backend), images and folders of images.

Every source yields ``Frame`` objects whose image is (H, W, 3) uint8 BGR, grayscale and
BGRA already converted. Open them through ``drivevision.io.sources.open_source``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from drivevision.errors import SourceError
from drivevision.io.frames import Frame, Source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


def natural_key(path: Path) -> list:
    """Sort key that puts frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 BGR (grayscale, 16-bit and alpha converted)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"Cannot decode image {path} (damaged or not an image)")
    return image


def frame_time_ms(index: int, fps: float, position_ms: float = 0.0) -> float:
    """Frame ``index``'s time: ``position_ms`` (the container's), or ``index / fps`` when
    there is none (<= 0; images have none)."""
    return position_ms if position_ms > 0 else index * 1000.0 / fps


class ImageSource(Source):
    """Still images, one frame each, in natural order; ``fps`` spaces their timestamps.

    An image that cannot be decoded is skipped with a note (its index and time stay unused,
    so every frame keeps its place in the folder); SourceError if none can be decoded.
    """

    def __init__(self, uri: str, paths: list[Path], fps: float = 10.0):
        super().__init__(uri, fps=fps, frame_count=len(paths))
        self.paths = paths

    def __iter__(self) -> Iterator[Frame]:
        skipped: list[Path] = []
        try:
            for i, path in enumerate(self.paths):
                try:
                    image = read_image(path)
                except SourceError:
                    skipped.append(path)
                    continue
                yield Frame(i, frame_time_ms(i, self.fps), image, time.monotonic())
        finally:
            if skipped:
                self._note_skipped(skipped)
        if skipped and len(skipped) == len(self.paths):
            raise SourceError(f"{self.uri}: none of the {len(self.paths)} images could be "
                              "decoded (damaged or not images)")

    def _note_skipped(self, skipped: list[Path]) -> None:
        names = ", ".join(p.name for p in skipped[:5]) + (", ..." if len(skipped) > 5 else "")
        self.notes.append(f"{self.uri}: skipped {len(skipped)} of {len(self.paths)} images that "
                          f"could not be decoded (damaged or not images): {names}")


def open_video_file(path: str | Path) -> tuple[cv2.VideoCapture, float, int | None]:
    """An opened OpenCV FFmpeg capture of a file, its frame rate (30 if the file has none
    that makes sense) and its frame count (None when unknown)."""
    cap = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not cap.isOpened():
        raise SourceError(f"Cannot open {path} as a video (not a video file, or a codec "
                          "this OpenCV cannot decode)")
    fps = cap.get(cv2.CAP_PROP_FPS)
    return cap, (fps if 0 < fps < 1000 else 30.0), stored_frame_count(path)


def stored_frame_count(path: str | Path) -> int | None:
    """The frame count the container stores (MP4, MOV, AVI do), or None.

    OpenCV's CAP_PROP_FRAME_COUNT falls back to duration x fps, which is wrong for
    variable-frame-rate files; only a stored count can tell a truncated file.
    """
    try:
        with av.open(str(path)) as container:
            count = container.streams.video[0].frames
    except (av.FFmpegError, IndexError, OSError):
        return None
    return count or None


class VideoFileSource(Source):
    """A video file decoded by OpenCV's FFmpeg backend.

    A frame that fails to decode is skipped and reading goes on, so a damaged stretch costs
    only its own frames; reading ends at the stored frame count, or after
    ``MAX_FAILED_READS`` failed reads in a row (the end of the file, or damage past repair).
    """

    MAX_FAILED_READS = 250

    def __init__(self, uri: str, path: Path):
        self._cap, fps, count = open_video_file(path)
        super().__init__(uri, fps=fps, frame_count=count)

    def __iter__(self) -> Iterator[Frame]:
        index = failed = skipped = 0  # skipped: failed reads that a good frame followed
        while failed < self.MAX_FAILED_READS and index != self.frame_count:
            ok, image = self._cap.read()
            if not ok:
                failed += 1
                continue
            skipped, failed = skipped + failed, 0
            timestamp = frame_time_ms(index, self.fps, self._cap.get(cv2.CAP_PROP_POS_MSEC))
            yield Frame(index, timestamp, image, time.monotonic())
            index += 1
        self._check_complete(index, skipped)

    def _check_complete(self, read: int, skipped: int) -> None:
        if read == 0:
            raise SourceError(f"{self.uri}: no frame could be decoded (damaged or empty video)")
        count = self.frame_count
        if count and read >= count:
            return  # every frame came, whatever hiccups the decoder had on the way
        if skipped and count:
            self.notes.append(f"{self.uri}: decoded {read} of {count} frames; {count - read} "
                              "could not be decoded and were skipped (the file looks damaged "
                              "or truncated)")
        elif skipped:
            self.notes.append(f"{self.uri}: decoded {read} frames; skipped {skipped} failed "
                              "reads of frames that could not be decoded (the file looks "
                              "damaged)")
        elif count and read < count:
            self.notes.append(f"{self.uri}: decoding stopped after {read} of {count} "
                              "frames; the file looks truncated or damaged")

    def close(self) -> None:
        self._cap.release()
