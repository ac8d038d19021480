"""``drivevision-gui [SOURCE] [detector options]``: start the viewer.

The detector options are the ones ``drivevision detect`` takes, so a command line moves
between the two unchanged.
"""

from __future__ import annotations

import argparse
import signal
import sys
from contextlib import contextmanager

from drivevision.cli.exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_USAGE, quit_now
from drivevision.cli.options import (
    add_detector_args,
    check_detector_args,
    detector_config,
    quiet_opencv,
)
from drivevision.cli.tracking import add_track_args, track_stages
from drivevision.errors import DriveVisionError
from drivevision.pipeline import signals


def build_parser(prog: str = "drivevision-gui") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Play a video, a folder of images, a camera or a stream with the "
                    "detections overlaid.")
    parser.add_argument("source", nargs="?",
                        help="video file, image or folder, camera index (0), /dev/videoN, "
                             "or a stream URL (rtsp://, http://)")
    parser.add_argument("--play", action="store_true",
                        help="start playing files at once (live sources always do)")
    add_detector_args(parser)
    add_track_args(parser)
    return parser


def main(argv: list[str] | None = None, prog: str = "drivevision-gui") -> int:
    """Run the viewer; returns its exit code (130 after Ctrl-C or SIGTERM). ``prog`` names
    the command in its messages (``drivevision view`` when started by it).

    Until the window exists (imports of Qt and torch), a signal quits at once with one line,
    as the commands do; then it closes the window (``close_on_signals``).
    """
    previous = signals.install(quit_now)
    try:
        return _main(argv, prog)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _main(argv: list[str] | None, prog: str) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:  # before the window: once it is open a class the model lacks is only a dialog
        tracking = track_stages(args)
        check_detector_args(args)  # before the config: --model may give way to the checkpoint's
        config = detector_config(args)
    except (ValueError, DriveVisionError) as e:  # one line, as the commands say it
        print(f"{parser.prog}: error: {e}", file=sys.stderr)
        return EXIT_USAGE
    from gui import preflight

    cannot = preflight.problem()
    if cannot is not None:  # else Qt aborts the process with a message that names no package
        print(f"{parser.prog}: {cannot}", file=sys.stderr)
        return EXIT_FAILED
    quiet_opencv()  # a lost stream shows in the window, not as FFmpeg lines on stderr
    from PyQt6.QtWidgets import QApplication

    from gui.main_window import MainWindow

    app = QApplication.instance() or QApplication([sys.argv[0]])
    app.setOrganizationName("DriveVision")
    app.setApplicationName("viewer")
    window = MainWindow(config, tracking=tracking)
    with close_on_signals(window) as caught:  # from before it shows: a signal saves its layout
        window.show()
        if args.source:
            window.open_source(args.source, play=args.play)
        code = app.exec()
    return EXIT_INTERRUPTED if caught else code


@contextmanager
def close_on_signals(window, signums=(signal.SIGINT, signal.SIGTERM), poll_ms: int = 200):
    """Ctrl-C (SIGINT) and SIGTERM close ``window`` as its close button would, so the worker
    stops and a recording is finished (exit 130, as the commands); yields the list of signal
    numbers caught.

    Qt's event loop holds the main thread in C++, where Python cannot run a signal handler;
    a timer hands control back to Python every ``poll_ms`` ms so that it can. A close the
    window refuses (a detector call still running) is tried again on each tick. While a
    detector loads and nothing is recorded there is nothing to finish: the viewer saves the
    window's layout, as a close does, and quits at once with one line, as a command does at
    start-up. A signal that comes before the event loop runs is handled once it runs. The
    previous handlers come back on exit. Only from the main thread.
    """
    from PyQt6.QtCore import QTimer
    from PyQt6.QtWidgets import QApplication

    caught: list[int] = []

    def close_window() -> None:
        if caught and window.nothing_to_finish():  # a detector still loading: no reason to wait
            try:
                window.save_layout()  # but what the user arranged is kept, as on a close
            finally:
                quit_now(caught[0])
        if caught and window.isVisible():
            window.close()
        if caught and not window.isVisible():
            QApplication.quit()  # also ends a dialog's own event loop

    def handler(signum: int) -> None:
        caught.append(signum)
        QTimer.singleShot(0, close_window)  # from the event loop, not inside whatever ran

    previous = signals.install(handler, signums)  # the library's one signal mechanism
    timer = QTimer()
    timer.timeout.connect(close_window)
    timer.start(poll_ms)
    try:
        yield caught
    finally:
        timer.stop()
        for signum, old in previous.items():
            signal.signal(signum, old)
