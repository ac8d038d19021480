"""``drivevision-gui [SOURCE] [detector options]``: start the viewer.

The detector options are the ones ``drivevision detect`` takes, so a command line moves
between the two unchanged.
"""

from __future__ import annotations

import argparse
import sys

from drivevision.cli import add_detector_args, detector_config


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drivevision-gui",
        description="Play a video, a folder of images, a camera or a stream with the "
                    "detections overlaid.")
    parser.add_argument("source", nargs="?",
                        help="video file, image or folder, camera index (0), /dev/videoN, "
                             "or a stream URL (rtsp://, http://)")
    parser.add_argument("--play", action="store_true",
                        help="start playing files at once (live sources always do)")
    add_detector_args(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = detector_config(args)
    except ValueError as e:
        parser.error(str(e))
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("DriveVision")
    app.setApplicationName("viewer")
    window = MainWindow(config)
    window.show()
    if args.source:
        window.open_source(args.source, play=args.play)
    return app.exec()
