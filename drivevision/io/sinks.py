"""Outputs of a run: annotated video, JSONL, CSV. Each is a context manager.

Every sink writes to a temporary file beside its target and moves it into place only when
closed, so an existing file is never clobbered by a failed run. A run that fails leaves
what it wrote as ``<name>.partial<suffix>``; one stopped with Ctrl-C is complete and kept.
"""

from __future__ import annotations

import csv
import json
import math
import os
from collections.abc import Sequence
from contextlib import suppress
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.frames import Frame
from drivevision.labels import name_of
from drivevision.render import letterbox


class Sink:
    """Writes results to ``path``; ``needs_annotated`` asks the pipeline to render frames."""

    needs_annotated = False

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        if self.path.is_dir():
            raise SinkError(f"Output {path} is a folder; give a file name")
        if not self.path.parent.is_dir():
            raise SinkError(f"Output folder {self.path.parent} does not exist")
        self.tmp = self.path.with_name(f".{self.path.stem}.part{self.path.suffix}")
        self.notes: list[str] = []
        self.final_path: Path | None = None
        self.frames = 0
        self._closed = False

    def write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        """Write one frame's result (``annotated`` is the drawn frame, or None)."""
        self._write(frame, detections, annotated)
        self.frames += 1

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the temporary file."""

    def close(self, complete: bool = True) -> None:
        """Move the output into place, or keep it as ``.partial`` when ``complete`` is False.

        An incomplete output with no frame in it is deleted. A failure to finish the file
        (e.g. a full disk) still keeps what was written as ``.partial``, with a note; that
        error is raised only when ``complete`` is True: an incomplete close follows an error
        that is already on its way to the caller, and a second one would only bury it.
        """
        if self._closed:
            return
        self._closed = True
        try:
            self._finish()
        except (OSError, av.FFmpegError) as e:
            reason = getattr(e, "strerror", None) or e
            self.notes.append(f"{self.path}: could not finish writing ({reason}); what was "
                              "written is kept as .partial")
            self._move(complete=False)
            if complete:
                raise
            return
        self._move(complete)

    def _move(self, complete: bool) -> None:
        if not self.tmp.exists() or (not complete and self.frames == 0):
            self.tmp.unlink(missing_ok=True)
            return
        target = self.path if complete else self.path.with_name(
            f"{self.path.stem}.partial{self.path.suffix}")
        os.replace(self.tmp, target)
        self.final_path = target

    def __enter__(self) -> Sink:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(complete=exc_type is None or issubclass(exc_type, KeyboardInterrupt))


class VideoSink(Sink):
    """Annotated video at the input's size, each frame shown at its ``timestamp_ms``.

    A constant-rate input gives a constant-rate video at ``fps``; a variable-rate one keeps
    its timing (timestamps from the first frame's, in a time base of ``fps`` steps of a
    millisecond or finer). H.264 (yuv420p) in MP4 plays in browsers; it needs even frame
    sizes, so odd sizes and machines without an H.264 encoder fall back to MPEG-4 Part 2,
    with a note.
    """

    needs_annotated = True
    SUFFIXES = (".mp4", ".mkv", ".mov", ".avi")

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "libx264"):
        if Path(path).suffix.lower() not in self.SUFFIXES:
            raise SinkError(f"Expected a video file name ending in {', '.join(self.SUFFIXES)}, "
                            f"but got {path}")
        if not fps > 0:
            raise SinkError(f"Expected a frame rate > 0 for {path}, but got {fps}")
        super().__init__(path)
        self.fps = Fraction(fps).limit_denominator(1001)
        self.codec = codec
        self._container = None
        self._stream = None
        self.size: tuple[int, int] | None = None
        self._time_base = Fraction(1, 1000)
        self._first_ms: float | None = None
        self._last_pts = -1

    def _open(self, width: int, height: int) -> None:
        codec = self.codec
        if codec == "libx264" and (width % 2 or height % 2 or not _has_encoder(codec)):
            codec = "mpeg4"
            self.notes.append(
                f"{self.path}: written as MPEG-4 Part 2, not H.264 (H.264 needs even frame "
                f"sizes and an encoder; size {width}x{height}); it plays in VLC or ffplay, "
                "not in browsers")
        faststart = {"movflags": "+faststart"} if self.path.suffix.lower() in (".mp4", ".mov") \
            else {}
        try:
            self._container = av.open(str(self.tmp), "w", options=faststart)
            stream = self._container.add_stream(codec, rate=self.fps)
        except (av.FFmpegError, ValueError, OSError) as e:
            self._finish()
            raise SinkError(f"Cannot write video {self.path}: {e}") from e
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "23", "preset": "veryfast"}
        else:
            stream.bit_rate = 4_000_000
        self._time_base = stream.codec_context.time_base = _time_base(self.fps, codec)
        self._stream, self.size = stream, (width, height)

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        image = frame.image if annotated is None else annotated
        if self._stream is None:
            self._open(image.shape[1], image.shape[0])
        if (image.shape[1], image.shape[0]) != self.size:
            self._note_letterbox(image.shape)
            image = letterbox(image, self.size)
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        self._stamp(video_frame, frame)
        self._container.mux(self._stream.encode(video_frame))

    def _note_letterbox(self, shape: tuple[int, ...]) -> None:
        if not any("letterboxed" in n for n in self.notes):
            self.notes.append(f"{self.path}: frames of another size than the first "
                              f"({shape[1]}x{shape[0]}, not {self.size[0]}x{self.size[1]}) "
                              "are letterboxed into the first one's size, aspect ratio kept")

    def _stamp(self, video_frame: av.VideoFrame, frame: Frame) -> None:
        """Presentation time from ``frame.timestamp_ms`` (always increasing, at least by one
        tick), so the video stays in step with the JSONL on variable-rate inputs."""
        if self._first_ms is None:
            self._first_ms = frame.timestamp_ms
        ticks = (frame.timestamp_ms - self._first_ms) / 1000.0 / self._time_base
        pts = max(round(ticks), self._last_pts + 1)
        video_frame.pts, video_frame.time_base = pts, self._time_base
        self._last_pts = pts

    def _finish(self) -> None:
        container, self._container = self._container, None
        if container is None:
            return
        try:
            if self._stream is not None:
                container.mux(self._stream.encode(None))  # flush the encoder's last frames
        except BaseException:
            with suppress(av.FFmpegError, OSError):  # the flush's error is the one to report
                container.close()
            raise
        container.close()


def _time_base(fps: Fraction, codec: str) -> Fraction:
    """1/N s with N a multiple of 1000 and of fps's numerator: a frame on the ``fps`` grid
    lands on a whole tick, and any timestamp on a millisecond. MPEG-4 Part 2 allows
    N <= 65535 only: past that, the largest multiple of the numerator that fits (ticks still
    finer than 1 ms), else milliseconds."""
    n = math.lcm(1000, fps.numerator)
    if codec == "mpeg4" and n > 65535:
        n = max(1000, 65535 // fps.numerator * fps.numerator)
    return Fraction(1, n)


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True


def _open_text(tmp: Path, path: Path, **kwargs):
    try:
        return tmp.open("w", encoding="utf-8", **kwargs)
    except OSError as e:
        raise SinkError(f"Cannot write {path}: {e.strerror or e}") from e


def detection_records(detections: Detections, names: Sequence[str]) -> list[dict]:
    """Detections as plain dicts: class id and name, score, box xyxy in original pixels."""
    records = []
    for i in range(len(detections)):
        record = {
            "class_id": int(detections.class_ids[i]),
            "class_name": name_of(int(detections.class_ids[i]), names),
            "score": round(float(detections.scores[i]), 4),
            "box": [round(float(v), 2) for v in detections.xyxy[i]],
        }
        if detections.track_ids is not None:
            record["track_id"] = int(detections.track_ids[i])
        records.append(record)
    return records


class JsonlSink(Sink):
    """One JSON object per input frame, in order, also for frames with no detections."""

    def __init__(self, path: str | os.PathLike, names: Sequence[str]):
        super().__init__(path)
        self.names = names
        self._file = _open_text(self.tmp, self.path)

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        line = {"frame": frame.index, "timestamp_ms": round(frame.timestamp_ms, 3),
                "detections": detection_records(detections, self.names)}
        if frame.source_id:
            line["source"] = frame.source_id
        self._file.write(json.dumps(line) + "\n")

    def _finish(self) -> None:
        if not self._file.closed:
            self._file.close()


class CsvSink(Sink):
    """One row per detection: frame, timestamp_ms, track_id, class, score, x1, y1, x2, y2."""

    HEADER = ("frame", "timestamp_ms", "track_id", "class_id", "class_name", "score",
              "x1", "y1", "x2", "y2")

    def __init__(self, path: str | os.PathLike, names: Sequence[str]):
        super().__init__(path)
        self.names = names
        self._file = _open_text(self.tmp, self.path, newline="")
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.HEADER)

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        for record in detection_records(detections, self.names):
            self._writer.writerow([frame.index, round(frame.timestamp_ms, 3),
                                   record.get("track_id", -1), record["class_id"],
                                   record["class_name"], record["score"], *record["box"]])

    def _finish(self) -> None:
        if not self._file.closed:
            self._file.close()
