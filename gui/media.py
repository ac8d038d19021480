"""Seekable file media for the viewer, and paced playback of it through the pipeline
(the library's ``RealtimeSource``, from any frame).

``drivevision.io.sources`` reads a file once from start to end; the viewer also needs to show
any single frame (seek, step back) and to start playing from it. Live sources (cameras,
streams) are passed through unchanged and are never seekable.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import cv2

from drivevision.errors import SourceError
from drivevision.io.files import VideoFileSource, open_video_file
from drivevision.io.frames import Frame, Source
from drivevision.io.images import ImageSource, frame_time_ms, read_image
from drivevision.io.sources import open_source
from drivevision.io.streams import RealtimeSource


class SeekableSource(Source):
    """A file source with random access. ``read(i)`` returns frame i (image (H, W, 3) BGR)."""

    end: int | None = None  # no frame from this index on can be read (found by reading)

    def readable_count(self) -> int | None:
        """Frames up to the last one that can be read: ``frame_count``, or fewer once reading
        found the last ones unreadable (damaged images, a video that stops decoding early)."""
        if self.end is None:
            return self.frame_count
        return self.end if self.frame_count is None else min(self.end, self.frame_count)

    def found_end(self, index: int) -> None:
        """Reading on from ``index`` found no frame: the readable frames end before it."""
        self.end = index if self.end is None else min(self.end, index)

    def read(self, index: int) -> Frame:
        raise NotImplementedError

    def read_near(self, index: int, step: int = 1) -> Frame:
        """Frame ``index`` or, where it cannot be read and the media skips such frames, the
        nearest one that can, going by ``step`` (1 or -1); IndexError when none can."""
        return self.read(index)

    def read_closest(self, index: int, step: int) -> Frame:
        """Frame ``index``, or the nearest that can be read: on by ``step`` (1, or -1 for a
        step back), else the other way (the last images cannot be read); IndexError, the one
        of the first way, when none can."""
        try:
            return self.read_near(index, step)
        except IndexError as moved:
            if step > 0:
                self.found_end(index)
            try:
                return self.read_near(index, -step)
            except IndexError:
                raise moved from None

    def __iter__(self) -> Iterator[Frame]:
        return self.frames_from(0)

    def frames_from(self, start: int) -> Iterator[Frame]:
        index = start
        while self.frame_count is None or index < self.frame_count:
            try:
                frame = self.read_near(index)
            except IndexError:
                self.found_end(index)
                return
            yield frame
            index = frame.index + 1


class SeekableVideo(SeekableSource):
    """A video file through OpenCV's FFmpeg backend; seeks with ``CAP_PROP_POS_FRAMES``.

    A file that stops decoding before the frame count its container holds (cut short,
    damaged) gets a line in ``notes`` once reading finds it, as ``drivevision detect`` warns.
    """

    def __init__(self, uri: str):
        self._cap, fps, count = open_video_file(uri)
        super().__init__(uri, fps=fps, frame_count=count)
        self._next = 0
        self._lock = threading.Lock()  # a frame may be read by the pipeline or the worker
        self._told_cut = False

    def found_end(self, index: int) -> None:
        super().found_end(index)
        if self.frame_count and self.end < self.frame_count and not self._told_cut:
            self._told_cut = True
            self.notes.append(f"{self.uri}: decoding stopped after {self.end} of "
                              f"{self.frame_count} frames; the file looks truncated or damaged")

    def read_near(self, index: int, step: int = 1) -> Frame:
        """Frame ``index``; going back (``step`` -1) from past where the file was found to
        stop decoding, its last frame that decodes."""
        if step < 0 and self.end:
            index = min(index, self.end - 1)
        return self.read(index)

    def read(self, index: int) -> Frame:
        """Frame ``index``; IndexError past the end (or where the file stops decoding)."""
        if index < 0:
            raise IndexError(f"Expected a frame index >= 0, but got {index}")
        with self._lock:
            if index != self._next:
                self._cap.set(cv2.CAP_PROP_POS_FRAMES, index)
            ok, image = self._cap.read()
            self._next = index + 1 if ok else -1
            timestamp = self._cap.get(cv2.CAP_PROP_POS_MSEC) if ok else 0.0
        if not ok:
            if index == 0:
                raise SourceError(f"{self.uri}: no frame could be decoded (damaged or empty "
                                  "video)")
            raise IndexError(f"{self.uri} has no frame {index}")
        return Frame(index, frame_time_ms(index, self.fps, timestamp), image, time.monotonic())

    def close(self) -> None:
        with self._lock:
            self._cap.release()


class SeekableImages(SeekableSource):
    """Image files shown as frames at ``fps``, in the order given.

    An image that cannot be decoded, or is refused for its size, is skipped, as the
    library's ``ImageSource`` does: its index stays unused, and ``notes`` gets a line for it.
    """

    def __init__(self, uri: str, paths: list[Path], fps: float):
        super().__init__(uri, fps=fps, frame_count=len(paths))
        self.paths = paths
        self._skipped: set[int] = set()

    def read_near(self, index: int, step: int = 1) -> Frame:
        start = index
        while 0 <= index < len(self.paths):
            try:
                return self.read(index)
            except SourceError as e:  # damaged, not an image, or too large
                if index not in self._skipped:
                    self._skipped.add(index)
                    self.notes.append(f"skipped: {e}")
            index += step
        raise IndexError(f"{self.uri}: no image from number {start + 1} "
                         f"{'on' if step > 0 else 'back'} can be read")

    def read(self, index: int) -> Frame:
        if not 0 <= index < len(self.paths):
            raise IndexError(f"{self.uri} has no frame {index}")
        path = self.paths[index]
        return Frame(index, frame_time_ms(index, self.fps), read_image(path), time.monotonic(),
                     file=path.name)


def open_media(uri: str, *, fps: float = 10.0) -> Source:
    """The viewer's source for ``uri``: seekable for files and folders, else the library's."""
    source = open_source(uri, fps=fps)
    if isinstance(source, VideoFileSource):
        source.close()
        return SeekableVideo(str(uri))
    if isinstance(source, ImageSource):
        return SeekableImages(str(uri), list(source.paths), source.fps or fps)
    return source


def checked(media: Source) -> Source:
    """``media``, its first frame read where it is a file or folder: one that opens but has
    no frame that can be read (a video whose frames are damaged) fails here, closed, before
    it takes the place of what is open."""
    if isinstance(media, SeekableSource):
        try:
            media.read_near(0)
        except Exception:
            media.close()
            raise
    return media


class Paced(RealtimeSource):
    """Frames of ``media`` from ``start``, released no faster than ``speed`` x real time.

    The library's pacing; the pipeline's stop (``interrupt``) ends a wait at once, so pausing
    never waits out a frame interval. ``stop`` is the worker's own flag for a run it ended
    (it aborts the pipeline too); it also ends the pacing between frames. Closing leaves
    ``media`` open for the next seek or play.
    """

    def __init__(self, media: SeekableSource, start: int, speed: float, stop: threading.Event):
        super().__init__(media, speed)
        self.media, self.start, self.stop = media, start, stop

    def _frames(self) -> Iterator[Frame]:
        for frame in self.media.frames_from(self.start):
            if self.stop.is_set():
                return
            yield frame

    def close(self) -> None:
        self.interrupt()
