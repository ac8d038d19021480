"""``open_source(uri)``: the one entry point every command uses to open an input.

URI forms are in ``drivevision.io.uri``; video files in ``drivevision.io.files``; images and
folders of images in ``drivevision.io.images``; cameras and network streams in
``drivevision.io.streams``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import av
import numpy as np

from drivevision.errors import SourceError, SourceNotFoundError
from drivevision.io import limits, streams
from drivevision.io.containers import streams_read
from drivevision.io.files import VIDEO_SUFFIXES, VideoFileSource
from drivevision.io.frames import Source
from drivevision.io.images import (
    IMAGE_SUFFIXES,
    ImageSource,
    decode_image,
    folder_images,
    metadata_folder,
)
from drivevision.io.uri import URI_HELP, display_uri, parse_uri
from drivevision.labels import counted


def open_source(uri: str | Path, *, fps: float = 10.0, width: int | None = None,
                height: int | None = None, input_fps: float | None = None,
                transport: str | None = None, reconnect: streams.Reconnect | None = None,
                realtime: bool = False, max_pixels: int | None = None,
                raw_fps: float | None = None) -> Source:
    """The source for ``uri`` (forms in ``drivevision.io.uri``), opened now so that a source
    that cannot be opened fails here with one clear message.

    Args:
        fps: frame rate given to image inputs, which have none of their own.
        width, height, input_fps: what to ask a camera (``0``, ``/dev/videoN``, ``csi://N``)
            for; other sources have their own size and rate, and refuse these.
        transport: RTSP transport, "tcp" (default) or "udp"; a ``?transport=`` query wins.
        reconnect: a ``drivevision.streams.Reconnect`` policy for cameras and streams.
        realtime: pace a file or folder at its frame rate, with live semantics.
        max_pixels: the most pixels an image or video frame may have (default:
            ``limits.max_pixels()``); larger ones are refused before they are decoded (a
            stream or camera by the frame size it announces when it opens).
        raw_fps: the frame rate of a raw video stream (``.h264``: no container, no frame
            times; see ``drivevision.io.containers``), instead of the one it states.
    """
    check_uri(uri)
    limits.check_fps(fps, "fps")  # the commands check their --fps before
    if raw_fps is not None:
        limits.check_fps(raw_fps, "raw_fps")
    max_pixels = limits.max_pixels() if max_pixels is None else max_pixels
    spec = parse_uri(str(uri), transport=transport)
    asked = {k: v for k, v in (("width", width), ("height", height), ("input_fps", input_fps))
             if v is not None}
    if asked and spec.kind not in ("camera", "csi"):
        raise ValueError(f"Expected {', '.join(asked)} only for a camera (0, /dev/videoN, "
                         f"csi://N), but the source is {display_uri(str(uri))}")
    if spec.kind == "path":
        source = _open_path(spec.target, fps, max_pixels, raw_fps)
        return streams.RealtimeSource(source) if realtime else source
    policy = reconnect or streams.Reconnect()
    recorded, about = _probe(spec.target, policy.stall_timeout) if spec.kind == "http" else (
        False, [])
    if recorded:
        # a video file or a finished playlist served over HTTP: read once, every frame, as
        # a file (a live stream's end is an outage, which would replay it from the start)
        source = VideoFileSource(str(uri), spec.target, max_pixels, raw_fps)
        return streams.RealtimeSource(source) if realtime else source

    def opener():
        cap = streams.open_capture(spec, width=width, height=height, fps=input_fps,
                                   timeout_s=policy.stall_timeout)
        return streams.within_limit(cap, str(uri), max_pixels)

    source = streams.StreamSource(str(uri), opener, policy, stream_clock=spec.network)
    source.about.extend(about)
    return source


def check_uri(uri) -> None:
    """TypeError, saying what came, for what is not a path or URI (a str, a path object, or
    an int camera index): a frame in memory, a list of inputs, None."""
    if isinstance(uri, (str, os.PathLike)) or (isinstance(uri, int)
                                               and not isinstance(uri, bool)):
        return
    if hasattr(uri, "shape"):  # a numpy array or tensor: frames, which the detector takes
        kind = "numpy array" if isinstance(uri, np.ndarray) else type(uri).__name__
        found = (f"a {kind} of shape {tuple(uri.shape)}; for frames in memory use "
                 "detector(frame) or detector.infer(frames)")
    elif isinstance(uri, (list, tuple)):
        found = (f"a {type(uri).__name__} of {len(uri)}; open_source opens one input: open "
                 "each, and a Pipeline takes the list of them (or run drivevision batch)")
    else:
        found = "None" if uri is None else type(uri).__name__
    raise TypeError(f"Expected a path or URI ({URI_HELP}), but found {found}")


def _probe(url: str, timeout_s: float) -> tuple[bool, list[str]]:
    """Whether ``url`` serves a recording (a video file, a VOD playlist: it has a
    duration; a file with no duration stored, as MPEG-TS, from a server without range
    requests: its length is known), not a live stream (MJPEG, a live playlist: neither), and
    which of its video streams is read where it has several (OpenCV reads the first too, as
    FFmpeg lists them: an HLS playlist's variants in its order)."""
    try:
        with av.open(url, timeout=timeout_s) as container:
            sized = container.size > 0 and container.format.name != "hls"  # not a playlist's
            recorded = (container.duration is not None or sized) and bool(
                container.streams.video)
            return recorded, streams_read(container)
    except (av.FFmpegError, OSError):
        return False, []  # opened again as a stream, which says what is wrong


def _open_path(uri: str, fps: float, max_pixels: int, raw_fps: float | None) -> Source:
    """A video file, an image file or a folder of images."""
    path = Path(uri)
    if not path.exists():
        raise SourceNotFoundError(f"No such file or directory: {uri}", str(uri))
    kind = _not_a_file(path)
    if kind:
        raise SourceError(f"{uri} is {kind}, not a file: expected a video file, an image or a "
                          "folder of images (a stream is a URL, a camera 0 or /dev/videoN)")
    if path.is_dir():
        images = folder_images(path)
        if not images:
            raise SourceError(f"No images ({', '.join(sorted(IMAGE_SUFFIXES))}) in folder {uri}"
                              f"{_held_instead(path, uri)}")
        return ImageSource(str(uri), images, fps, max_pixels)
    if path.stat().st_size == 0:
        raise SourceError(f"{uri} is empty (0 bytes)")
    if path.suffix.lower() in IMAGE_SUFFIXES:
        decoded = decode_image(path, max_pixels)  # fail now, not in the capture thread
        return ImageSource(str(uri), [path], fps, max_pixels, decoded=decoded)
    return VideoFileSource(str(uri), path, max_pixels, raw_fps)


def _held_instead(folder: Path, uri: str) -> str:
    """What a folder with no images holds instead, as the end of a sentence: its subfolders
    and the suffixes of its other files (hidden ones and NAS or system folders left out),
    and where they can go."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    metadata = sorted(p.name for p in entries if p.is_dir() and metadata_folder(p.name))
    entries = [p for p in entries if p.name not in metadata]
    folders = sum(p.is_dir() for p in entries)
    suffixes = sorted({p.suffix.lower() or "no suffix" for p in entries if p.is_file()})
    files = sum(p.is_file() for p in entries)
    held = [counted(folders, "subfolder")] if folders else []
    if files:
        held.append(f"{counted(files, 'other file')} ({', '.join(suffixes[:6])}"
                    f"{', ...' if len(suffixes) > 6 else ''})")
    if not held and metadata:
        return f": it holds only folders a NAS or the system keeps ({', '.join(metadata)})"
    if not held:
        return ": it is empty"
    videos = VIDEO_SUFFIXES.intersection(suffixes)
    hint = (f"; drivevision batch {uri} takes the videos and folders of images in it and under "
            "it" if folders or videos else "")
    return f": it holds {' and '.join(held)}{hint}"


def _not_a_file(path: Path) -> str | None:
    """What ``path`` is when it is neither a regular file nor a folder, or None."""
    mode = path.stat().st_mode
    for test, kind in ((stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return kind
    return None
