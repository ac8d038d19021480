"""The annotated video output, ``VideoSink``, and its MP4 helpers.

The video is fragmented MP4 (a fragment closes at each keyframe, at least one a second), so
a process killed by SIGKILL or a power cut loses only about its last second (a live run's
video has a fragment per frame, ``EACH_FRAME``: killed, it loses its last frame); a finished
file is copied into an ordinary MP4 (``_defragment``), and one that failed is cut after its last
whole fragment (``trim_fragments``). Part files, claims and ``.partial`` names work as for
every ``drivevision.io.sinks.Sink``.
"""

from __future__ import annotations

import math
import os
from contextlib import suppress
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from drivevision.config import DEFAULT_VIDEO_PRESET, VIDEO_PRESETS
from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.claims import part_name
from drivevision.io.frames import Frame
from drivevision.io.sinks import Sink
from drivevision.render import letterbox

_FRAGMENTED = {".mp4": "mp4", ".mov": "mov"}  # suffix -> FFmpeg muxer of the finished file
BY_KEYFRAME = "frag_keyframe+empty_moov+default_base_moof"  # the muxer writes a fragment out
# when the next begins: a kill loses the frames since the last keyframe (a second at most)
# A fragment per frame: the muxer writes each frame out as the next one comes (it holds only
# the last one); about 200 bytes a frame more in the part file, none in the finished one.
# Matroska holds a cluster (a keyframe's frames, up to 5 s) the same way: one per frame.
EACH_FRAME = "frag_every_frame+empty_moov+default_base_moof"


class VideoSink(Sink):
    """Annotated video at the input's size (``size``, width and height, else the first
    frame's; frames of another size are letterboxed into it), each frame shown at its
    ``timestamp_ms``.

    A constant-rate input gives a constant-rate video at ``fps``; a variable-rate one keeps
    its timing (timestamps from the first frame's, in a time base of ``fps`` steps of a
    millisecond or finer). H.264 (yuv420p) in MP4 plays in browsers; it needs even frame
    sizes, so odd sizes and machines without an H.264 encoder fall back to MPEG-4 Part 2,
    with a note.

    AVI stores no timestamps, only one frame rate: there frames follow one another at
    ``fps`` from 0, whatever their timestamps, so the file has the input's frame rate and
    frame count.

    ``preset`` is x264's speed/size trade (``PRESETS``): on a CPU whose cores the detector
    keeps busy, ``ultrafast`` takes about half the encoding time of ``veryfast`` for files
    about twice as large.

    MP4 and MOV are written fragmented, with a keyframe at least every second, so the part
    file plays up to its last second or so after a kill; a finished file is then copied
    (not re-encoded) into an ordinary MP4 (a MOV for ``.mov``) that stores its frame count,
    with the index at the front. Matroska plays as it is written.
    """

    needs_annotated = True
    keeps_empty = False  # no frame, no video: a file that does not play helps nobody
    X264_TUNE: dict[str, str] = {}  # more x264 options (a live video's zero latency)
    # each frame out to the part file as the next one comes (a live video's), not a
    # fragment (MP4, MOV) or cluster (Matroska) at a time: see ``EACH_FRAME``
    WRITE_EACH_FRAME = False
    SUFFIXES = (".mp4", ".mkv", ".mov", ".avi")

    def __init__(self, path: str | os.PathLike, fps: float, codec: str = "libx264",
                 preset: str = DEFAULT_VIDEO_PRESET, size: tuple[int, int] | None = None):
        check_video_name(path)
        if not fps > 0:
            raise SinkError(f"Expected a frame rate > 0 for {path}, but got {fps}")
        if preset not in VIDEO_PRESETS:
            raise SinkError(f"Expected an x264 preset ({', '.join(VIDEO_PRESETS)}), "
                            f"but got {preset}")
        super().__init__(path)
        self.fps = _rate(fps)
        self.codec = codec
        self.preset = preset
        self._container = None
        self._stream = None
        self.size: tuple[int, int] | None = None
        self._wanted = size  # (width, height); None: the first frame's
        self._time_base = Fraction(1, 1000)
        self._first_ms: float | None = None
        self._last_pts = -1
        self._last_key: int | None = None
        self._fragmented = self.path.suffix.lower() in _FRAGMENTED
        self._by_index = self.path.suffix.lower() == ".avi"  # AVI has one frame rate, no times

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
            options["movflags"] = EACH_FRAME if self.WRITE_EACH_FRAME else BY_KEYFRAME
        elif self.WRITE_EACH_FRAME and self.path.suffix.lower() == ".mkv":
            options["cluster_size_limit"] = "0"  # a cluster per frame, as EACH_FRAME
        try:
            self._container = av.open(str(self.tmp), "w", options=options)
            stream = self._container.add_stream(codec, rate=self.fps)
        except (av.FFmpegError, ValueError, OSError) as e:
            self._finish()
            raise SinkError(f"Cannot write video {self.path}: {e}") from e
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        if codec == "libx264":
            stream.options = {"crf": "23", "preset": self.preset, **self.X264_TUNE}
            if self._by_index:  # AVI cannot tell a reordered frame's time: readers misplace it
                stream.options = {**stream.options, "bf": "0"}
        else:
            stream.bit_rate = 4_000_000
        self._time_base = stream.codec_context.time_base = (
            _frame_time_base(self.fps, codec) if self._by_index else _time_base(self.fps, codec))
        self._stream, self.size = stream, (width, height)

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        image = frame.image if annotated is None else annotated
        if self._stream is None:
            self._open(*(self._wanted or (image.shape[1], image.shape[0])))
        if (image.shape[1], image.shape[0]) != self.size:
            self._note_letterbox(image.shape)
            image = letterbox(image, self.size)
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        self._stamp(video_frame, frame)
        self._container.mux(self._stream.encode(video_frame))

    def _note_letterbox(self, shape: tuple[int, ...]) -> None:
        if not any("letterboxed" in n for n in self.notes):
            self.notes.append(f"{self.path}: frames of another size than the video's "
                              f"({shape[1]}x{shape[0]}, not {self.size[0]}x{self.size[1]}) "
                              "are letterboxed into it, aspect ratio kept")

    def _stamp(self, video_frame: av.VideoFrame, frame: Frame) -> None:
        """Presentation time from ``_ticks`` (always increasing, at least by one tick), so
        the video stays in step with the JSONL on variable-rate inputs; in AVI, the frame's
        place in the file (``fps`` steps from 0)."""
        if self._by_index:
            pts = self._last_pts + 1
        else:
            pts = max(round(self._ticks(frame)), self._last_pts + 1)
        video_frame.pts, video_frame.time_base = pts, self._time_base
        self._last_pts = pts
        self._keyframe_each_second(video_frame)

    def _ticks(self, frame: Frame) -> float:
        """``frame.timestamp_ms`` from the first frame's, in ticks of ``_time_base``."""
        if self._first_ms is None:
            self._first_ms = frame.timestamp_ms
        return (frame.timestamp_ms - self._first_ms) / 1000.0 / self._time_base

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
    """Copy a fragmented MP4 or MOV's packets into an ordinary file of the kind its suffix
    names (frame count stored, index at the front), in place; the fragmented file stays if
    the copy fails."""
    tmp = part_name(path, ".copy")
    muxer = _FRAGMENTED[path.suffix.lower()]  # the demuxer's name is "mov,mp4,...": not this
    try:
        with av.open(str(path)) as src, av.open(str(tmp), "w", format=muxer,
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


def _rate(fps: float) -> Fraction:
    """``fps`` as a Fraction of denominator <= 1001 (29.97 is 30000/1001); under 1/2002 fps
    (a stride past the clip's length) that is 0, so 1 over the whole seconds of a frame."""
    return Fraction(fps).limit_denominator(1001) or Fraction(1, round(1 / fps))


def _time_base(fps: Fraction, codec: str) -> Fraction:
    """1/N s with N a multiple of 1000 and of fps's numerator: a frame on the ``fps`` grid
    lands on a whole tick, and any timestamp on a millisecond. MPEG-4 Part 2 allows
    N <= 65535 only: past that, the largest multiple of the numerator that fits (ticks still
    finer than 1 ms), else milliseconds."""
    n = math.lcm(1000, fps.numerator)
    if codec == "mpeg4" and n > 65535:
        n = max(1000, 65535 // fps.numerator * fps.numerator)
    return Fraction(1, n)


def _frame_time_base(fps: Fraction, codec: str) -> Fraction:
    """One frame at ``fps``: the time base of a constant-rate container (AVI), where each
    frame is one tick. MPEG-4 Part 2 allows denominators <= 65535 only."""
    return 1 / fps if codec != "mpeg4" else (1 / fps).limit_denominator(65535)


def _has_encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
    except (av.FFmpegError, ValueError):
        return False
    return True
