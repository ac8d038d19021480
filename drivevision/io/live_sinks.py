"""Outputs of a live run: video on the capture clock, and JSONL that records stream gaps."""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable, Sequence
from fractions import Fraction
from pathlib import Path

import numpy as np

from drivevision.config import DEFAULT_VIDEO_PRESET
from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.io.sinks import JsonlSink, Sink
from drivevision.io.video_sink import VideoSink

_MS = Fraction(1, 1000)
# AVI from a live source: its one frame rate is measured on the first frames kept, held in
# memory until then (a stream's claimed rate is often wrong: OpenCV says 25 for any MJPEG).
MEASURE_FRAMES = 16
MEASURE_S = 5.0  # ... or on those of the first seconds, for a slow detector


class LiveVideoSink(VideoSink):
    """Annotated video of a live source; each frame is shown at its capture time, or with
    ``stream_time`` at its ``timestamp_ms`` (a stream whose frames arrive in bursts but carry
    their own times: ``Source.stream_clock``).

    A live run keeps only the frames the detector had time for, so the video has a variable
    frame rate (timestamps in ms from the first frame); a stream outage is a frozen stretch.
    ``fps`` is only the nominal rate given to the encoder, except in AVI, which has no
    variable rate: there the frames kept follow one another at the rate measured on the first
    ``MEASURE_FRAMES`` of them (the median time between them; ``fps`` if there is none), so
    a run whose detector speed changes, or that lost its stream, plays at another speed than
    it happened (frame count and order stay true; the JSONL keeps the capture times).

    Written so that a killed run loses as little as can be (``RecordedVideoSink`` too): x264
    runs with zero latency (no lookahead, no B-frames), so each frame's packet comes out as
    the frame goes in (with its usual lookahead x264 held 11 frames back, many seconds at a
    CPU detector's rate), and an MP4 or MOV has a fragment per frame (Matroska a cluster),
    so the muxer writes each frame to the part file as the next one comes: a killed run's
    video lacks only the last frame it wrote (a fragment or cluster per keyframe lost up to a
    second of frames). The cost: files about 40% larger (the sample, 10 fps, keyframes every
    10 frames), and about 200 bytes a frame in an MP4's part file.
    """

    X264_TUNE = {"tune": "zerolatency"}
    WRITE_EACH_FRAME = True

    def __init__(self, path: str | os.PathLike, fps: float = 30.0,
                 preset: str = DEFAULT_VIDEO_PRESET, *, stream_time: bool = False):
        super().__init__(path, fps, preset=preset)
        self.stream_time = stream_time
        self._t0: float | None = None
        self._waiting: list[tuple[Frame, Detections, np.ndarray]] | None = (
            [] if self._by_index else None)  # AVI: frames held until the rate is measured

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        if self._waiting is None:
            super()._write(frame, detections, annotated)
            return
        image = frame.image if annotated is None else annotated
        self._waiting.append((frame, detections, image.copy()))  # a caller may reuse its buffer
        if (len(self._waiting) >= MEASURE_FRAMES
                or self._time(frame) - self._time(self._waiting[0][0]) >= MEASURE_S):
            self._write_waiting()

    def _write_waiting(self) -> None:
        """Fix the AVI's frame rate from the frames held, then write them."""
        waiting, self._waiting = self._waiting, None
        times = [self._time(frame) for frame, _, _ in waiting]
        gaps = [b - a for a, b in zip(times, times[1:]) if b > a]
        if gaps:
            measured = max(round(1.0 / statistics.median(gaps), 2), 0.01)
            if abs(measured - float(self.fps)) > 0.05 * float(self.fps):
                self.notes.append(
                    f"{self.path}: AVI has one frame rate: {measured:g} fps, measured on the "
                    f"first {len(waiting)} frames kept (not the source's {float(self.fps):g}); "
                    "MP4 or MKV keep each frame's time")
            self.fps = Fraction(measured).limit_denominator(1001)
        for frame, detections, image in waiting:
            super()._write(frame, detections, image)

    def _finish(self) -> None:
        if self._waiting:
            self._write_waiting()  # fewer frames than a measurement takes: measure on these
        super()._finish()

    def _open(self, width: int, height: int) -> None:
        super()._open(width, height)
        if not self._by_index:
            self._time_base = self._stream.codec_context.time_base = _MS

    def _time(self, frame: Frame) -> float:
        """Seconds on the clock the video follows (``stream_time``: the stream's own)."""
        return frame.timestamp_ms / 1000.0 if self.stream_time else frame.captured_at

    def _ticks(self, frame: Frame) -> float:
        """Milliseconds on the capture clock, so the video plays at real speed."""
        if self._t0 is None:
            self._t0 = self._time(frame)
        return (self._time(frame) - self._t0) * 1000.0


class RecordedVideoSink(VideoSink):
    """The annotated video of a file ``live`` reads whole (not paced: every frame, at the
    file's own times, as ``VideoSink``), written as a live video is (see ``LiveVideoSink``),
    so a killed run loses as little (as ``VideoSink`` it lost a quarter of the frames of a
    run killed after 40, held in x264's lookahead and the open fragment)."""

    X264_TUNE = LiveVideoSink.X264_TUNE
    WRITE_EACH_FRAME = True


class GapJsonlSink(JsonlSink):
    """JSONL of a live source: a line per processed frame, plus a line per outage.

    ``gaps`` is the source's live list of ``drivevision.io.frames.Gap`` (``Source.gaps``);
    each is written as ``{"gap": {...}}`` before the first frame after it (or at the end, if
    the stream never came back).
    """

    def __init__(self, path: str | os.PathLike, names: Sequence[str], gaps: list | None = None):
        super().__init__(path, names)
        self.gaps = gaps if gaps is not None else []
        self._written = 0
        self.last_segment = True  # False: gaps not written yet belong to the next segment

    def continue_from(self, previous: GapJsonlSink) -> None:
        """Start after the gaps ``previous`` (the segment before) wrote."""
        self._written = previous._written

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        self._write_gaps(frame.index)
        super()._write(frame, detections, annotated)

    def _write_gaps(self, before_index: int | None) -> None:
        while self._written < len(self.gaps):
            gap = self.gaps[self._written]
            if before_index is not None and (gap.next_index is None
                                             or gap.next_index > before_index):
                return
            record = {"after_frame": gap.last_index, "next_frame": gap.next_index,
                      "start_ms": round(gap.start_ms, 1), "end_ms": round(gap.end_ms, 1),
                      "seconds": round(gap.seconds, 3), "reason": gap.reason,
                      "reconnect_attempts": gap.attempts}
            self._line({"gap": record})
            self._written += 1

    def _finish(self) -> None:
        if not self._file.closed and self.last_segment:
            self._write_gaps(None)
        super()._finish()


class Segmented(Sink):
    """An output recorded in pieces of ``seconds`` of capture time, like a dashcam:
    ``front.mp4`` becomes ``front_0001.mp4``, ``front_0002.mp4``, ... each closed and
    complete when the next begins. Piece k holds the frames captured from
    ``t0 + (k-1)*seconds`` up to ``t0 + k*seconds`` (``t0``: the first frame's capture
    time); a piece with no frame (a long outage) is skipped, so numbers tell the time.
    ``make(path)`` builds each piece's sink; a JSONL piece holds the gap records before
    its own frames. Never closed, it leaves its open piece to that sink, which finishes it.
    """

    def __init__(self, path: str | os.PathLike, make: Callable[[Path], Sink], seconds: float):
        if not seconds > 0:
            raise ValueError(f"Expected a segment length > 0 s, but got {seconds}")
        super().__init__()  # no file of its own: each piece's sink has one
        self.path, self.make, self.seconds = Path(path), make, seconds
        self.needs_annotated = getattr(make, "func", make).needs_annotated
        self._sink: Sink | None = None
        self._number = 0
        self._t0: float | None = None

    def piece(self, number: int) -> Path:
        return self.path.with_name(f"{self.path.stem}_{number:04d}{self.path.suffix}")

    def write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        if self._t0 is None:
            self._t0 = frame.captured_at
        number = int((frame.captured_at - self._t0) // self.seconds) + 1
        if number != self._number:
            self._next(number)
        self._sink.write(frame, detections, annotated)
        self.frames += 1

    def _next(self, number: int) -> None:
        previous = self._sink
        if previous is not None:
            previous.last_segment = False
            self._close_piece(complete=True)
        self._sink = self.make(self.piece(number))
        if isinstance(self._sink, GapJsonlSink) and previous is not None:
            self._sink.continue_from(previous)
        self._number = number

    def _close_piece(self, complete: bool) -> None:
        sink, self._sink = self._sink, None
        try:
            sink.close(complete)
        finally:
            self.notes.extend(sink.notes)
            if sink.final_path is not None:
                self.segments.append(sink.final_path)

    def _close(self, complete: bool) -> None:
        if self._sink is not None:
            self._sink.last_segment = True
            self._close_piece(complete)

    def __enter__(self) -> Segmented:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None or issubclass(exc_type, KeyboardInterrupt))
