"""Opening a video file (or a recording served over HTTP) with PyAV: which of its video
streams is read, and at which frame rate.

A raw elementary stream (``.h264``, ``.h265``, ``.mjpeg``: no container) has no frame times;
FFmpeg's raw readers time it at 25 fps whatever it is. Its frames are timed at the rate the
caller gives (the user knows the camera's: ``--fps``), else at the rate the stream itself
states where it does (H.264 and H.265 in their SPS's VUI timing, as x264 and cameras write
it), else at FFmpeg's 25 fps; either way the user is told once.
"""

from __future__ import annotations

from pathlib import Path

import av

from drivevision.errors import SourceError, SourcePermissionError
from drivevision.io.image_reading import reason_line

# FFmpeg's demuxers of raw elementary video streams: no container, no frame times
RAW_FORMATS = {"h264", "hevc", "vvc", "m4v", "mpegvideo", "mjpeg", "cavsvideo", "avs2", "avs3",
               "vc1", "obu", "dirac"}
# the names such streams usually go by (a command can tell from them, before opening a file,
# that a rate given for it applies)
RAW_SUFFIXES = frozenset({".h264", ".264", ".avc", ".h265", ".265", ".hevc", ".vvc", ".266",
                          ".mjpeg", ".mjpg"})
CODEC_NAMES = {"h264": "H.264", "hevc": "H.265", "vvc": "H.266"}


def open_video(path: str | Path, raw_fps: float | None = None) -> tuple[
        av.container.InputContainer, av.VideoStream, float, list[str]]:
    """The opened file, its first video stream (decoded on threads), its frame rate (30 if
    it has none that makes sense; a raw stream's, see the module doc: ``raw_fps`` where
    given) and what to tell the user about these choices: a line naming the stream read when
    the file holds several (players show the first too), one saying where a raw stream's rate
    comes from."""
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as e:
        reason = getattr(e, "strerror", None) or reason_line(e)  # FFmpeg's text, no errno
        error = SourcePermissionError if isinstance(e, PermissionError) else SourceError
        raise error(f"Cannot open {path} as a video (not a video file, or damaged: "
                    f"{reason})") from e
    if not container.streams.video:
        container.close()
        raise SourceError(f"Cannot open {path} as a video (it holds no video stream)")
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    rate = stream.average_rate or stream.guessed_rate
    about = streams_read(container)
    if container.format.name in RAW_FORMATS:
        rate, line = raw_rate(path, stream, raw_fps)
        about.append(line)
    fps = float(rate) if rate else 0.0
    return container, stream, (fps if 0 < fps < 1000 else 30.0), about


def raw_rate(path: str | Path, stream: av.VideoStream, given: float | None = None):
    """A raw stream's frame rate (``given``, else its own), and a line saying where it comes
    from (see module doc)."""
    context = stream.codec_context
    codec = CODEC_NAMES.get(context.name, context.name.upper())
    stated = context.framerate if context.framerate and 0 < context.framerate < 1000 else None
    if given is not None:
        own = (f"the stream states {float(stated):g}" if stated else "it states none")
        return given, (f"a raw {codec} stream (no container, no frame times): timed at "
                       f"{given:g} fps, the rate given with --fps ({own})")
    if stated:
        return stated, (f"a raw {codec} stream (no container, no frame times): timed at "
                        f"{float(stated):g} fps, the rate the stream states")
    assumed = stream.average_rate or 25
    return assumed, (f"a raw {codec} stream (no container, no frame times, no rate in it): "
                     f"timed at {float(assumed):g} fps, FFmpeg's default; give the camera's "
                     f"rate with --fps (e.g. --fps 30)")


def streams_read(container: av.container.InputContainer) -> list[str]:
    """One line naming the video stream read, when ``container`` holds more than one."""
    videos = container.streams.video
    if len(videos) < 2:
        return []
    return [f"{len(videos)} video streams: reading the first, {describe(videos[0])}; not read: "
            f"{', '.join(describe(v) for v in videos[1:])}"]


def describe(stream: av.VideoStream) -> str:
    """A video stream as a line names it: ``#1 1280x720 h264``."""
    context = stream.codec_context
    return f"#{stream.index} {context.width}x{context.height} {context.name}"

