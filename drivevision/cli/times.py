"""Time options: durations (``--duration 90s``, ``--stall-timeout 40ms``) and points in an
input (``--start 1:30``), one rule for each, so no option counts in milliseconds by
surprise."""

from __future__ import annotations

import argparse

from drivevision.io.uri import display_uri
from drivevision.labels import clock

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0}


def seconds(text: str) -> float:
    """A duration option in seconds: ``5`` or ``5s``, ``40ms``, ``2m``/``2min``, ``1h``.

    The one rule for every time option, so no option counts in milliseconds by surprise.
    """
    value = text.strip().lower()
    unit = next((u for u in sorted(_UNITS, key=len, reverse=True)
                 if value.endswith(u) and value[:-len(u)].strip()), "")
    number = value[:-len(unit)] if unit else value
    try:
        result = float(number) * _UNITS.get(unit, 1.0)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a duration such as 5, 5s, 40ms or 2m, but got {text!r}") from None
    if not result >= 0 or result == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a duration >= 0, but got {text!r}")
    return result


def time_point(text: str) -> float:
    """A time in the input, in seconds: a duration as ``seconds`` takes it (``90``,
    ``90.5``, ``2m``) or a clock time as ffmpeg's ``-ss`` takes it (``1:30``, ``01:02:03.5``)."""
    if ":" not in text:
        try:
            return seconds(text)
        except argparse.ArgumentTypeError:
            raise argparse.ArgumentTypeError(
                f"expected a time such as 90, 90.5, 2m, 1:30 or 01:02:03.5 (>= 0), but got "
                f"{text!r}") from None
    *upper, last = text.strip().split(":")
    try:
        parts = [int(p) for p in upper] + [float(last)]
    except ValueError:
        parts = []
    if not 2 <= len(parts) <= 3 or any(not 0 <= p < 60 for p in parts[1:]) or parts[0] < 0 \
            or any(p.strip() != p or not p for p in [*upper, last]):
        raise argparse.ArgumentTypeError(
            f"expected a clock time as [H:]MM:SS[.s] (minutes and seconds below 60), such "
            f"as 1:30 or 01:02:03.5, but got {text!r}")
    return sum(p * 60 ** i for i, p in enumerate(reversed(parts)))


def add_range_args(group) -> None:
    """``--start`` and ``--end``, a time range of a video file or a folder of images (read
    with ``time_range``)."""
    group.add_argument("--start", metavar="TIME",
                       help="detect from this time in the video (or folder: image i is at "
                            "i/fps s): 90, 90.5, 2m, 1:30 or 01:02:03.5; a video seeks to the "
                            "keyframe before it; the outputs keep each frame's index and time "
                            "in the input")
    group.add_argument("--end", metavar="TIME",
                       help="stop before this time (exclusive; as --start takes it); the rest "
                            "is not read")


def time_range(args: argparse.Namespace) -> None:
    """``args.start`` and ``args.end`` turned into seconds (None where not given); ValueError,
    naming the option, for a time ``time_point`` does not take or an end not after the
    start."""
    args.start, args.end = _time_arg("--start", args.start), _time_arg("--end", args.end)
    if args.start is not None and args.end is not None and args.end <= args.start:
        raise ValueError(f"Expected --end after --start, but got --start {clock(args.start)} "
                         f"and --end {clock(args.end)}")


def refuse_range(args: argparse.Namespace, uri: str) -> None:
    """ValueError for ``--start``/``--end`` given with ``uri``, a live source (a camera or
    a stream), which has no times to seek to."""
    if args.start is not None or args.end is not None:
        raise ValueError(f"--start/--end take a video file or a folder of images, but "
                         f"{display_uri(uri)} is a live source, which has no times to seek "
                         "to")


def _time_arg(option: str, text: str | None) -> float | None:
    """``--start``/``--end`` in seconds (``time_point``), refused in one line."""
    try:
        return None if text is None else time_point(text)
    except argparse.ArgumentTypeError as e:
        raise ValueError(f"{option}: {e}") from None
