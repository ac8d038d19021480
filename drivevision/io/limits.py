"""What one input may cost: pixels per image or frame, memory per detector call.

Both are checked before the work that would exceed them, so a hostile or careless input is
refused with one line instead of taking the machine's memory.

``DEFAULT_MAX_PIXELS`` is 50 megapixels: the largest stills people take (48-50 MP phone and
camera sensors; 8K video is 33 MP) fit, and one such frame decodes to 150 MB of BGR, with
decoder intermediates (16-bit samples, alpha) up to four times that, so a folder of them
still runs on a machine with a few GB. ``--max-pixels`` or ``DRIVEVISION_MAX_PIXELS``
raises or lowers it.
"""

from __future__ import annotations

import math
import os
import resource

from drivevision.labels import counted

DEFAULT_MAX_PIXELS = 50_000_000
MAX_PIXELS_ENV = "DRIVEVISION_MAX_PIXELS"
FPS_RANGE = (0.01, 1000.0)  # one image per 100 s .. a high-speed camera

# Peak bytes of CPU memory per pixel of the model's input (batch x padded height x width)
# during one inference, measured with ``ru_maxrss`` at 800x1344 (r50-fpn-v2: 545, tiny-fpn:
# 159), rounded up; r50-fpn (v1) is given v2's, the larger.
BYTES_PER_INPUT_PIXEL = {"tiny-fpn": 160, "r50-fpn": 600, "r50-fpn-v2": 600}


def max_pixels(value: int | str | None = None) -> int:
    """The pixel limit: ``value``, else ``$DRIVEVISION_MAX_PIXELS``, else 50 MP.

    Accepts ``50000000``, ``50M`` or ``50MP``; ValueError for anything else or <= 0.
    """
    text = value if value is not None else os.environ.get(MAX_PIXELS_ENV) or None
    if text is None:
        return DEFAULT_MAX_PIXELS
    raw = str(text).strip().upper().removesuffix("P")
    scale = 1_000_000 if raw.endswith("M") else 1
    try:
        limit = float(raw.removesuffix("M")) * scale
    except ValueError:
        limit = math.nan
    if not 1 <= limit < math.inf:
        source = "--max-pixels" if value is not None else MAX_PIXELS_ENV
        raise ValueError(f"Expected {source} to be a pixel count such as 50000000 or 50M, "
                         f"but got {text!r}")
    return int(limit)


def megapixels(pixels: float) -> str:
    return f"{pixels / 1e6:.3g} MP"


def pixel_problem(width: int, height: int, limit: int) -> str | None:
    """Why a ``width`` x ``height`` image is refused, or None when it is within ``limit``."""
    if width * height <= limit:
        return None
    return f"{width}x{height} is {over_limit(width * height, limit)}"


def over_limit(pixels: int, limit: int) -> str:
    return (f"{megapixels(pixels)}, over the {megapixels(limit)} limit (--max-pixels or "
            f"{MAX_PIXELS_ENV} raise it)")


def check_fps(fps: float, option: str = "--fps") -> None:
    """ValueError unless ``fps`` is a frame rate images can be spaced by, naming ``option``:
    the commands' ``--fps``, or the Python API's ``fps`` or ``raw_fps`` keyword."""
    low, high = FPS_RANGE
    if not low <= fps <= high:  # also NaN
        raise ValueError(f"Expected {option} between {low:g} and {high:g}, but got {fps:g}")


def available_memory() -> int | None:
    """Bytes this process may still allocate without swapping: the system's available
    memory, or what is left under an address-space limit if that is less; None if unknown."""
    free = None
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemAvailable:"):
                    free = int(line.split()[1]) * 1024
    except OSError:
        pass
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        left = soft - _address_space()
        free = left if free is None else min(free, left)
    return free


def _address_space() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def model_input_bound(min_size: int, max_size: int) -> tuple[int, int]:
    """The largest (height, width) the model's resize rule can give any frame, padded to 32:
    the short side is scaled to at most ``min_size`` and the long side to at most
    ``max_size``."""
    def pad(v: float) -> int:
        return int(math.ceil(v / 32) * 32)
    return pad(min(min_size, max_size)), pad(max_size)


def check_detector_call(batch: int, size: tuple[int, int], bytes_per_pixel: int,
                        what: str, available: int | None = None,
                        smaller: str = "lower --min-size/--max-size") -> None:
    """ValueError when ``batch`` frames of ``size`` (height, width) per detector call would
    need more memory than is available; the message says what would fit."""
    available = available_memory() if available is None else available
    if available is None:
        return
    h, w = size
    need = batch * h * w * bytes_per_pixel
    if need <= available:
        return
    fits = available // (h * w * bytes_per_pixel)
    advice = (f"--batch {fits} fits" if fits >= 1 else
              f"not even one frame fits: {smaller}")
    raise ValueError(f"{what}: {counted(batch, 'frame')} of up to {h}x{w} per detector call "
                     f"{'needs' if batch == 1 else 'need'} about {need / 2**30:.1f} GiB, but "
                     f"{available / 2**30:.1f} GiB is available; {advice}")
