"""Annotated images as outputs: one image file, or a folder with one image per frame.

``annotated_output(path, source)`` picks the sink for an output path by its form: a video
file name (.mp4 ...), an image file name (.jpg, .png ...) or a folder (an existing folder,
a name ending in ``/``, or a name without a suffix).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from drivevision.config import DEFAULT_VIDEO_PRESET
from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.claims import STDOUT
from drivevision.io.files import IMAGE_SUFFIXES, ImageSource
from drivevision.io.frames import Frame, Source
from drivevision.io.live_sinks import LiveVideoSink
from drivevision.io.sinks import Sink
from drivevision.io.video_sink import VideoSink


def output_kind(path: str | os.PathLike) -> str:
    """"video", "image" or "folder": what an annotated output path asks for."""
    text, p = str(path), Path(path)
    if text == STDOUT:
        raise SinkError("An annotated video or images cannot go to stdout (-); give a file "
                        "or folder name, and --jsonl -, --csv - or --mot - for the detections")
    if p.suffix.lower() in VideoSink.SUFFIXES:
        return "video"
    if p.suffix.lower() in IMAGE_SUFFIXES:
        return "image"
    if p.is_dir() or text.endswith(("/", os.sep)) or not p.suffix:
        return "folder"
    raise SinkError(f"Expected an output ending in {', '.join(VideoSink.SUFFIXES)} (video), "
                    f"{', '.join(sorted(IMAGE_SUFFIXES))} (image) or a folder, but got {path}")


def annotated_output(path: str | os.PathLike, source: Source,
                     preset: str = DEFAULT_VIDEO_PRESET) -> Sink:
    """The sink that writes ``source``'s annotated frames to ``path`` (see ``output_kind``);
    a video is encoded with x264's ``preset``."""
    kind = output_kind(path)
    if kind == "image":
        return ImageSink(path)
    if kind == "folder":
        names = [p.name for p in source.paths] if isinstance(source, ImageSource) else None
        return ImageFolderSink(path, names)
    return (LiveVideoSink if source.live else VideoSink)(path, source.fps or 30.0,
                                                         preset=preset)


class ImageSink(Sink):
    """The one annotated frame of a single-image input, as an image file (format by suffix).

    Written beside its target and moved into place when closed, like every sink.
    """

    needs_annotated = True

    def __init__(self, path: str | os.PathLike):
        super().__init__(path)
        self._image: np.ndarray | None = None

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        if self._image is not None:
            raise SinkError(f"An image output ({self.path}) takes one frame; for a video or "
                            "a folder of images give a video file or a folder as output")
        self._image = frame.image if annotated is None else annotated

    def _finish(self) -> None:
        if self._image is not None:
            _write_image(self.tmp, self.path, self._image)


class ImageFolderSink(Sink):
    """One annotated image per frame in a folder, each at its own size.

    Frames from a folder of images keep their file names (``names[frame.index]``); frames of
    a video are ``frame_000000.png``, ``frame_000001.png``, ... by frame index. Each image is
    written to a temporary name and moved into place, so a file in the folder is always
    whole; the folder is made if missing (its parent must exist).
    """

    needs_annotated = True

    def __init__(self, path: str | os.PathLike, names: list[str] | None = None):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"Output {path} is a file; expected a folder")
        if not self.path.parent.is_dir():
            raise SinkError(f"Output folder {self.path.parent} does not exist")
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as e:
            raise SinkError(f"Cannot make output folder {path}: {e.strerror or e}") from e
        self.names = names
        self.notes: list[str] = []
        self.final_path = self.path
        self.frames = 0
        self._closed = False

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        name = self.names[frame.index] if self.names else f"frame_{frame.index:06d}.png"
        target = self.path / name
        tmp = target.with_name(f".{target.stem}.part{target.suffix}")
        _write_image(tmp, target, frame.image if annotated is None else annotated)
        os.replace(tmp, target)

    def close(self, complete: bool = True) -> None:
        self._closed = True  # every image is already in place


def _write_image(tmp: Path, path: Path, image: np.ndarray) -> None:
    try:
        ok = cv2.imwrite(str(tmp), image)
    except cv2.error as e:
        ok, reason = False, str(e).strip().splitlines()[-1]
    else:
        reason = "the disk refused it, or the format cannot hold this image"
    if not ok:
        tmp.unlink(missing_ok=True)
        raise SinkError(f"Cannot write image {path}: {reason}")
