"""Outputs of a run: annotated video, JSONL, CSV. Each is a context manager.

Crash safety: every JSONL line and CSV frame is flushed to the operating system as it is
written and fsynced at least once a second; the video is fragmented MP4 (a fragment closes
at each keyframe, at least one a second), so a process killed by SIGKILL or a power cut
loses only about its last second. While the run lasts an output is written under
``.NAME.part.PID.EXT`` beside its target (see ``drivevision.io.claims``, which also claims
it for the run) and moved into place when closed, so an existing file is never clobbered by
a failed run. A run that fails leaves what it wrote as ``<name>.partial<suffix>``; one
stopped with Ctrl-C is complete and kept. Outputs that are not regular files (``-``,
``/dev/null``, a FIFO) are written straight through.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import threading
from collections.abc import Sequence
from contextlib import suppress
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.claims import Claim, hold_part, is_stream, part_name, target_of
from drivevision.io.frames import Frame
from drivevision.labels import name_of
from drivevision.render import letterbox

SYNC_SECONDS = 1.0


class _Syncer:
    """One thread that fsyncs every open output once a second while any is open, so a power
    cut loses at most the last second (a flush alone survives only a killed process)."""

    def __init__(self):
        self._fds: set[int] = set()
        self._mutex = threading.Lock()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, fd: int) -> None:
        with self._mutex:
            self._fds.add(fd)
            if self._thread is None or not self._thread.is_alive():
                self._wake.clear()
                self._thread = threading.Thread(target=self._loop, name="drivevision-fsync",
                                                daemon=True)
                self._thread.start()

    def remove(self, fd: int) -> None:
        """Stop syncing ``fd`` (before it is closed); syncs it once more first."""
        with self._mutex:
            self._fds.discard(fd)
            with suppress(OSError):
                os.fsync(fd)
            if not self._fds:
                self._wake.set()

    def _loop(self) -> None:
        while not self._wake.wait(SYNC_SECONDS):
            with self._mutex:
                for fd in self._fds:
                    with suppress(OSError):
                        os.fsync(fd)
        with self._mutex:
            if self._fds:  # one added while this thread was ending: keep going for it
                self._wake.clear()
                self._thread = threading.Thread(target=self._loop, name="drivevision-fsync",
                                                daemon=True)
                self._thread.start()


_SYNCER = _Syncer()


class Sink:
    """Writes results to ``path``; ``needs_annotated`` asks the pipeline to render frames.

    An output that is not a file (the MJPEG server's ``ServeSink``) has no ``path``
    (None): closing it only finishes it. ``path`` may be ``-`` (stdout, for text outputs),
    a device or FIFO (written straight through) or a symbolic link (its target is written,
    through a part file in the target's folder). Raises ``SinkError`` when another run is
    writing the same output. ``frames`` counts the frames written; ``notes`` collects what
    the user should hear at the end; ``segments`` lists the finished pieces of an output
    recorded in pieces (``live_sinks.Segmented``), empty for one file.
    """

    needs_annotated = False
    keeps_empty = True  # a finished output with no frame is still one (an empty JSONL)

    def __init__(self, path: str | os.PathLike | None = None):
        self.notes: list[str] = []
        self.segments: list[Path] = []
        self.final_path: Path | None = None
        self.frames = 0
        self._closed = False
        self._claim: Claim | None = None
        self._hold: int | None = None
        self.path = self.tmp = self.target = None
        self.stream = False
        if path is None:
            return
        self.path = Path(path)
        self.stream = is_stream(path)
        if self.stream:
            self.target = self.tmp = self.path
            return
        self.target = target_of(path)
        if self.target.is_dir():
            raise SinkError(f"Output {path} is a folder; give a file name")
        if not self.target.parent.is_dir():
            raise SinkError(f"Output folder {self.target.parent} does not exist")
        self._claim = Claim(self.target)
        self.tmp = part_name(self.target)
        try:
            self._hold = hold_part(self.tmp)
        except OSError as e:
            self._claim.release()
            raise SinkError(f"Cannot write {path}: {e.strerror or e}") from e
        _SYNCER.add(self._hold)

    def write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        """Write one frame's result (``annotated`` is the drawn frame, or None)."""
        self._write(frame, detections, annotated)
        self.frames += 1

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        raise NotImplementedError

    def _finish(self) -> None:
        """Flush and close the temporary file."""

    def _complete(self) -> None:
        """Last touches to a finished output before it moves into place."""

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
            if complete and not self.stream:
                self._complete()
        except (OSError, av.FFmpegError) as e:
            reason = getattr(e, "strerror", None) or e
            self.notes.append(f"{self.path}: could not finish writing ({reason}); what was "
                              "written is kept as .partial")
            self._release(complete=False)
            if complete:
                raise
            return
        self._release(complete)

    def _release(self, complete: bool) -> None:
        try:
            if not self.stream:
                self._move(complete)
        finally:
            if self._hold is not None:
                _SYNCER.remove(self._hold)
                os.close(self._hold)
                self._hold = None
            if self._claim is not None:
                self._claim.release()

    def _move(self, complete: bool) -> None:
        if self.tmp is None:
            return
        empty_is_nothing = not complete or not self.keeps_empty
        if not self.tmp.exists() or (self.frames == 0 and empty_is_nothing):
            self.tmp.unlink(missing_ok=True)
            return
        target = self.target if complete else self.target.with_name(
            f"{self.target.stem}.partial{self.target.suffix}")
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

    MP4 and MOV are written fragmented, with a keyframe at least every second, so the part
    file plays up to its last second or so after a kill; a finished file is then copied
    (not re-encoded) into an ordinary MP4 that stores its frame count, with the index at
    the front. Matroska plays as it is written.
    """

    needs_annotated = True
    keeps_empty = False  # no frame, no video: a file that does not play helps nobody
    SUFFIXES = (".mp4", ".mkv", ".mov", ".avi")

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "libx264"):
        check_video_name(path)
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
        self._last_key: int | None = None
        self._fragmented = self.path.suffix.lower() in (".mp4", ".mov")

    def _open(self, width: int, height: int) -> None:
        codec = self.codec
        if codec == "libx264" and (width % 2 or height % 2 or not _has_encoder(codec)):
            codec = "mpeg4"
            self.notes.append(
                f"{self.path}: written as MPEG-4 Part 2, not H.264 (H.264 needs even frame "
                f"sizes and an encoder; size {width}x{height}); it plays in VLC or ffplay, "
                "not in browsers")
        options = {"flush_packets": "1"}
        if self._fragmented:
            options["movflags"] = "frag_keyframe+empty_moov+default_base_moof"
        try:
            self._container = av.open(str(self.tmp), "w", options=options)
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
        self._keyframe_each_second(video_frame)

    def _keyframe_each_second(self, video_frame: av.VideoFrame) -> None:
        """Force a keyframe once a second of video: each closes a fragment on disk."""
        pts = video_frame.pts
        if self._last_key is None or (pts - self._last_key) * video_frame.time_base >= 1:
            video_frame.pict_type = av.video.frame.PictureType.I
            self._last_key = pts

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

    def _complete(self) -> None:
        if self._fragmented and self.frames:
            _defragment(self.tmp)

    def _move(self, complete: bool) -> None:
        if not complete and self._fragmented and not self.stream and self.tmp.exists():
            with suppress(OSError):
                trim_fragments(self.tmp)
        super()._move(complete)


def trim_fragments(path: Path) -> None:
    """Cut a fragmented MP4 after its last whole fragment (``moof`` + ``mdat``): what a full
    disk or a power cut left half-written would stop a player with an error."""
    size, end, pos = path.stat().st_size, 0, 0
    with path.open("rb") as f:
        while pos + 8 <= size:
            f.seek(pos)
            length, kind = int.from_bytes(f.read(4), "big"), f.read(4)
            if length == 1:
                length = int.from_bytes(f.read(8), "big")
            if length < 8 or pos + length > size:
                break
            pos += length
            if kind != b"moof":  # a fragment ends with its mdat
                end = pos
    if end < size:
        os.truncate(path, end)


def _defragment(path: Path) -> None:
    """Copy a fragmented MP4's packets into an ordinary one (frame count stored, index at
    the front), in place; the fragmented file stays if the copy fails."""
    tmp = part_name(path, ".copy")
    try:
        with av.open(str(path)) as src, av.open(str(tmp), "w", format=src.format.name.split(",")[0],
                                                options={"movflags": "+faststart"}) as dst:
            stream = dst.add_stream_from_template(src.streams.video[0])
            shift = None  # fragments start at the encoder's delay; an edit list undoes it
            for packet in src.demux(src.streams.video[0]):
                if packet.dts is None:
                    continue
                if shift is None:
                    shift = packet.pts
                packet.pts, packet.dts = packet.pts - shift, packet.dts - shift
                packet.stream = stream
                dst.mux(packet)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def check_video_name(path: str | os.PathLike) -> None:
    """SinkError unless ``path`` ends in a suffix ``VideoSink`` can write."""
    if Path(path).suffix.lower() not in VideoSink.SUFFIXES:
        raise SinkError(f"Expected a video file name ending in "
                        f"{', '.join(VideoSink.SUFFIXES)}, but got {path}")


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
    if str(path) == "-":
        return sys.stdout
    try:
        return tmp.open("w", encoding="utf-8", **kwargs)
    except OSError as e:
        raise SinkError(f"Cannot write {path}: {e.strerror or e}") from e


def _close_text(file) -> None:
    if file is sys.stdout:
        file.flush()
    elif not file.closed:
        file.close()


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
        try:
            self._file = _open_text(self.tmp, self.path)
        except SinkError:
            self._release(complete=False)
            raise

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        line = {"frame": frame.index, "timestamp_ms": round(frame.timestamp_ms, 3),
                "detections": detection_records(detections, self.names)}
        if frame.source_id:
            line["source"] = frame.source_id
        self._line(line)

    def _line(self, record: dict) -> None:
        """One line, flushed to the operating system at once (a killed run keeps it)."""
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()

    def _finish(self) -> None:
        _close_text(self._file)


class CsvSink(Sink):
    """One row per detection: frame, timestamp_ms, track_id, class, score, x1, y1, x2, y2."""

    HEADER = ("frame", "timestamp_ms", "track_id", "class_id", "class_name", "score",
              "x1", "y1", "x2", "y2")

    def __init__(self, path: str | os.PathLike, names: Sequence[str]):
        super().__init__(path)
        self.names = names
        try:
            self._file = _open_text(self.tmp, self.path, newline="")
        except SinkError:
            self._release(complete=False)
            raise
        self._writer = csv.writer(self._file)
        self._writer.writerow(self.HEADER)

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        for record in detection_records(detections, self.names):
            self._writer.writerow([frame.index, round(frame.timestamp_ms, 3),
                                   record.get("track_id", -1), record["class_id"],
                                   record["class_name"], record["score"], *record["box"]])
        self._file.flush()

    def _finish(self) -> None:
        _close_text(self._file)
