"""Tracking options shared by ``detect`` and ``live``: ``--track`` and its settings."""

from __future__ import annotations

import argparse

from drivevision.cli.options import TRACK_CONF

TRACKERS = ("botsort", "bytetrack")  # drivevision.tracking.TRACKERS, without importing it
# The tracker settings' defaults: the options default to None, so a value given can be told
# from one left out.
TRACK_DEFAULTS = {"track_thresh": 0.5, "track_buffer": 30, "match_thresh": 0.8}


def tracker_name(value: str) -> str:
    """``--track``'s NAME. Its NAME is optional, so ``--track clip.mp4`` takes the input for
    it: the error says so, rather than only that clip.mp4 is no tracker."""
    if value in TRACKERS:
        return value
    hint = ""
    if "." in value or "/" in value or "\\" in value:
        hint = (f"; {value} looks like an input: put it before --track, or name the tracker "
                f"(--track botsort {value})")
    raise argparse.ArgumentTypeError(f"expected a tracker, {' or '.join(TRACKERS)}, but got "
                                     f"{value!r}{hint}")


def add_track_args(parser: argparse.ArgumentParser):
    """``--track`` and the tracker's settings, in a "tracking" group (returned, for a command
    to add its own)."""
    g = parser.add_argument_group("tracking")
    g.add_argument("--track", nargs="?", const="botsort", type=tracker_name, metavar="NAME",
                   help="give each object an id that follows it: botsort (the default when "
                        "NAME is left out: ByteTrack with camera-motion compensation) or "
                        "bytetrack; one tracker per source")
    g.add_argument("--track-thresh", type=float, metavar="SCORE",
                   help="detections scoring at least this start tracks and are matched first; "
                        "lower ones (down to 0.1, see --conf) only extend tracks (default 0.5)")
    g.add_argument("--track-buffer", type=int, metavar="FRAMES",
                   help="frames a lost track is kept, to be found again with its id (default 30)")
    g.add_argument("--match-thresh", type=float, metavar="DIST",
                   help="largest 1 - IoU at which a detection matches a track (default 0.8)")
    return g


def track_options(args: argparse.Namespace) -> dict:
    """``track_thresh``, ``track_buffer`` and ``match_thresh`` as given, else their defaults."""
    return {name: default if getattr(args, name) is None else getattr(args, name)
            for name, default in TRACK_DEFAULTS.items()}


def check_track_args(args: argparse.Namespace) -> None:
    """Refuse, before any work, tracker settings out of range, naming the options as typed
    (the tracker's own checks name its parameters), and settings given without ``--track``:
    nothing would use them."""
    given = [f"--{name.replace('_', '-')}" for name in TRACK_DEFAULTS
             if getattr(args, name) is not None]
    if given and args.track is None:
        raise ValueError(f"Expected --track with {' and '.join(given)}: "
                         f"{'it sets' if len(given) == 1 else 'they set'} the tracker, which "
                         "runs only with --track")
    options = track_options(args)
    if not 0 <= options["track_thresh"] <= 1:  # also NaN
        raise ValueError(f"Expected --track-thresh in [0, 1], but got {options['track_thresh']:g}")
    if not 0 < options["match_thresh"] <= 1:
        raise ValueError(f"Expected --match-thresh in (0, 1] (a 1 - IoU distance), but got "
                         f"{options['match_thresh']:g}")
    if options["track_buffer"] < 0:
        raise ValueError(f"Expected --track-buffer >= 0 frames, but got "
                         f"{options['track_buffer']}")
    _check_stride(args, options["track_buffer"])


def _check_stride(args: argparse.Namespace, buffer: int) -> None:
    """Refuse a ``--frame-stride K`` the buffer cannot bridge: a track unseen for more than
    ``--track-buffer`` frames ends, so with more than that between two detected frames
    (K - 1) every track would end before the next one, and (new tracks show from their second
    detection) no box after the first frame would reach any output."""
    stride = getattr(args, "frame_stride", None) or 1
    if args.track is None or stride - 1 <= buffer:
        return
    given = "" if args.track_buffer is not None else " (the default)"
    raise ValueError(f"Expected --track-buffer >= {stride - 1} frames with --frame-stride "
                     f"{stride}, but got {buffer}{given}: a track ends after --track-buffer "
                     f"frames unseen, and {stride - 1} go by between two detected frames, so "
                     "no track would reach the next one")


def track_stages(args: argparse.Namespace):
    """What ``Pipeline(stages=...)`` takes: a new tracker per source, or none."""
    check_track_args(args)
    if args.track is None:
        return ()
    from drivevision.pipeline.track_stage import stages_naming

    options = track_options(args)
    return stages_naming("--track-buffer", args.track,
                         {**options, "low_thresh": min(TRACK_CONF, options["track_thresh"])})
