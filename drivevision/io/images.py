"""Still images and folders of them: reading one (size checked from its header first),
listing a folder's, and ``ImageSource``, a folder (or one image) as a source.

Every frame's image is (H, W, 3) uint8 BGR, grayscale, 16-bit, 32-bit, float and alpha
already converted.
Open them through ``drivevision.io.sources.open_source``.
"""

from __future__ import annotations

import os
import re
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from drivevision.errors import SourceError
from drivevision.io import limits
from drivevision.io.frames import Frame, FrameCheck, Source

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
TURNED = {5, 6, 7, 8}  # EXIF orientations that swap width and height (a phone on its side)
# the image modes Pillow converts to 8-bit RGB without clipping samples
PILLOW_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"}
# Pillow's modes of other depths, as a message names them
DEPTHS = {"I;16": "16-bit", "I": "32-bit integer", "F": "32-bit float"}
# decoded by Pillow: OpenCV prints errors of its own (naming no file) for a cut TIFF or BMP,
# and does not decode a TIFF whose orientation turns it (5-8)
PILLOW_FORMATS = {"TIFF", "BMP"}

# Sizes come from Pillow's header readers (installed with torchvision), and we bound them
# ourselves: its bomb warning would only repeat our note.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
# a damaged EXIF block (an orientation read as none) is no reason for lines naming no file
warnings.filterwarnings("ignore", message="(Corrupt EXIF data|Tag data larger than file)",
                        category=UserWarning, module=r"PIL\.TiffImagePlugin")


class ImageRefused(SourceError):
    """An image that is not decoded, or not kept, because of its size."""


class ImageUnreadable(SourceError):
    """An image file that cannot be opened (a link to a missing file or a loop of links, no
    permission to read it); ``why`` says which, after the file's name."""

    def __init__(self, path: Path, error: OSError):
        why = error.strerror or type(error).__name__
        if path.is_symlink():
            why = f"a link to {os.readlink(path)}: {why}"
        self.why = f"{path.name} ({why})"
        super().__init__(f"Cannot read image {path}: {why}")


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


def image_size(path: Path) -> tuple[int, int] | None:
    """(width, height) of an image as it is read (its EXIF orientation applied, as OpenCV
    does), from the file's header, without decoding it; None when Pillow cannot read the
    header (OpenCV may still decode the file). Pillow's own bound (179 MP) raises
    ``Image.DecompressionBombError`` with the pixel count."""
    header = _header(path)
    return header and _upright(header)


def _upright(header: tuple[tuple[int, int], str, int | None]) -> tuple[int, int]:
    (width, height), _, orientation = header
    return (height, width) if orientation in TURNED else (width, height)


def _header(path: Path) -> tuple[tuple[int, int], str, int | None] | None:
    """(width and height as stored, format, EXIF orientation) from a file's header, or None
    (``image_size``)."""
    try:
        with Image.open(path) as image:
            size = image.size
            if image.format == "TIFF":  # Pillow gives a TIFF turned on its side upright
                size = image.tag_v2[256], image.tag_v2[257]  # ImageWidth, ImageLength
            return size, image.format, image.getexif().get(0x0112)
    except (OSError, SyntaxError, ValueError):
        return None


def read_image(path: Path, max_pixels: int | None = None,
               check: FrameCheck | None = None) -> np.ndarray:
    """An image file as (H, W, 3) uint8 BGR (grayscale, other depths and alpha converted).

    An image whose header announces more than ``max_pixels`` (default: ``limits.max_pixels``)
    is refused before it is decoded (``ImageRefused``), as is one ``check`` refuses (given
    width and height, it returns why, or None). ``ImageUnreadable`` when the file cannot be
    opened, SourceError when it cannot be decoded.
    """
    limit = limits.max_pixels() if max_pixels is None else max_pixels
    try:
        with open(path, "rb"):
            pass  # OpenCV and Pillow would call a file they cannot open damaged, or no image
    except OSError as e:
        raise ImageUnreadable(path, e) from None
    try:
        header = _header(path)
    except Image.DecompressionBombError as e:
        pixels = int(re.search(r"\((\d+) pixels\)", str(e)).group(1))
        if pixels > limit:
            raise ImageRefused(f"{path.name}: {limits.over_limit(pixels, limit)}") from None
        header = None
    size = header and _upright(header)
    problem = size and (limits.pixel_problem(*size, limit) or (check and check(*size)))
    if problem:
        raise ImageRefused(f"{path.name}: {problem}")
    if header and header[1] in PILLOW_FORMATS:
        image = _pillow_decode(path)  # OpenCV would print errors of its own on a cut file
    elif header is None and _tiff_cut_before_directory(path):
        image = None  # OpenCV's TIFF reader would print libtiff's errors, naming no file
    else:
        try:
            image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        except cv2.error as e:  # a header Pillow cannot read that asks for too much memory
            raise ImageRefused(f"{path.name}: OpenCV refused to decode it "
                               f"({reason_line(e)})") from e
        if image is None and header:  # Pillow read the header: it may decode it too
            image = _pillow_decode(path)
        if image is None and header is None:  # a depth Pillow does not read: float RGB
            image = _opencv_any_depth(path)
    if image is None:
        raise SourceError(f"Cannot decode image {path} (damaged or not an image)")
    problem = size is None and check and check(image.shape[1], image.shape[0])
    if problem:
        raise ImageRefused(f"{path.name}: {problem}")
    return image


def _pillow_decode(path: Path) -> np.ndarray | None:
    """``path`` decoded by Pillow, upright by its EXIF orientation (all eight, as photo
    viewers turn and mirror them), as BGR; other depths (16- and 32-bit integer, 32-bit
    float) scaled to 8 bits by ``to_8bit``. None when Pillow cannot decode it; SourceError
    saying why for a TIFF of such a depth turned on its side (Pillow 13 leaves it as stored).
    For TIFF and BMP, and for files OpenCV fails on."""
    try:
        with Image.open(path) as image:
            if image.mode not in PILLOW_MODES and image.format == "TIFF" and (
                    image.getexif().get(0x0112) in TURNED):
                depth = DEPTHS.get(image.mode[:4], image.mode)
                raise SourceError(f"Cannot decode image {path} (a {depth} TIFF turned on its "
                                  "side by its orientation tag: neither OpenCV nor Pillow "
                                  "reads one upright; save it as 8-bit or upright)")
            upright = ImageOps.exif_transpose(image)
            if upright.mode in PILLOW_MODES:
                return np.ascontiguousarray(np.asarray(upright.convert("RGB"))[..., ::-1])
            samples = np.asarray(upright)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return _bgr(to_8bit(samples)) if samples.dtype.kind in "uif" else None


def _opencv_any_depth(path: Path) -> np.ndarray | None:
    """``path`` decoded by OpenCV at its own depth (32-bit float RGB TIFF, which Pillow does
    not open), as 8-bit BGR (``to_8bit``); None when OpenCV cannot decode it either."""
    image = cv2.imread(str(path), cv2.IMREAD_ANYDEPTH | cv2.IMREAD_ANYCOLOR)
    return None if image is None else _bgr(to_8bit(image))


def to_8bit(samples: np.ndarray) -> np.ndarray:
    """Samples of any depth as uint8: 8-bit as they are; 16-bit by their high byte, as
    OpenCV reads 16-bit images; floats from 0 to 1 times 255; other values (a float or
    32-bit integer image in its own units: a thermal or depth camera's) stretched from
    their least to their greatest to 0-255. Not a number counts as 0."""
    if samples.dtype == np.uint8:
        return samples
    if samples.dtype.kind == "u" and samples.dtype.itemsize == 2:
        return (samples >> 8).astype(np.uint8)
    values = np.nan_to_num(samples.astype(np.float32), copy=False, nan=0.0, posinf=0.0,
                           neginf=0.0)  # float32: a 50 MP RGB image's copy stays 600 MB
    low, high = float(values.min()), float(values.max())
    if samples.dtype.kind == "f" and low >= 0 and high <= 1:
        low, high = 0.0, 1.0
    scale = 255 / (high - low) if high > low else 0.0
    values -= low
    values *= scale
    return np.rint(values, out=values).astype(np.uint8)


def _bgr(samples: np.ndarray) -> np.ndarray:
    """(H, W), (H, W, 1), (H, W, 3) or (H, W, 4) samples in OpenCV's channel order as
    (H, W, 3) BGR, alpha dropped. Pillow's RGB of these depths is grey (one channel)."""
    if samples.ndim == 2 or samples.shape[2] == 1:
        return cv2.cvtColor(samples.reshape(samples.shape[:2]), cv2.COLOR_GRAY2BGR)
    return np.ascontiguousarray(samples[..., :3])


def _tiff_cut_before_directory(path: Path) -> bool:
    """Whether ``path`` is a TIFF cut short before its directory (which libtiff writes
    after the pixels), so that nothing of it can be decoded."""
    with open(path, "rb") as file:
        head = file.read(8)
    if head[:4] not in (b"II*\x00", b"MM\x00*"):
        return False
    offset = int.from_bytes(head[4:8], "little" if head[:2] == b"II" else "big")
    return offset + 2 > path.stat().st_size


def jpeg_damage(path: Path) -> str | None:
    """Why a JPEG does not decode whole (Pillow's words), or None: also for other formats.

    OpenCV decodes a truncated or corrupt JPEG as far as it can, the rest grey or garbled,
    and says nothing (libjpeg prints a line naming no file). Pillow decodes it again at 1/8
    scale, which libjpeg does in the DCT (a fifth of the time of a full decode), and raises.
    """
    try:
        image = Image.open(path)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    with image:
        if image.format not in ("JPEG", "MPO"):  # MPO: a phone's JPEG with a depth map, ...
            return None
        image.draft("RGB", (max(image.width // 8, 1), max(image.height // 8, 1)))
        try:
            image.load()
        except (OSError, SyntaxError, ValueError) as e:
            return str(e)
    return None


def reason_line(error: BaseException) -> str:
    """The last non-blank line of an error's text: OpenCV's and FFmpeg's end with the reason."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[-1] if lines else type(error).__name__


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
    SourceError if none is kept. A JPEG that decodes only in part (``jpeg_damage``) is kept
    as it decodes, with a note. With ``frame_stride`` K only images 0, K, 2K, ... (by place
    in the folder) are read; the others are not opened. A time range (``keep_range``) keeps
    the images whose time, ``index / fps``, lies in it. ``decoded``: a single image's
    picture, already read (``read_image``) to fail before the run, is not decoded again
    (a damaged JPEG's decoder line is printed once).
    """

    can_stride = True

    def __init__(self, uri: str, paths: list[Path], fps: float = 10.0,
                 max_pixels: int | None = None, decoded: np.ndarray | None = None):
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
                    image = self._read(path)
                except ImageRefused as e:
                    refused.append(str(e))
                    continue
                except ImageUnreadable as e:
                    unreadable.append(e.why)
                    continue
                except SourceError:
                    damaged.append(path)
                    continue
                damage = jpeg_damage(path)
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

    def _read(self, path: Path) -> np.ndarray:
        if self.decoded is None:
            return read_image(path, self.max_pixels, self.frame_check)
        image = self.decoded.copy()  # each pass's frame is its own: sinks may draw on it
        problem = self.frame_check and self.frame_check(image.shape[1], image.shape[0])
        if problem:
            raise ImageRefused(f"{path.name}: {problem}")
        return image

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
