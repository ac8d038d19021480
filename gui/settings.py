"""What the viewer remembers between runs (QSettings): recent sources, overlay, playback, window.

Tests pass their own ``QSettings`` (an INI file in a temporary folder) so nothing they do
reaches the user's settings.
"""

from __future__ import annotations

import os

from PyQt6.QtCore import QByteArray, QSettings

from drivevision.io.uri import parse_uri

MAX_RECENT = 10


class ViewerSettings:
    def __init__(self, qsettings: QSettings | None = None):
        self.q = qsettings if qsettings is not None else QSettings("DriveVision", "viewer")

    def recent(self) -> list[str]:
        value = self.q.value("recent", [])
        if isinstance(value, str):  # QSettings returns a one-item list as a plain string
            value = [value]
        return [str(v) for v in value or []][:MAX_RECENT]

    def add_recent(self, uri: str) -> list[str]:
        """Remember ``uri`` first; a relative path as an absolute one, so the menu opens it
        from any working directory."""
        uri = _absolute(uri)
        recent = [uri] + [r for r in self.recent() if r != uri]
        self.q.setValue("recent", recent[:MAX_RECENT])
        return recent[:MAX_RECENT]

    def get(self, key: str, default, kind: type):
        value = self.q.value(key, default)
        try:
            if kind is bool and isinstance(value, str):
                return value.lower() in ("true", "1")
            return kind(value)
        except (TypeError, ValueError):
            return default

    def set(self, key: str, value) -> None:
        self.q.setValue(key, value)

    def geometry(self) -> QByteArray | None:
        return self.state("window/geometry")

    def state(self, key: str) -> QByteArray | None:
        """A saved widget state (``saveGeometry``, ``saveState``), or None."""
        value = self.q.value(key)
        return value if isinstance(value, QByteArray) else None

    def sync(self) -> None:
        self.q.sync()


def _absolute(uri: str) -> str:
    try:
        parsed = parse_uri(uri)
    except ValueError:
        return uri
    if parsed.kind != "path" or parsed.uri != parsed.target:  # a URL, a camera, file://
        return uri
    return os.path.abspath(uri)
