"""Video files (PyAV), and OpenCV's capture of one for the viewer.

Every source yields ``Frame`` objects whose image is (H, W, 3) uint8 BGR. Images and folders
of images are in ``drivevision.io.images``. Open them through
``drivevision.io.sources.open_source``.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Generator, Iterator
from pathlib import Path

import av
import cv2
import numpy as np

from drivevision.errors import SourceError
from drivevision.io import limits
from drivevision.io.containers import RAW_FORMATS, open_video
from drivevision.io.frames import Frame, Source, range_text, stride_miss
from drivevision.io.reading import Reading
from drivevision.labels import clock, counted

# the suffixes of video files: what a folder search (``batch``) takes as video
VIDEO_SUFFIXES = frozenset({".mp4", ".mkv", ".mov", ".avi", ".m4v", ".webm", ".ts", ".mts",
                            ".m2ts", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".h264", ".h265"})


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
    (``iter``) reads from the start again, also after one that stopped early. A raw stream
    (no container, no frame times: ``containers``) is timed at ``raw_fps`` where given.
    """

    can_stride = True

    def __init__(self, uri: str, path: str | Path, max_pixels: int | None = None,
                 raw_fps: float | None = None):
        self.max_pixels = limits.max_pixels() if max_pixels is None else max_pixels
        self._path, self._raw_fps = path, raw_fps
        self._container, self._stream, fps, about = open_video(path, raw_fps)
        self._raw = self._container.format.name in RAW_FORMATS  # no frame times to seek by
        super().__init__(uri, fps=fps, frame_count=self._stream.frames or None)
        self.about.extend(about)
        problem = limits.pixel_problem(self._stream.codec_context.width,
                                       self._stream.codec_context.height, self.max_pixels)
        if problem:
            self.close()
            raise SourceError(f"{self.name}: its frames are too large to decode: {problem}")
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
        from the first frame (``rewind``, after an earlier pass), or from where it stands.
        A raw stream cannot seek (FFmpeg tries by reading it to its end): it is read from its
        first frame, past those before the start, and opened again to rewind."""
        if self._raw:
            if rewind:
                self._container.close()
                self._container, self._stream, _, _ = open_video(self._path, self._raw_fps)
            return Reading(self.fps, self._stream, seeked=False)
        if seek or rewind:
            # a rewind aims a second before the first frame: MPEG-TS, its clock inexact,
            # can land past the first keyframe when asked for the first frame's time
            target = (self._stream.start_time or 0) + int(
                (self.start_s if seek else -1) / self._stream.time_base)
            try:
                self._container.seek(target, backward=True, stream=self._stream)
            except av.FFmpegError:  # not seekable (a stream served without ranges)
                return Reading(self.fps, self._stream, seeked=False)
        return Reading(self.fps, self._stream, seeked=seek)

    def _read(self, reading: Reading) -> Generator[Frame, None, bool]:
        """The frames in the time range, from where ``reading`` starts; returns True, having
        yielded none, when the first frame after a seek lies after the range's start, or none
        came at all."""
        try:
            for packet in self._container.demux(self._stream):
                reading.add_packet(packet)
                try:
                    frames = packet.decode()
                except av.FFmpegError:
                    reading.lose_packet()
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
        # a seek that found no keyframe before the start (MPEG-TS with one keyframe): read all
        return reading.seeked and self.span is None and not self.lead_in and not reading.cut

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
        self.notes.extend(r.irregularities(self.name))
        if r.refused:
            index, problem = r.refused[0]
            self.notes.append(f"{self.name}: skipped {counted(len(r.refused), 'frame')} for "
                              f"their size, from frame {index}: {problem}")
        span, stride = self.span, self.frame_stride
        if r.decoded == 0 and self.ranged and span and not (r.failed or r.cut) and \
                -(-span[0] // stride) * stride > span[1]:  # no frame in the range to keep
            raise SourceError(stride_miss(self.name, self.start_s or 0, self.end_s, span, stride))
        if r.decoded == 0 and span is None and self.lead_in and not (r.failed or r.cut):
            # every frame before the start: a raw stream, whose length is known only now
            raise SourceError(f"The start, {clock(self.start_s)}, is at or past the end of "
                              f"{self.name}, which lasts {clock(self.lead_in / self.fps)}")
        if r.decoded == 0:
            why = r.refused[0][1] if r.refused else "damaged or empty video"
            where = (f" in {range_text(self.start_s or 0, self.end_s)}" if self.ranged else "")
            raise SourceError(f"{self.name}: no frame{where} could be decoded ({why})")
        count, read = self.frame_count, r.head + r.decoded + len(r.refused) + self.passed
        if self.ranged and (self.end_s is not None or r.failed or r.cut):
            count = None  # how many frames the range holds is not stored
        elif self.ranged:  # from the start to the end of the file: the frames up to the last
            read = r.last_index + 1
        if count and read >= count:
            return  # every frame came, whatever hiccups the decoder had on the way
        if (r.failed or r.cut) and count:
            self.notes.append(f"{self.name}: decoded {read} of {count} frames; {count - read} "
                              f"could not be decoded and {'was' if count - read == 1 else 'were'}"
                              " skipped (the file looks damaged or truncated)")
        elif r.failed or r.cut:
            self.notes.append(f"{self.name}: decoded {counted(read, 'frame')}; skipped "
                              f"{counted(r.failed, 'packet')} that could not be decoded (the "
                              "file looks damaged)")
        elif count and read < count:
            self.notes.append(f"{self.name}: decoding stopped after {read} of {count} "
                              "frames; the file looks truncated or damaged")
        elif count is None and self.end_s is None:
            self._check_length(r)

    def _check_length(self, r: Reading) -> None:
        """A file that stores no frame count (MKV, WebM) but a length: a note when its
        frames stop well before that length, as a copy or recording cut short does."""
        stated, last = self.duration_s, r.last_ms
        if not stated or last is None:
            return
        reached = (last + r.period_ms) / 1000
        if reached < stated - max(3 * r.period_ms / 1000, 0.02 * stated):
            self.notes.append(f"{self.name}: decoding stopped at {reached:.1f} s of the "
                              f"{stated:.1f} s the file states; the file looks truncated "
                              "or damaged")

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
