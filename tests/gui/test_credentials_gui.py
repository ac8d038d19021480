"""The viewer on a camera URL that holds its password: the title, the status bar, the error
dialog and the recent sources name it masked (``http://admin:***@...?token=***``); the
recent source still opens the URL as given."""

from __future__ import annotations

import socket

import pytest
from mjpeg_server import MjpegTestServer
from standins import FixedDetector

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from viewer_steps import stream_seq, two_boxes  # noqa: E402

pytestmark = pytest.mark.timeout(90)

SECRETS = ("s3cret", "t0ken")


def credentialed(url: str) -> tuple[str, str]:
    """``url`` with a password and a token, and the same as shown."""
    return (url.replace("http://", "http://admin:s3cret@") + "?token=t0ken",
            url.replace("http://", "http://admin:***@") + "?token=***")


def test_a_credentialed_stream_is_shown_masked_and_reopens_from_recent_sources(
        qtbot, make_window, clip_path):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    said: list[str] = []
    window.statusBar().messageChanged.connect(said.append)
    with MjpegTestServer(fps=30) as server:
        url, shown = credentialed(server.url)
        window.open_source(url)  # live: plays at once
        qtbot.waitUntil(lambda: window.packet is not None and window.is_playing, timeout=20000)
        assert window.windowTitle() == f"DriveVision - {shown}"
        assert f"opened {shown} (live)" in said
        assert [a.text() for a in window.recent_menu.actions()] == [shown]
        assert window.settings.recent() == [url]  # kept whole, to open again
        window.open_source(clip_path)
        qtbot.waitUntil(lambda: window.windowTitle() == f"DriveVision - {clip_path}",
                        timeout=20000)
        window.recent_menu.actions()[1].trigger()  # the stream, below the clip
        qtbot.waitUntil(lambda: window.windowTitle() == f"DriveVision - {shown}",
                        timeout=20000)
        seen = stream_seq(window) if window.packet is not None else 0
        qtbot.waitUntil(lambda: window.packet is not None and window.media.live
                        and stream_seq(window) > seen, timeout=20000)  # the stream again
    qtbot.waitUntil(lambda: any("reconnecting" in m for m in said), timeout=20000)
    window.pause()
    qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
    assert f"{shown}: LOST" in "\n".join(said)
    assert [a.text() for a in window.recent_menu.actions()] == [shown, clip_path]
    assert not [m for m in said if any(s in m for s in SECRETS)], said


def test_a_credentialed_stream_that_cannot_be_opened_is_named_masked(
        qtbot, make_window, errors):
    window = make_window(FixedDetector(detections=two_boxes()))
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url, shown = credentialed(f"http://127.0.0.1:{closed.getsockname()[1]}/stream")
        window.open_source(url)
        qtbot.waitUntil(lambda: len(errors) == 1, timeout=20000)
    assert errors[0].startswith(f"Cannot open {shown}: no stream there")
    assert window.statusBar().currentMessage() == f"error: {errors[0]}"
    assert window.windowTitle() == "DriveVision"
