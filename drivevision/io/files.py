"""Files and folders: video files (PyAV), images and folders of images.

Every source yields ``Frame`` objects whose image is (H, W, 3) uint8 BGR, grayscale and
BGRA already converted. Open them through ``drivevision.io.sources.open_source``.
"""

from __future__ import annotations

import contextlib
import re
import time
import warnings
from collections.abc import Generator, Iterator
from pathlib import Path

import av
import cv2
import numpy as np
from PIL import Image

from drivevision.errors import SourceError, SourcePermissionError
from drivevision.io import limits
from drivevision.io.frames import Frame, FrameCheck, Source, range_text, stride_miss
from drivevision.io.reading import Reading
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
    in the folder) are read; the others are not opened. A time range (``keep_range``) keeps
    the images whose time, ``index / fps``, lies in it.
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
        self.notes.clear()  # what this pass meets: an earlier one (a peek) told its own
        first, stop = self.range_indices()
        self.span = (first, stop - 1) if self.ranged else None
        try:
            for i, (path, name) in enumerate(zip(self.paths, self.names, strict=True)):
                if not first <= i < stop:
                    continue
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
        tried = stop - first - self.passed  # the images read: a stride or range passes others
        if len(damaged) + len(refused) == tried:
            why = refused[0] if refused and not damaged else _damaged(tried)
            read = "read " if self.passed or self.ranged else ""
            what = ("its only image could not" if len(self.paths) == 1 else
                    f"none of the {tried} images {read}could")
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
    A time range (``keep_range``) seeks to the keyframe at or before its start (the frames
    from there to the start are decoded, not converted: ``lead_in``; the first one's index is
    its time at the frame rate, see ``Reading``) and stops reading at its end. Every pass
    (``iter``) reads from the start again, also after one that stopped early.
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
        self._read_before = False  # a pass began: the next one rewinds to the first frame

    def __iter__(self) -> Iterator[Frame]:
        self.passed = self.lead_in = 0
        self.span = None
        self.notes.clear()  # what this pass meets: an earlier one (a peek) told its own
        if self._read_before:
            self._drain()  # the frames left in flight by the last pass (a peek, a break)
        reading = self._reading(seek=bool(self.start_s), rewind=self._read_before)
        self._read_before = True
        if (yield from self._read(reading)):  # the seek landed after the start: read it all
            reading = self._reading(seek=False, rewind=True)
            yield from self._read(reading)
        self._check_complete(reading)

    @property
    def duration_s(self) -> float | None:
        """The video stream's stored length in seconds (else the container's, else its frame
        count over its rate), None when the file stores none."""
        stream = self._stream
        if stream.duration:
            return float(stream.duration * stream.time_base)
        if self._container.duration:
            return self._container.duration / av.time_base
        return super().duration_s

    def _reading(self, *, seek: bool, rewind: bool = False) -> Reading:
        """A new pass over the file: from the keyframe at or before ``start_s`` (``seek``),
        from the first frame (``rewind``, after an earlier pass), or from where it stands."""
        if seek or rewind:
            target = (self._stream.start_time or 0) + (
                int(self.start_s / self._stream.time_base) if seek else 0)
            try:
                self._container.seek(target, backward=True, stream=self._stream)
            except av.FFmpegError:  # not seekable (a stream served without ranges)
                return Reading(self.fps, self._stream, seeked=False)
        return Reading(self.fps, self._stream, seeked=seek)

    def _read(self, reading: Reading) -> Generator[Frame, None, bool]:
        """The frames in the time range, from where ``reading`` starts; returns True, having
        yielded none, when the first frame after a seek lies after the range's start."""
        try:
            for packet in self._container.demux(self._stream):
                reading.add_packet(packet)
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    reading.failed += 1
                    continue
                for frame in frames:
                    index, timestamp = reading.place(frame)
                    where = self.in_range(timestamp)
                    if where < 0:
                        self.lead_in += 1
                        continue
                    if where > 0:  # past the end: the rest is not read
                        self._drain()
                        return False
                    if reading.seeked and self.span is None and not self.lead_in and \
                            self.in_range(timestamp - reading.period_ms) == 0:
                        self._drain()
                        return True
                    self.span = (index if self.span is None else self.span[0], index)
                    kept = self._frame(reading, frame, index, timestamp)
                    if kept is not None:
                        yield kept
        except av.FFmpegError:
            reading.cut = True  # the container itself is damaged from here on
        return False

    def _drain(self) -> None:
        """Let the decoder's threads finish the frames in flight before a seek or close: an
        error FFmpeg logs on a busy thread waits for the GIL, which the seek or close holds
        while it waits for that thread."""
        with contextlib.suppress(av.FFmpegError):
            self._stream.codec_context.decode(None)

    def _frame(self, reading: Reading, frame: av.VideoFrame, index: int,
               timestamp: float) -> Frame | None:
        if index % self.frame_stride:
            self.passed += 1
            return None
        size = (frame.height, frame.width) if upright_turns(frame) % 2 else (
            frame.width, frame.height)
        problem = limits.pixel_problem(*size, self.max_pixels) or (
            self.frame_check and self.frame_check(*size))
        if problem:
            reading.refused.append((index, problem))
            return None
        reading.note_size(index, size)
        reading.decoded += 1
        return Frame(index, timestamp, to_bgr(frame), time.monotonic())

    def _check_complete(self, r: Reading) -> None:
        self.notes.extend(r.irregularities(self.uri))
        if r.refused:
            index, problem = r.refused[0]
            self.notes.append(f"{self.uri}: skipped {counted(len(r.refused), 'frame')} for "
                              f"their size, from frame {index}: {problem}")
        span, stride = self.span, self.frame_stride
        if r.decoded == 0 and self.ranged and span and not (r.failed or r.cut) and \
                -(-span[0] // stride) * stride > span[1]:  # no frame in the range to keep
            raise SourceError(stride_miss(self.uri, self.start_s or 0, self.end_s, span, stride))
        if r.decoded == 0:
            why = r.refused[0][1] if r.refused else "damaged or empty video"
            where = (f" in {range_text(self.start_s or 0, self.end_s)}" if self.ranged else "")
            raise SourceError(f"{self.uri}: no frame{where} could be decoded ({why})")
        count, read = self.frame_count, r.head + r.decoded + len(r.refused) + self.passed
        if self.ranged and (self.end_s is not None or r.failed or r.cut):
            count = None  # how many frames the range holds is not stored
        elif self.ranged:  # from the start to the end of the file: the frames up to the last
            read = r.last_index + 1
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
    """A decoded frame as (H, W, 3) uint8 BGR, upright: a colour conversion (the part of a
    frame's reading that a frame stride saves), then the rotation its display matrix asks
    for (a phone's portrait video), as players and OpenCV show it."""
    image = frame.to_ndarray(format="bgr24")
    turns = upright_turns(frame)
    return np.ascontiguousarray(np.rot90(image, turns)) if turns else image


def upright_turns(frame: av.VideoFrame) -> int:
    """Quarter turns counterclockwise (0-3) that show ``frame`` upright: its display
    matrix's rotation (counterclockwise degrees) to the nearest quarter turn."""
    return round(frame.rotation / 90) % 4


def _open_av(path: str | Path) -> tuple[av.container.InputContainer, av.VideoStream, float]:
    """The opened file, its first video stream (decoded on threads) and its frame rate (30
    if it has none that makes sense)."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        reason = getattr(e, "strerror", None) or _first_line(e)  # FFmpeg's text, no errno
        error = SourcePermissionError if isinstance(e, PermissionError) else SourceError
        raise error(f"Cannot open {path} as a video (not a video file, or damaged: "
                    f"{reason})") from e
    if not container.streams.video:
        container.close()
        raise SourceError(f"Cannot open {path} as a video (it holds no video stream)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate
    fps = float(rate) if rate else 0.0
    return container, stream, (fps if 0 < fps < 1000 else 30.0)
