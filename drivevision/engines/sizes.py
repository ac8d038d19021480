"""The padded input sizes engines are built and timed for: ``HxW`` text read, multiples of
32 checked. No torch here, so a command checks a size before anything heavy loads."""

from __future__ import annotations

PAD = 32  # the detector pads frames to multiples of this


def check_padded_size(size: tuple[int, int], what: str = "an input size") -> None:
    """ValueError unless (H, W) are multiples of ``PAD``, the size the detector pads frames
    to; the message names ``what`` was given and the nearest such sizes below and above."""
    h, w = size
    if h % PAD or w % PAD:
        up = f"{-(-h // PAD) * PAD}x{-(-w // PAD) * PAD}"
        down = f"{max(h // PAD, 1) * PAD}x{max(w // PAD, 1) * PAD}"
        nearest = up if down == up else f"{down} or {up}"
        raise ValueError(f"Expected {what} in multiples of {PAD} (the detector pads frames "
                         f"to them), but got {h}x{w}; the nearest: {nearest}")


def parse_size(text: str) -> tuple[int, int]:
    """'384x640' -> (384, 640), height first."""
    try:
        h, w = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ValueError(f"Expected an input size HxW such as 800x1344, but got {text!r}") from None
    if h < PAD or w < PAD:
        raise ValueError(f"Expected an input size of at least {PAD}x{PAD}, but got {text!r}")
    return h, w
