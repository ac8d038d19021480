"""``drivevision view [SOURCE]``: the desktop viewer (package ``gui``), in this process."""

from __future__ import annotations

import argparse
from importlib.metadata import entry_points

from drivevision.cli.help import add_command
from drivevision.cli.options import add_detector_args
from drivevision.cli.tracking import add_track_args


def add_parser(commands) -> None:
    """Register ``view`` on the ``drivevision`` sub-command parsers."""
    view = add_command(
        commands, "view", summary="watch a video, folder, camera or stream with the "
                                  "detections overlaid (the desktop viewer)",
        description="Open the desktop viewer (needs the [gui] extra: PyQt6): play a video, "
                    "an image folder, a camera or a stream with the boxes drawn live, "
                    "change the detector settings while it runs, and record what it shows.",
        examples="""
drivevision view                                    # open a file from the viewer
drivevision view assets/sample.mp4 --play --weights assets/tiny-fpn-synthetic.pt
drivevision view rtsp://camera.local:8554/front --classes person,car
drivevision view assets/sample.mp4 --track          # ids and trails; click a box""")
    view.add_argument("source", nargs="?", help="video, image, folder, camera index or URL")
    view.add_argument("--play", action="store_true", help="start playing files at once")
    add_detector_args(view, tracked=True)
    add_track_args(view)
    view.set_defaults(func=cmd_view)


def cmd_view(args: argparse.Namespace) -> int:
    """Run the viewer in this process, found by its ``drivevision-gui`` entry point: the
    library never imports ``gui``. Not ``python -m gui`` in a new process: that puts the
    working folder first on the import path, so run from the folder that holds the clone
    (itself named ``drivevision``) it would import the clone's folder as the package."""
    argv = [*([args.source] if args.source else []), *(["--play"] if args.play else []),
            *(["--agnostic-nms"] if args.agnostic_nms else [])]
    for name in ("model", "weights", "engine", "device", "precision", "conf", "classes",
                 "min_size", "max_size", "proposals", "iou", "max_det", "track", "track_thresh",
                 "track_buffer", "match_thresh"):
        if getattr(args, name) is not None:
            argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return viewer_main()(argv, prog="drivevision view")


def viewer_main():
    """The viewer's ``main(argv) -> exit code``; ImportError when it is not installed."""
    found = entry_points(group="console_scripts", name="drivevision-gui")
    if not found:
        raise ImportError("the viewer is not installed (expected the drivevision-gui entry "
                          "point): pip install -e \".[gui]\" in the clone")
    return next(iter(found)).load()
