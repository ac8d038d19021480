"""Tracking options shared by ``detect`` and ``live``: ``--track`` and its settings."""

from __future__ import annotations

import argparse

from drivevision.cli.options import TRACK_CONF

TRACKERS = ("botsort", "bytetrack")  # drivevision.tracking.TRACKERS, without importing it


def add_track_args(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("tracking")
    g.add_argument("--track", nargs="?", const="botsort", choices=TRACKERS, metavar="NAME",
                   help="give each object an id that follows it: botsort (the default when "
                        "NAME is left out: ByteTrack with camera-motion compensation) or "
                        "bytetrack; one tracker per source")
    g.add_argument("--track-thresh", type=float, default=0.5, metavar="SCORE",
                   help="detections scoring at least this start tracks and are matched first; "
                        "lower ones (down to 0.1, see --conf) only extend tracks (default 0.5)")
    g.add_argument("--track-buffer", type=int, default=30, metavar="FRAMES",
                   help="frames a lost track is kept, to be found again with its id (default 30)")
    g.add_argument("--match-thresh", type=float, default=0.8, metavar="DIST",
                   help="largest 1 - IoU at which a detection matches a track (default 0.8)")


def track_stages(args: argparse.Namespace):
    """What ``Pipeline(stages=...)`` takes: a new tracker per source, or none."""
    if args.track is None:
        return ()
    from drivevision.pipeline.track_stage import track_stages as stages

    return stages(args.track, track_thresh=args.track_thresh, track_buffer=args.track_buffer,
                  match_thresh=args.match_thresh,
                  low_thresh=min(TRACK_CONF, args.track_thresh))
