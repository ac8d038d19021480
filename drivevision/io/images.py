"""Folders of still images: listing a folder's images, and ``ImageSource``, a folder (or one
image) as a source. Reading one image is ``drivevision.io.image_reading``.

Every frame's image is (H, W, 3) uint8 BGR, grayscale, 16-bit, 32-bit, float and alpha
already converted.
Open them through ``drivevision.io.sources.open_source``.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

from drivevision.errors import SourceError
from drivevision.io import limits
from drivevision.io.frames import Frame, Source
from drivevision.io.image_reading import (
    ImageRefused,
    ImageUnreadable,
    decode_image,
    image_size,
    read_image,  # noqa: F401 (the viewer's, from here)
)

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
# the folders NAS boxes and operating systems keep beside a share's or a drive's files, which
# hold no footage of the user's own: thumbnails (Synology's @eaDir/IMG_0001.jpg/
# SYNOFILE_THUMB_M.jpg), recycle bins, snapshots, indexes. Hidden ones (QNAP's .@__thumb,
# macOS's .Trashes and .Spotlight-V100) are passed over for their dot.
METADATA_FOLDERS = frozenset({"@eadir", "@tmp", "@sharebin", "#recycle", "#snapshot",
                              "@recycle", "@recently-snapshot", "$recycle.bin", "recycler",
                              "system volume information"})


def metadata_folder(name: str) -> bool:
    """Whether a folder of this name is a NAS's or an operating system's own
    (``METADATA_FOLDERS``, in any case, as Windows and SMB shares match names)."""
    return name.casefold() in METADATA_FOLDERS


def natural_key(path: Path) -> list:
    """Sort key that puts frame2.png before frame10.png."""
    return [int(t) if t.isdecimal() else t.lower() for t in re.split(r"(\d+)", path.name)]


def folder_images(folder: Path) -> list[Path]:
    """The images directly in ``folder``, in natural order: files (or links to files, also
    to missing ones, which reading then names) with an image suffix, not hidden
    (``.DS_Store``, and macOS's ``._IMG_0001.jpg`` resource forks on shared drives, hold no
    image)."""
    return sorted((p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES
                   and not p.name.startswith(".")
                   and (p.is_file() or p.is_symlink() and not p.exists())), key=natural_key)


def frame_time_ms(index: int, fps: float, position_ms: float = 0.0) -> float:
    """Frame ``index``'s time: ``position_ms`` (the container's), or ``index / fps`` when
    there is none (<= 0; images have none). Rounded to the nanosecond, so a container time
    read through float seconds (OpenCV's 300.00000000000006) is the exact one (300.0)."""
    return round(position_ms, 6) if position_ms > 0 else index * 1000.0 / fps


class ImageSource(Source):
    """Still images, one frame each, in natural order; ``fps`` spaces their timestamps.

    An image that cannot be decoded, or is refused for its size (over ``max_pixels``, read
    from its header before decoding, or refused by ``frame_check``), is skipped with a note
    (its index and time stay unused, so every frame keeps its place in the folder);
    SourceError if none is kept. A JPEG that decodes only in part (``decode_image``) is
    kept as it decodes, with a note naming it. With ``frame_stride`` K only images 0, K,
    2K, ... (by place in the folder) are read; the others are not opened. A time range
    (``keep_range``) keeps the images whose time, ``index / fps``, lies in it. ``decoded``:
    a single image's picture and damage, already decoded (``decode_image``) to fail before
    the run, is not decoded again.
    """

    can_stride = True

    def __init__(self, uri: str, paths: list[Path], fps: float = 10.0,
                 max_pixels: int | None = None,
                 decoded: tuple[np.ndarray, str | None] | None = None):
        super().__init__(uri, fps=fps, frame_count=len(paths))
        self.paths = paths
        self.max_pixels = limits.max_pixels() if max_pixels is None else max_pixels
        self.decoded = decoded if len(paths) == 1 else None

    def common_size(self) -> tuple[int, int] | None:
        """The (width, height) most of the images have, from their headers (of equally
        common sizes the largest, then the first); None when no header reads."""
        sizes = Counter(size for size in map(_header_size, self.paths) if size)
        if not sizes:
            return None
        return max(sizes.items(), key=lambda item: (item[1], item[0][0] * item[0][1]))[0]

    @property
    def names(self) -> list[str]:
        """Each image's name relative to the input folder (a folder is not searched
        recursively, so its file name), as its frames' ``Frame.file`` gives it."""
        return [p.name for p in self.paths]

    def __iter__(self) -> Iterator[Frame]:
        damaged: list[Path] = []
        refused: list[str] = []
        partial: list[str] = []
        unreadable: list[str] = []
        self.passed = 0
        self.notes.clear()  # what this pass meets: an earlier one (a peek) told its own
        first, stop = self.range_indices()
        self.span = (first, stop - 1) if self.ranged else None
        try:
            for i, (path, name) in enumerate(zip(self.paths, self.names, strict=True)):
                if not first <= i < stop:
                    continue
                if i % self.frame_stride:
                    self.passed += 1
                    continue
                try:
                    image, damage = self._read(path)
                except ImageRefused as e:
                    refused.append(str(e))
                    continue
                except ImageUnreadable as e:
                    unreadable.append(e.why)
                    continue
                except SourceError:
                    damaged.append(path)
                    continue
                if damage:
                    partial.append(f"{name} ({damage})")
                yield Frame(i, frame_time_ms(i, self.fps), image, time.monotonic(), file=name)
        finally:
            self._note_skipped(damaged, refused, partial, unreadable)
        tried = stop - first - self.passed  # the images read: a stride or range passes others
        if len(damaged) + len(refused) + len(unreadable) == tried:
            why = f"decoded ({_damaged(tried)})"
            if refused and not damaged and not unreadable:
                why = f"decoded ({refused[0]})"
            elif unreadable and not damaged and not refused:
                why = f"read: {unreadable[0]}"
            read = "read " if self.passed or self.ranged else ""
            what = ("its only image could not" if len(self.paths) == 1 else
                    f"none of the {tried} images {read}could")
            raise SourceError(f"{self.uri}: {what} be {why}")

    def _read(self, path: Path) -> tuple[np.ndarray, str | None]:
        if self.decoded is None:
            return decode_image(path, self.max_pixels, self.frame_check)
        image, damage = self.decoded
        image = image.copy()  # each pass's frame is its own: sinks may draw on it
        problem = self.frame_check and self.frame_check(image.shape[1], image.shape[0])
        if problem:
            raise ImageRefused(f"{path.name}: {problem}")
        return image, damage

    def _note_skipped(self, damaged: list[Path], refused: list[str], partial: list[str],
                      unreadable: list[str]) -> None:
        if unreadable:
            names = "; ".join(unreadable[:5]) + ("; ..." if len(unreadable) > 5 else "")
            which = _share(len(unreadable), len(self.paths))
            that = ", which" if len(unreadable) == len(self.paths) else " that"
            self.notes.append(f"{self.uri}: skipped {which}{that} could not be read: {names}")
        if damaged:
            names = ", ".join(p.name for p in damaged[:5]) + (", ..." if len(damaged) > 5
                                                              else "")
            which = _share(len(damaged), len(self.paths))
            that = ", which" if len(damaged) == len(self.paths) else " that"
            self.notes.append(f"{self.uri}: skipped {which}{that} could not be decoded "
                              f"({_damaged(len(damaged))}): {names}")
        if refused:
            reasons = "; ".join(refused[:3]) + ("; ..." if len(refused) > 3 else "")
            its = "its" if len(self.paths) == 1 else "their"
            self.notes.append(f"{self.uri}: skipped {_share(len(refused), len(self.paths))} for "
                              f"{its} size: {reasons}")
        if partial:
            names = "; ".join(partial[:5]) + ("; ..." if len(partial) > 5 else "")
            self.notes.append(f"{self.uri}: {_share(len(partial), len(self.paths))} decoded only "
                              "in part (a damaged or truncated JPEG: the rest of the picture is "
                              f"grey or garbled) and detected as decoded: {names}")


def _header_size(path: Path) -> tuple[int, int] | None:
    try:
        return image_size(path)
    except Image.DecompressionBombError:
        return None  # refused when it is read


def _damaged(n: int) -> str:
    return "damaged or not an image" if n == 1 else "damaged or not images"


def _share(k: int, n: int) -> str:
    """``k`` of a folder's ``n`` images as a sentence says it: "the only image", "all 3
    images", "2 of 5 images"."""
    if n == 1:
        return "the only image"
    return f"all {n} images" if k == n else f"{k} of {n} images"
