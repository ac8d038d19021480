"""What the viewer's status bar says of the source it opens and plays, of the worker's
reports, and of failures (which also come in a dialog).

The bar holds one line: a long source name (a stream URL with its token) would push what
happened past its end, so the sources opened are named short there (``short_uri``); the
dialog and the window's title keep them whole. Everywhere a URL's password and tokens are
masked (``display_uri``): a camera's URL is opened with them, never shown with them.
"""

from __future__ import annotations

from PyQt6.QtWidgets import QMainWindow, QMessageBox

from drivevision.io.uri import display_uri
from drivevision.labels import counted
from gui.hud import elide
from gui.packets import MediaInfo

URI_CHARS = 72  # a longer source name is shortened in the status bar


class Messages:
    """The status bar of ``window``, and the error dialog over it."""

    def __init__(self, window: QMainWindow):
        self.window = window
        self.bar = window.statusBar()
        self._dialog_open = False
        self._uris: list[str] = []  # the sources opened last, named short in the bar

    def tell(self, text: str, ms: int = 10000) -> None:
        """``text`` for ``ms`` milliseconds (0: until the next message), the sources opened
        named short, their passwords masked."""
        self.bar.showMessage(self._named(text, short_uri), ms)

    def _named(self, text: str, shorten=lambda uri: uri) -> str:
        """``text`` with the sources opened named as shown (masked, then ``shorten``)."""
        # the longest first, so that a name inside another is not taken out of it
        for uri in sorted(self._uris, key=len, reverse=True):
            shown = display_uri(uri)
            text = text.replace(uri, shorten(shown)).replace(shown, shorten(shown))
        return text

    def opening(self, uri: str) -> None:
        self._uris = [*(u for u in self._uris[-7:] if u != uri), uri]
        self.tell(f"opening {uri} ...", 0)

    def opened(self, info: MediaInfo) -> None:
        # a stream's own figure is often wrong (OpenCV says 25 fps for any MJPEG stream):
        # a live source's rate is the one measured, on the HUD
        frames = counted(info.frame_count, "frame") if info.frame_count else "? frames"
        kind = "live" if info.live else f"{frames}, {info.fps or 0:.1f} fps"
        self.tell(f"opened {info.uri} ({kind})")

    def ended(self, info: MediaInfo | None) -> None:
        """The media ``info`` tells of played to its end."""
        self.tell(f"end of {info.uri if info is not None else 'input'}", 5000)

    def warn(self, text: str) -> None:
        """Something went wrong with the media while it played on (an image skipped, a video
        that stops decoding early): it stays until the next message, not for a moment."""
        self.tell(text, 0)

    def error(self, message: str) -> None:
        """Status bar and a dialog; while one dialog is open, later errors go to the bar."""
        self.tell(f"error: {message}", 0)
        if self._dialog_open:
            return
        self._dialog_open = True
        try:
            QMessageBox.critical(self.window, "DriveVision", self._named(message))
        finally:
            self._dialog_open = False


def short_uri(uri: str, chars: int = URI_CHARS) -> str:
    """``uri`` in at most ``chars`` characters: as it is when it fits; else without its query
    (a stream's token: ``?…``), and cut in its middle when still too long, keeping its start
    (scheme, host) and more of its end (the file or stream name)."""
    if len(uri) <= chars:
        return uri
    base, query, _ = uri.partition("?")
    return elide(f"{base}?\u2026" if query else base, chars)
