"""Reading one image file: its size from its header, without decoding it, and its
picture as (H, W, 3) uint8 BGR, grayscale, 16-bit, 32-bit, float and alpha converted, upright
by its EXIF orientation.

Folders of images, and images as a source, are in ``drivevision.io.images``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import sys
import tempfile
import threading
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps

from drivevision.errors import SourceError
from drivevision.io import limits
from drivevision.io.frames import FrameCheck

TURNED = {5, 6, 7, 8}  # EXIF orientations that swap width and height (a phone on its side)
# the image modes Pillow converts to 8-bit RGB without clipping samples
PILLOW_MODES = {"1", "L", "LA", "P", "PA", "RGB", "RGBA", "RGBX", "CMYK", "YCbCr"}
# Pillow's modes of other depths, as a message names them
DEPTHS = {"I;16": "16-bit", "I": "32-bit integer", "F": "32-bit float"}
# decoded by Pillow: OpenCV prints errors of its own (naming no file) for a cut TIFF or BMP,
# and does not decode a TIFF whose orientation turns it (5-8)
PILLOW_FORMATS = {"TIFF", "BMP"}
# libjpeg's warnings on data it decoded past, the picture grey or garbled from there on (not
# a bad ICC profile's, which leaves the picture whole)
JPEG_DAMAGE = re.compile(rb"Corrupt JPEG data: (?!bad ICC marker)|Premature end of JPEG file"
                         rb"|Inconsistent progression sequence")
# the lines the decoders print to stderr, naming no file: libjpeg's other warnings, libpng's
# errors and warnings (OpenCV's), libtiff's (Pillow's, which names every file tempfile.tif),
# OpenCV's own log
DECODER_LINE = re.compile(
    rb"Corrupt JPEG data: |Premature end of JPEG file|Inconsistent progression sequence"
    rb"|Warning: unknown JFIF revision|Invalid SOS parameters|Invalid restart interval"
    rb"|Unknown Adobe color transform|Unrecognized component IDs|Application transferred"
    rb"|libpng (error|warning): |tempfile\.tif: |(TIFF|LZW|ZIP|Fax3|PackBits|OJPEG)\w*: "
    rb"|\[ ?(WARN|ERROR|INFO|DEBUG):\d")
_STDERR = threading.Lock()  # one decode at a time takes the process's stderr

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
    opened, SourceError when it cannot be decoded. A JPEG that decodes only in part is
    returned as it decodes, and the decoder's line on it is printed to stderr after the
    file's name (``decode_image`` returns the line instead).
    """
    image, damage = decode_image(path, max_pixels, check)
    if damage:
        print(f"{path}: {damage}", file=sys.stderr)
    return image


def decode_image(path: Path, max_pixels: int | None = None,
                 check: FrameCheck | None = None) -> tuple[np.ndarray, str | None]:
    """``read_image``'s picture, and why a JPEG decoded only in part, or None: libjpeg's
    line on the damage it decoded past (``Premature end of JPEG file``, ``Corrupt JPEG
    data: bad Huffman code``), which it would print naming no file (``_quietly``)."""
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
    image, damage = _quietly(lambda: _decode(path, header))
    if image is None:
        raise SourceError(f"Cannot decode image {path} (damaged or not an image)")
    problem = size is None and check and check(image.shape[1], image.shape[0])
    if problem:
        raise ImageRefused(f"{path.name}: {problem}")
    return image, damage


def _decode(path: Path, header: tuple | None) -> np.ndarray | None:
    """``path`` decoded by Pillow (TIFF, BMP) or OpenCV, else by Pillow where Pillow read
    its header, else by OpenCV at its own depth; None when none decodes it."""
    if header and header[1] in PILLOW_FORMATS:
        return _pillow_decode(path)  # OpenCV would print errors of its own on a cut file
    if header is None and _tiff_cut_before_directory(path):
        return None  # OpenCV's TIFF reader would print libtiff's errors, naming no file
    try:
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    except cv2.error as e:  # a header Pillow cannot read that asks for too much memory
        raise ImageRefused(f"{path.name}: OpenCV refused to decode it "
                           f"({reason_line(e)})") from e
    if image is None and header:  # Pillow read the header: it may decode it too
        return _pillow_decode(path)
    if image is None:  # a depth Pillow does not read: float RGB
        return _opencv_any_depth(path)
    return image


def _quietly(decode: Callable[[], np.ndarray | None]) -> tuple[np.ndarray | None, str | None]:
    """``decode()``, and libjpeg's line on damage it decoded past (``JPEG_DAMAGE``), or None.

    The decoders print to the process's stderr (file descriptor 2), naming no file:
    libjpeg one warning for a truncated or corrupt JPEG, which it decodes as far as it can,
    the rest grey or garbled; libpng and libtiff their errors. During the decode that
    descriptor writes to a file of ours (one decode at a time). The decoders' lines
    (``DECODER_LINE``) are dropped, as our own lines name the file; anything else written
    there meanwhile (another thread's lines) is passed on to stderr.
    """
    caught: list[bytes] = []
    try:
        with _stderr_to(caught):
            image = decode()
    finally:
        lines = b"".join(caught).splitlines(keepends=True)
        rest = b"".join(line for line in lines if not DECODER_LINE.match(line))
        if rest:
            os.write(2, rest)
    damage = [line for line in lines if JPEG_DAMAGE.match(line)]
    return image, damage[0].decode(errors="replace").strip() if damage else None


@contextlib.contextmanager
def _stderr_to(caught: list[bytes]) -> Iterator[None]:
    """Within the block, what is written to file descriptor 2 is appended to ``caught``
    instead, one block at a time (nothing is caught where there is no descriptor 2)."""
    with _STDERR, tempfile.TemporaryFile() as file:
        with contextlib.suppress(AttributeError, ValueError, OSError):  # none, or closed
            sys.stderr.flush()  # what Python holds goes out first, to stderr itself
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            os.dup2(file.fileno(), 2)
            try:
                yield
            finally:
                os.dup2(saved, 2)
        finally:
            os.close(saved)
            file.seek(0)
            caught.append(file.read())


def _pillow_decode(path: Path) -> np.ndarray | None:
    """``path`` decoded by Pillow, upright by its EXIF orientation (all eight, as photo
    viewers turn and mirror them), as BGR; other depths (16- and 32-bit integer, 32-bit
    float) scaled to 8 bits by ``to_8bit``; CIELab (a scanner's TIFF) as sRGB. None when
    Pillow cannot decode it; SourceError saying why for a TIFF of such a depth turned on its
    side (Pillow 13 leaves it as stored). For TIFF and BMP, and for files OpenCV fails on."""
    try:
        with Image.open(path) as image:
            if image.mode not in PILLOW_MODES | {"LAB"} and image.format == "TIFF" and (
                    image.getexif().get(0x0112) in TURNED):
                depth = DEPTHS.get(image.mode[:4], image.mode)
                raise SourceError(f"Cannot decode image {path} (a {depth} TIFF turned on its "
                                  "side by its orientation tag: neither OpenCV nor Pillow "
                                  "reads one upright; save it as 8-bit or upright)")
            upright = ImageOps.exif_transpose(image)
            if upright.mode == "LAB":  # its samples are L*, a*, b*: as BGR, wrong colours
                upright = _lab_to_rgb(upright, path)
            if upright.mode in PILLOW_MODES:
                return np.ascontiguousarray(np.asarray(upright.convert("RGB"))[..., ::-1])
            samples = np.asarray(upright)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None
    return _bgr(to_8bit(samples)) if samples.dtype.kind in "uif" else None


def _lab_to_rgb(image: Image.Image, path: Path) -> Image.Image:
    """A CIELab image (D50, as TIFF stores it) as sRGB, by LittleCMS (Pillow's ImageCms,
    in its wheels); Pillow's own ``convert`` has no Lab to RGB. SourceError without it."""
    try:
        from PIL import ImageCms
    except ImportError as e:
        raise SourceError(f"Cannot decode image {path} (a CIELab image, which needs Pillow "
                          f"with LittleCMS: {e})") from None
    return ImageCms.applyTransform(image, _lab_transform(ImageCms))


@functools.cache
def _lab_transform(cms):
    return cms.buildTransform(cms.createProfile("LAB"), cms.createProfile("sRGB"), "LAB", "RGB")


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


def reason_line(error: BaseException) -> str:
    """The last non-blank line of an error's text: OpenCV's and FFmpeg's end with the reason."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[-1] if lines else type(error).__name__


