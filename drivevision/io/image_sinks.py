"""Annotated images as outputs: one image file, or a folder with one image per frame.

``annotated_output(path, source)`` picks the sink for an output path by its form: a video
file name (.mp4 ...), an image file name (.jpg, .png ...) or a folder (an existing folder,
a name ending in ``/``, or a name without a suffix).

A folder output records the names of the images it writes in a hidden file in the folder
(``RECORD``, see ``recorded``), so that a later run into the same folder replaces exactly
those: it never leaves an earlier run's extra frames beside its own, and never touches an
image it did not write (a folder holding such images is refused).
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
from drivevision.io.frames import Frame, Source
from drivevision.io.images import IMAGE_SUFFIXES, ImageSource
from drivevision.io.live_sinks import LiveVideoSink
from drivevision.io.recorded import Layout, RecordedSink
from drivevision.io.sinks import Sink
from drivevision.io.video_sink import VideoSink

RECORD = ".drivevision-images.txt"


def _images(folder: Path) -> list[str]:
    return [p.name for p in folder.iterdir() if not p.name.startswith(".")
            and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]


IMAGE_FOLDER = Layout(RECORD, "image", _images)  # the top-level images count


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
    a video is encoded with x264's ``preset``, at the rate of the frames the source keeps
    (its own over its ``frame_stride``), so that it lasts as long as the input; a folder of
    images' video has the size most of them have (``ImageSource.common_size``)."""
    kind = output_kind(path)
    if kind == "image":
        return ImageSink(path)
    if kind == "folder":
        names = source.names if isinstance(source, ImageSource) else None
        return ImageFolderSink(path, names)
    fps = (source.fps or 30.0) / source.frame_stride
    if source.live:
        return LiveVideoSink(path, fps, preset=preset, stream_time=source.stream_clock)
    size = source.common_size() if isinstance(source, ImageSource) else None
    return VideoSink(path, fps, preset=preset, size=size)


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


class ImageFolderSink(RecordedSink):
    """One annotated image per frame in a folder, each at its own size.

    Frames from a folder of images keep their file names (``names[frame.index]``); frames of
    a video are ``frame_000000.png``, ``frame_000001.png``, ... by frame index. The folder is
    made if missing (its parent must exist) and kept as a ``recorded.RecordedTree``: each
    image is whole, a folder holding images its ``RECORD`` does not list is refused
    (``SinkError``), and the images of an earlier run (listed) are replaced, those this run
    does not write again removed when it closes, finished or not. A second run writing
    into it at once is refused.
    """

    needs_annotated = True
    layout = IMAGE_FOLDER

    def __init__(self, path: str | os.PathLike, names: list[str] | None = None):
        super().__init__(path)
        self.names = names

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        name = self.names[frame.index] if self.names else f"frame_{frame.index:06d}.png"
        image = frame.image if annotated is None else annotated
        self.tree.put_with(name, lambda tmp: _write_image(tmp, self.path / name, image))


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
