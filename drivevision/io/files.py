"""Files and folders: video files (PyAV), images and folders of images.

Every source yields ``Frame`` objects whose image is (H, W, 3) uint8 BGR, grayscale and
BGRA already converted. Open them through ``drivevision.io.sources.open_source``.
"""

from __future__ import annotations

import bisect
import re
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from drivevision.errors import SourceError
from drivevision.io import limits
from drivevision.io.frames import Frame, FrameCheck, Source
from drivevision.labels import counted

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}

# Sizes come from Pillow's header readers (installed with torchvision), and we bound them
# ourselves: its bomb warning would only repeat our note.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class ImageRefused(SourceError):
    """An image that is not decoded, or not kept, because of its size."""


def natural_key(path: Path) -> list:
    """Sort key that puts frame2.png before frame10.png."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", path.name)]


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) from an image file's header, without decoding it; None when Pillow
    cannot read the header (OpenCV may still decode the file). Pillow's own bound (179 MP)
    raises ``Image.DecompressionBombError`` with the pixel count."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, SyntaxError, ValueError):
        return None


def read_image(path: Path, max_pixels: int | None = None,
               check: FrameCheck | None = None) -> np.ndarray:
    """An image file as (H, W, 3) uint8 BGR (grayscale, 16-bit and alpha converted).

    An image whose header announces more than ``max_pixels`` (default: ``limits.max_pixels``)
    is refused before it is decoded (``ImageRefused``), as is one ``check`` refuses (given
    width and height, it returns why, or None). SourceError when it cannot be decoded.
    """
    limit = limits.max_pixels() if max_pixels is None else max_pixels
    try:
        size = image_size(path)
    except Image.DecompressionBombError as e:
        pixels = int(re.search(r"\((\d+) pixels\)", str(e)).group(1))
        if pixels > limit:
            raise ImageRefused(f"{path.name}: {limits.over_limit(pixels, limit)}") from None
        size = None
    problem = size and (limits.pixel_problem(*size, limit) or (check and check(*size)))
    if problem:
        raise ImageRefused(f"{path.name}: {problem}")
    try:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as e:  # a header Pillow cannot read that asks for too much memory
        raise ImageRefused(f"{path.name}: OpenCV refused to decode it ({_first_line(e)})") from e
    if image is None:
        raise SourceError(f"Cannot decode image {path} (damaged or not an image)")
    problem = size is None and check and check(image.shape[1], image.shape[0])
    if problem:
        raise ImageRefused(f"{path.name}: {problem}")
    return image


def _first_line(error: BaseException) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[-1] if lines else type(error).__name__


def frame_time_ms(index: int, fps: float, position_ms: float = 0.0) -> float:
    """Frame ``index``'s time: ``position_ms`` (the container's), or ``index / fps`` when
    there is none (<= 0; images have none). Rounded to the nanosecond, so a container time
    read through float seconds (OpenCV's 300.00000000000006) is the exact one (300.0)."""
    return round(position_ms, 6) if position_ms > 0 else index * 1000.0 / fps


class ImageSource(Source):
    """Still images, one frame each, in natural order; ``fps`` spaces their timestamps.

    An image that cannot be decoded, or is refused for its size (over ``max_pixels``, read
    from its header before decoding, or refused by ``frame_check``), is skipped with a note
    (its index and time stay unused, so every frame keeps its place in the folder);
    SourceError if none is kept. With ``frame_stride`` K only images 0, K, 2K, ... (by place
    in the folder) are read; the others are not opened.
    """

    can_stride = True

    def __init__(self, uri: str, paths: list[Path], fps: float = 10.0,
                 max_pixels: int | None = None):
        super().__init__(uri, fps=fps, frame_count=len(paths))
        self.paths = paths
        self.max_pixels = limits.max_pixels() if max_pixels is None else max_pixels

    @property
    def names(self) -> list[str]:
        """Each image's name relative to the input folder (a folder is not searched
        recursively, so its file name), as its frames' ``Frame.file`` gives it."""
        return [p.name for p in self.paths]

    def __iter__(self) -> Iterator[Frame]:
        damaged: list[Path] = []
        refused: list[str] = []
        self.passed = 0
        try:
            for i, (path, name) in enumerate(zip(self.paths, self.names, strict=True)):
                if i % self.frame_stride:
                    self.passed += 1
                    continue
                try:
                    image = read_image(path, self.max_pixels, self.frame_check)
                except ImageRefused as e:
                    refused.append(str(e))
                    continue
                except SourceError:
                    damaged.append(path)
                    continue
                yield Frame(i, frame_time_ms(i, self.fps), image, time.monotonic(), file=name)
        finally:
            self._note_skipped(damaged, refused)
        tried = len(self.paths) - self.passed  # the images read: --frame-stride passes others
        if len(damaged) + len(refused) == tried:
            why = refused[0] if refused and not damaged else _damaged(tried)
            what = ("its only image could not" if len(self.paths) == 1 else
                    f"none of the {tried} images {'read ' if self.passed else ''}could")
            raise SourceError(f"{self.uri}: {what} be decoded ({why})")

    def _note_skipped(self, damaged: list[Path], refused: list[str]) -> None:
        if damaged:
            names = ", ".join(p.name for p in damaged[:5]) + (", ..." if len(damaged) > 5
                                                              else "")
            which = _share(len(damaged), len(self.paths))
            that = ", which" if len(damaged) == len(self.paths) else " that"
            self.notes.append(f"{self.uri}: skipped {which}{that} could not be decoded "
                              f"({_damaged(len(damaged))}): {names}")
        if refused:
            reasons = "; ".join(refused[:3]) + ("; ..." if len(refused) > 3 else "")
            its = "its" if len(self.paths) == 1 else "their"
            self.notes.append(f"{self.uri}: skipped {_share(len(refused), len(self.paths))} for "
                              f"{its} size: {reasons}")


def _damaged(n: int) -> str:
    return "damaged or not an image" if n == 1 else "damaged or not images"


def _share(k: int, n: int) -> str:
    """``k`` of a folder's ``n`` images as a sentence says it: "the only image", "all 3
    images", "2 of 5 images"."""
    if n == 1:
        return "the only image"
    return f"all {n} images" if k == n else f"{k} of {n} images"


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
    """A video file decoded with PyAV (FFmpeg); ``path`` may also be the URL of a recording
    served over HTTP (a video file, a VOD playlist).

    Each frame's ``index`` is its place in the input and ``timestamp_ms`` its presentation
    time, also after a damaged stretch: a packet that fails to decode is skipped, and its
    frame's index stays unused. Timestamps never go backwards: where the file's clock jumps
    back (an MPEG-TS reset, files joined end to end) the frames after it continue from the
    frame before, one frame interval later, and a note says so; so does a frame size that
    changes. Frames over ``max_pixels`` or refused by ``frame_check`` are skipped with a note.
    With ``frame_stride`` K only frames 0, K, 2K, ... are kept: the others are decoded (later
    frames may be predicted from them) but never converted to BGR, checked or noted.
    """

    can_stride = True

    def __init__(self, uri: str, path: str | Path, max_pixels: int | None = None):
        self.max_pixels = limits.max_pixels() if max_pixels is None else max_pixels
        self._container, self._stream, fps = _open_av(path)
        super().__init__(uri, fps=fps, frame_count=self._stream.frames or None)
        problem = limits.pixel_problem(self._stream.codec_context.width,
                                       self._stream.codec_context.height, self.max_pixels)
        if problem:
            self.close()
            raise SourceError(f"{uri}: its frames are too large to decode: {problem}")

    def __iter__(self) -> Iterator[Frame]:
        reading = _Reading(self.fps, self._stream)
        self.passed = 0
        try:
            for packet in self._container.demux(self._stream):
                reading.add_packet(packet)
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    reading.failed += 1
                    continue
                for frame in frames:
                    kept = self._frame(reading, frame)
                    if kept is not None:
                        yield kept
        except av.FFmpegError:
            reading.cut = True  # the container itself is damaged from here on
        self._check_complete(reading)

    def _frame(self, reading: _Reading, frame: av.VideoFrame) -> Frame | None:
        index, timestamp = reading.place(frame)
        if index % self.frame_stride:
            self.passed += 1
            return None
        size = (frame.width, frame.height)
        problem = limits.pixel_problem(*size, self.max_pixels) or (
            self.frame_check and self.frame_check(*size))
        if problem:
            reading.refused.append((index, problem))
            return None
        reading.note_size(index, size)
        reading.decoded += 1
        return Frame(index, timestamp, to_bgr(frame), time.monotonic())

    def _check_complete(self, r: _Reading) -> None:
        self.notes.extend(r.irregularities(self.uri))
        if r.refused:
            index, problem = r.refused[0]
            self.notes.append(f"{self.uri}: skipped {counted(len(r.refused), 'frame')} for "
                              f"their size, from frame {index}: {problem}")
        if r.decoded == 0:
            why = r.refused[0][1] if r.refused else "damaged or empty video"
            raise SourceError(f"{self.uri}: no frame could be decoded ({why})")
        count, read = self.frame_count, r.decoded + len(r.refused) + self.passed
        if count and read >= count:
            return  # every frame came, whatever hiccups the decoder had on the way
        if (r.failed or r.cut) and count:
            self.notes.append(f"{self.uri}: decoded {read} of {count} frames; {count - read} "
                              f"could not be decoded and {'was' if count - read == 1 else 'were'}"
                              " skipped (the file looks damaged or truncated)")
        elif r.failed or r.cut:
            self.notes.append(f"{self.uri}: decoded {counted(read, 'frame')}; skipped "
                              f"{counted(r.failed, 'packet')} that could not be decoded (the "
                              "file looks damaged)")
        elif count and read < count:
            self.notes.append(f"{self.uri}: decoding stopped after {read} of {count} "
                              "frames; the file looks truncated or damaged")

    def close(self) -> None:
        self._container.close()


def to_bgr(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as (H, W, 3) uint8 BGR: a colour conversion, the part of a frame's
    reading that a frame stride saves."""
    return frame.to_ndarray(format="bgr24")


def _open_av(path: str | Path) -> tuple[av.container.InputContainer, av.VideoStream, float]:
    """The opened file, its first video stream (decoded on threads) and its frame rate (30
    if it has none that makes sense)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        reason = getattr(e, "strerror", None) or _first_line(e)  # FFmpeg's text, no errno
        raise SourceError(f"Cannot open {path} as a video (not a video file, or damaged: "
                          f"{reason})") from e
    if not container.streams.video:
        container.close()
        raise SourceError(f"Cannot open {path} as a video (it holds no video stream)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    return container, stream, (fps if 0 < fps < 1000 else 30.0)


class _Reading:
    """The state of one pass over a video: where each frame belongs in the input, and what
    went wrong on the way.

    A frame's index is the number of packets with an earlier presentation time, counted
    over every packet demuxed so far (the decoder returns a frame only after the packets
    presented before it): packets that failed to decode still count. A packet at or before
    the first time of the clock's run starts a new run (a reset clock, joined files), whose
    frames count on after the packets of the runs before.
    """

    def __init__(self, fps: float, stream: av.VideoStream):
        self.period_ms = 1000.0 / fps
        self.base = stream.time_base
        self.start = stream.start_time or 0
        self.failed = self.decoded = 0
        self.cut = False
        self.refused: list[tuple[int, str]] = []
        # each run of the clock between jumps back: (packets before it, sorted packet times)
        self._runs: list[tuple[int, list[int]]] = [(0, [])]
        self._run = 0  # the run the frames come from now
        self._last_pts: int | None = None
        self._index = -1
        self._last_ms: float | None = None
        self._offset_ms = 0.0
        self._jumps: list[int] = []  # frame indexes where the clock jumped back
        self._first: tuple[int, int] | None = None
        self._size: tuple[int, int] | None = None
        self._sizes: list[tuple[int, tuple[int, int]]] = []

    def add_packet(self, packet: av.Packet) -> None:
        pts = packet.pts if packet.pts is not None else packet.dts
        if pts is None or not packet.size:
            return
        before, times = self._runs[-1]
        if len(times) >= 4 and pts <= times[0]:  # reordering never goes back to the start
            self._runs.append((before + len(times), []))
        bisect.insort(self._runs[-1][1], pts)

    def place(self, frame: av.VideoFrame) -> tuple[int, float]:
        """(index in the input, timestamp in ms, never going back) of a decoded frame."""
        pts = frame.pts
        if pts is None:
            index = self._index + 1
            ms = index * self.period_ms
        else:
            jumped = self._last_pts is not None and pts <= self._last_pts  # frames come in order
            if jumped and self._run < len(self._runs) - 1:
                self._run += 1
            before, times = self._runs[self._run]
            index = max(self._index + 1, before + bisect.bisect_left(times, pts))
            ms = float((pts - self.start) * self.base * 1000)  # exact, then rounded once
            self._last_pts = pts
        ms += self._offset_ms
        if self._last_ms is not None and ms <= self._last_ms:
            self._jumps.append(index)
            self._offset_ms += self._last_ms + self.period_ms - ms
            ms = self._last_ms + self.period_ms
        self._index, self._last_ms = index, ms
        return index, ms

    def note_size(self, index: int, size: tuple[int, int]) -> None:
        if self._size is not None and size != self._size:
            self._sizes.append((index, size))
        self._first = self._first or size
        self._size = size

    def irregularities(self, uri: str) -> list[str]:
        notes = []
        if self._jumps:
            notes.append(f"{uri}: the timestamps jumped back "
                         f"{counted(len(self._jumps), 'time')}, first at frame {self._jumps[0]} "
                         "(joined files or a reset clock); the frames after a jump continue "
                         "one frame interval after the frame before it")
        if self._sizes:
            index, (w, h) = self._sizes[0]
            first = f"{self._first[0]}x{self._first[1]}"
            notes.append(f"{uri}: the frame size changed {counted(len(self._sizes), 'time')}, "
                         f"first at frame {index} from {first} to {w}x{h}; each frame is "
                         "detected at its own size")
        return notes
