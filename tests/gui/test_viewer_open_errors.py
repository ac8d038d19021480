"""Opening what cannot be opened in the viewer: a dialog naming it, and the clip or stream
that was open stays."""

from __future__ import annotations

import socket

import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from mjpeg_server import MjpegTestServer  # noqa: E402
from standins import FixedDetector  # noqa: E402
from viewer_steps import stream_seq, two_boxes, wait_for_frame  # noqa: E402

from drivevision.detector import Detector  # noqa: E402
from gui.messages import short_uri  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_bad_file_shows_a_dialog_and_the_window_stays_usable(qtbot, make_window, errors,
                                                             biased_loaded, clip_path, tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("this is not a video\n")
    window = make_window(Detector(biased_loaded, device="cpu", conf=0.05, classes="all"))
    window.open_source(str(bad))
    qtbot.waitUntil(lambda: len(errors) > 0, timeout=10000)
    assert "notes.mp4" in errors[0]
    assert "error:" in window.statusBar().currentMessage()
    window.open_source(str(tmp_path / "missing.mp4"))
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=10000)
    assert "No such file" in errors[1]
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.step(1)
    wait_for_frame(qtbot, window, 1)


def test_a_failed_open_keeps_the_clip_that_was_open(qtbot, make_window, errors, clip_path,
                                                    tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.open_source(str(tmp_path / "missing.mp4"))
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=10000)
    assert window.windowTitle() == f"DriveVision - {clip_path}"
    window.transport.speed.setCurrentIndex(4)
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        window.toggle_play()  # Space: the clip still on screen plays
    wait_for_frame(qtbot, window, 11)
    assert len(errors) == 1, errors


def test_a_failed_open_while_a_stream_plays_leaves_it_playing(qtbot, make_window, errors,
                                                              tmp_path):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    missing = tmp_path / "missing.mp4"
    with MjpegTestServer(fps=30) as server:
        window.open_source(server.url)  # live: plays at once
        qtbot.waitUntil(lambda: window.packet is not None and window.is_playing, timeout=10000)
        window.open_source(str(missing))
        qtbot.waitUntil(lambda: len(errors) == 1, timeout=10000)
        failed_at = stream_seq(window)
        qtbot.waitUntil(lambda: stream_seq(window) > failed_at + 5, timeout=10000)
        assert window.is_playing and window.windowTitle() == f"DriveVision - {server.url}"
        assert window.statusBar().currentMessage() == \
            f"error: No such file or directory: {short_uri(str(missing))}"
        window.pause()
        qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
    assert errors == [f"No such file or directory: {missing}"]


def test_a_long_stream_url_that_cannot_be_opened_is_named_short_beside_why(qtbot, make_window,
                                                                          errors):
    window = make_window(FixedDetector(detections=two_boxes()))
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        stream = f"http://127.0.0.1:{closed.getsockname()[1]}/live/front-camera/index.m3u8"
        # a long query, as CDNs sign (its signature, a secret, is shown masked)
        window.open_source(f"{stream}?expires={'1' * 200}&sig=abc")
        qtbot.waitUntil(lambda: len(errors) == 1, timeout=20000)
    why = errors[0].partition("&sig=***")[2]
    assert errors[0] == f"Cannot open {stream}?expires={'1' * 200}&sig=***{why}"  # whole
    assert why.startswith(": no stream there")
    message = window.statusBar().currentMessage()
    assert message == f"error: Cannot open {stream}?\u2026{why}"
    bar = window.statusBar()
    assert bar.fontMetrics().horizontalAdvance(message) < bar.width()  # why: in the bar
