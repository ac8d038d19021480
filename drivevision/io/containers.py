"""Opening a video file (or a recording served over HTTP) with PyAV: which of its video
streams is read, and at which frame rate."""

from __future__ import annotations

from pathlib import Path

import av

from drivevision.errors import SourceError, SourcePermissionError
from drivevision.io.images import reason_line


def open_video(path: str | Path) -> tuple[av.container.InputContainer, av.VideoStream, float,
                                           list[str]]:
    """The opened file, its first video stream (decoded on threads), its frame rate (30 if
    it has none that makes sense) and what to tell the user about the choice: a line naming
    the stream read when the file holds several (players show the first too)."""
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
    fps = float(rate) if rate else 0.0
    return container, stream, (fps if 0 < fps < 1000 else 30.0), streams_read(container)


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

