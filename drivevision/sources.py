"""Frame sources by URI: files, folders, cameras, network streams, GStreamer pipelines.

``open_source(uri)`` is the one entry point every command uses (URI forms in
``drivevision.uri``; live sources in ``drivevision.streams``). Every source yields ``Frame``
objects whose image is (H, W, 3) uint8 BGR, grayscale and BGRA already converted.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import numpy as np

from drivevision.errors import SourceError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}


@dataclass(frozen=True)
class Frame:
    """One captured frame.

    ``timestamp_ms`` is the frame's position in its stream; ``captured_at`` is
    ``time.monotonic()`` when it was read, the start of its capture-to-render latency.
    """

    index: int
    timestamp_ms: float
    image: np.ndarray
    captured_at: float
    source_id: int = 0


@dataclass
class Source:
    """Base of every source: iterate for frames, ``close()`` when done (or use ``with``).

    ``notes`` collects what the user should hear at the end (e.g. a truncated file).
    """

    uri: str
    fps: float | None = None
    frame_count: int | None = None
    live: bool = False
    notes: list[str] = field(default_factory=list)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def interrupt(self) -> None:
        """Ask a blocked or waiting ``__iter__`` (on another thread) to end soon."""

    def __enter__(self) -> Source:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def natural_key(path: Path) -> list:
    """Sort key that puts frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def read_image(path: Path) -> np.ndarray:
    """An image file as (H, W, 3) uint8 BGR (grayscale, 16-bit and alpha converted)."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise SourceError(f"Cannot decode image {path} (damaged or not an image)")
    return image


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
                yield Frame(i, i * 1000.0 / self.fps, image, time.monotonic())
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
            timestamp = self._cap.get(cv2.CAP_PROP_POS_MSEC)
            if index > 0 and timestamp <= 0:
                timestamp = index * 1000.0 / self.fps
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


def open_source(uri: str | Path, *, fps: float = 10.0, width: int | None = None,
                height: int | None = None, input_fps: float | None = None,
                transport: str | None = None, reconnect=None, realtime: bool = False) -> Source:
    """The source for ``uri`` (forms in ``drivevision.uri``), opened now so that a source
    that cannot be opened fails here with one clear message.

    Args:
        fps: frame rate given to image inputs, which have none of their own.
        width, height, input_fps: what to ask a camera (``0``, ``/dev/videoN``, ``csi://N``)
            for; other sources have their own size and rate, and refuse these.
        transport: RTSP transport, "tcp" (default) or "udp"; a ``?transport=`` query wins.
        reconnect: a ``drivevision.streams.Reconnect`` policy for cameras and streams.
        realtime: pace a file or folder at its frame rate, with live semantics.
    """
    from drivevision import streams
    from drivevision.uri import parse_uri

    if not fps > 0:
        raise ValueError(f"Expected --fps > 0 for image inputs, but got {fps}")
    spec = parse_uri(str(uri), transport=transport)
    asked = {k: v for k, v in (("width", width), ("height", height), ("input_fps", input_fps))
             if v is not None}
    if asked and spec.kind not in ("camera", "csi"):
        raise ValueError(f"Expected {', '.join(asked)} only for a camera (0, /dev/videoN, "
                         f"csi://N), but the source is {uri}")
    if spec.kind == "path":
        source = _open_path(spec.target, fps)
        return streams.RealtimeSource(source) if realtime else source
    policy = reconnect or streams.Reconnect()

    def opener():
        return streams.open_capture(spec, width=width, height=height, fps=input_fps,
                                    timeout_s=policy.stall_timeout)

    return streams.StreamSource(str(uri), opener, policy)


def _open_path(uri: str, fps: float) -> Source:
    """A video file, an image file or a folder of images."""
    path = Path(uri)
    if not path.exists():
        raise SourceError(f"No such file or directory: {uri}")
    if path.is_dir():
        images = sorted((p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                         and p.is_file()), key=natural_key)
        if not images:
            raise SourceError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {uri}")
        return ImageSource(str(uri), images, fps)
    if path.stat().st_size == 0:
        raise SourceError(f"{uri} is empty (0 bytes)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        read_image(path)  # fail now, not in the capture thread
        return ImageSource(str(uri), [path], fps)
    return VideoFileSource(str(uri), path)
