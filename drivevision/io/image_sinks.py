"""Annotated images as outputs: one image file, or a folder with one image per frame.

``annotated_output(path, source)`` picks the sink for an output path by its form: a video
file name (.mp4 ...), an image file name (.jpg, .png ...) or a folder (an existing folder,
a name ending in ``/``, or a name without a suffix).

A folder output records the names of the images it writes in a hidden file in the folder
(``RECORD``), so that a later run into the same folder replaces exactly those: it never
leaves an earlier run's extra frames beside its own, and never touches an image it did not
write (a folder holding such images is refused).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from drivevision.config import DEFAULT_VIDEO_PRESET
from drivevision.detections import Detections
from drivevision.errors import SinkError
from drivevision.io.claims import STDOUT, claim_folder
from drivevision.io.files import IMAGE_SUFFIXES, ImageSource
from drivevision.io.frames import Frame, Source
from drivevision.io.live_sinks import LiveVideoSink
from drivevision.io.sinks import Sink
from drivevision.io.video_sink import VideoSink
from drivevision.labels import counted

RECORD = ".drivevision-images.txt"
_RECORD_HEADER = ("# the images drivevision wrote into this folder: the next run into it "
                  "replaces them, and touches no other file\n")


def earlier_images(folder: str | os.PathLike) -> tuple[list[str], list[str]]:
    """The images already in ``folder`` (none if it does not exist), sorted, as two lists:
    those an earlier run recorded writing (a new run replaces them) and the others (files
    no run may overwrite or remove). Hidden files are not counted."""
    folder = Path(folder)
    if not folder.is_dir():
        return [], []
    try:
        recorded = set((folder / RECORD).read_text(encoding="utf-8").splitlines())
    except OSError:
        recorded = set()
    images = sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")
                    and p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    return [n for n in images if n in recorded], [n for n in images if n not in recorded]


def foreign_images_message(folder: str | os.PathLike, names: list[str]) -> str:
    """One line refusing a folder output that holds images no run recorded writing."""
    shown = ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
    return (f"Output folder {folder} already holds {counted(len(names), 'image')} that no "
            f"drivevision run wrote there ({shown}); our images would mix with them: choose "
            "a new or empty folder")


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
        names = source.names if isinstance(source, ImageSource) else None
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

    Each name is added to the folder's ``RECORD`` before its image lands. A folder holding
    images the record does not list is refused (``SinkError``); the images of an earlier
    run (listed) are replaced: those this run does not write again are removed when it
    closes, finished or not, so the folder never mixes two runs. The folder is claimed
    for the run, as a file output is (``claims.claim_folder``): a second run writing into it
    at once is refused.
    """

    needs_annotated = True

    def __init__(self, path: str | os.PathLike, names: list[str] | None = None):
        self.path = Path(path)
        if self.path.exists() and not self.path.is_dir():
            raise SinkError(f"Output {path} is a file; expected a folder")
        if not self.path.parent.is_dir():
            raise SinkError(f"Output folder {self.path.parent} does not exist")
        self._claim = claim_folder(self.path)
        try:
            self._open()
        except BaseException:
            self._claim.release()
            raise
        self.names = names
        self.notes: list[str] = []
        self.final_path = self.path
        self.frames = 0
        self._closed = False

    def _open(self) -> None:
        try:
            self.path.mkdir(exist_ok=True)
        except OSError as e:
            raise SinkError(f"Cannot make output folder {self.path}: {e.strerror or e}") from e
        earlier, foreign = earlier_images(self.path)
        if foreign:
            raise SinkError(foreign_images_message(self.path, foreign))
        self._earlier, self._written = set(earlier), set()
        self._record = _open_record(self.path / RECORD)

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        name = self.names[frame.index] if self.names else f"frame_{frame.index:06d}.png"
        if name not in self._written and name not in self._earlier:
            self._record.write(f"{name}\n")  # first, so a killed run leaves none unlisted
            self._record.flush()
        self._written.add(name)
        target = self.path / name
        tmp = target.with_name(f".{target.stem}.part{target.suffix}")
        _write_image(tmp, target, frame.image if annotated is None else annotated)
        os.replace(tmp, target)

    def close(self, complete: bool = True) -> None:
        """Remove the earlier run's images this run did not write again (every image of
        this run is already in place) and leave the record listing what the folder holds."""
        if self._closed:
            return
        self._closed = True
        try:
            self._tidy()
        finally:
            self._claim.release()

    def _tidy(self) -> None:
        self._record.close()
        kept = set(self._written)
        for name in sorted(self._earlier - self._written):
            try:
                (self.path / name).unlink(missing_ok=True)
            except OSError:
                kept.add(name)
        if self._earlier - kept:
            removed = len(self._earlier - kept)
            self.notes.append(f"{self.path}: replaced the images of an earlier run into it "
                              f"({removed} of them not written again "
                              f"{'was' if removed == 1 else 'were'} removed)")
        record = self.path / RECORD
        tmp = record.with_name(f"{RECORD}.part.{os.getpid()}")
        try:  # the appended record already lists them all: this only drops the removed
            tmp.write_text(_RECORD_HEADER + "".join(f"{n}\n" for n in sorted(kept)),
                           encoding="utf-8")
            os.replace(tmp, record)
        except OSError:
            tmp.unlink(missing_ok=True)


def _open_record(path: Path):
    try:
        record = path.open("a", encoding="utf-8")
    except OSError as e:
        raise SinkError(f"Cannot write {path}: {e.strerror or e}") from e
    if record.tell() == 0:
        record.write(_RECORD_HEADER)
    return record


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
