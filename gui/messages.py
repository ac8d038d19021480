"""What the viewer's status bar says of the source it opens and plays, of the worker's
reports, and of failures (which also come in a dialog)."""

from __future__ import annotations

from PyQt6.QtWidgets import QMainWindow, QMessageBox

from drivevision.labels import counted
from gui.packets import MediaInfo


class Messages:
    """The status bar of ``window``, and the error dialog over it."""

    def __init__(self, window: QMainWindow):
        self.window = window
        self.bar = window.statusBar()
        self._dialog_open = False

    def tell(self, text: str, ms: int = 10000) -> None:
        """``text`` for ``ms`` milliseconds (0: until the next message)."""
        self.bar.showMessage(text, ms)

    def opening(self, uri: str) -> None:
        self.bar.showMessage(f"opening {uri} ...")

    def opened(self, info: MediaInfo) -> None:
        # a stream's own figure is often wrong (OpenCV says 25 fps for any MJPEG stream):
        # a live source's rate is the one measured, on the HUD
        frames = counted(info.frame_count, "frame") if info.frame_count else "? frames"
        kind = "live" if info.live else f"{frames}, {info.fps or 0:.1f} fps"
        self.bar.showMessage(f"opened {info.uri} ({kind})", 10000)

    def ended(self) -> None:
        self.bar.showMessage("end of input", 5000)

    def warn(self, text: str) -> None:
        """Something went wrong with the media while it played on (an image skipped, a video
        that stops decoding early): it stays until the next message, not for a moment."""
        self.bar.showMessage(text)

    def error(self, message: str) -> None:
        """Status bar and a dialog; while one dialog is open, later errors go to the bar."""
        self.bar.showMessage(f"error: {message}")
        if self._dialog_open:
            return
        self._dialog_open = True
        try:
            QMessageBox.critical(self.window, "DriveVision", message)
        finally:
            self._dialog_open = False
