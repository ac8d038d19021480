"""Live streams in the viewer: playing again after a pause, a lost stream told until it
comes back, and what fails while it is lost leaves it reconnecting."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from mjpeg_server import MjpegTestServer  # noqa: E402
from standins import FixedDetector  # noqa: E402
from viewer_steps import stream_seq, two_boxes  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_live_stream_plays_again_after_pause_and_speed_change(qtbot, make_window):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    with MjpegTestServer(fps=30) as server:
        window.open_source(server.url)  # live: plays at once
        qtbot.waitUntil(lambda: window.packet is not None and window.is_playing, timeout=10000)
        window.pause()
        qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
        qtbot.wait(100)
        paused_at = stream_seq(window)
        window.play()
        qtbot.waitUntil(lambda: stream_seq(window) > paused_at + 3, timeout=10000)
        window.transport.speed.setCurrentIndex(3)  # restarts the pipeline while playing
        changed_at = stream_seq(window)
        qtbot.waitUntil(lambda: stream_seq(window) > changed_at + 3, timeout=10000)
        assert window.is_playing
        window.pause()
        qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)


def lose_a_stream(qtbot, window) -> tuple[str, int]:
    """Open an MJPEG stream in ``window``, play it, then stop its server: once the viewer says
    LOST, the stream's URL and port (a server started on that port again brings it back)."""
    with MjpegTestServer(fps=30) as server:
        port = server.server_address[1]
        window.open_source(server.url)  # live: plays at once
        qtbot.waitUntil(lambda: window.packet is not None, timeout=20000)
    qtbot.waitUntil(lambda: window.view._hud[0].startswith("LOST"), timeout=20000)
    return server.url, port


@pytest.mark.timeout(90)
def test_a_lost_stream_says_so_until_it_comes_back(qtbot, make_window):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    _, port = lose_a_stream(qtbot, window)
    assert window.view._hud[0].endswith("s, reconnecting")
    assert "reconnecting" in window.statusBar().currentMessage()
    stats = window.panel.stats.text().splitlines()  # the panel says so too, without old rates
    assert stats[0].startswith("LOST") and stats[1] == "input - fps, detector - fps", stats
    seen = stream_seq(window)
    with MjpegTestServer(port, fps=30):  # back on the same address: the viewer reconnects
        qtbot.waitUntil(lambda: stream_seq(window) > seen, timeout=30000)
        qtbot.waitUntil(lambda: window.view._hud[0].startswith("frame"), timeout=5000)
        qtbot.waitUntil(lambda: "reconnected" in window.statusBar().currentMessage(),
                        timeout=5000)
    window.pause()


@pytest.mark.timeout(90)
def test_a_lost_stream_stopped_says_so_not_that_it_reconnected(qtbot, make_window):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    url, _ = lose_a_stream(qtbot, window)
    window.pause()  # Space while it reconnects
    qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
    qtbot.wait(1200)  # the stream's state is asked every half second
    assert window.statusBar().currentMessage() == \
        f"{url}: stopped while lost (Play tries to connect again)"
    assert not [m for m in messages if "reconnected" in m]
    assert window.view._hud[0].startswith("frame")
    assert not window.panel.stats.text().startswith("LOST")


def closed_port_url() -> str:
    """A stream URL on 127.0.0.1 where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/stream"


def open_a_missing_file(window, tmp_path) -> str:
    """Open a file that is not there; returns how its error starts."""
    uri = str(tmp_path / "missing.mp4")
    window.open_source(uri)
    return f"No such file or directory: {uri}"


def open_a_closed_port(window, tmp_path) -> str:
    """Open a stream where nothing listens; returns how its error starts."""
    uri = closed_port_url()
    window.open_source(uri)
    return f"Cannot open {uri}"


def apply_missing_weights(window, tmp_path) -> str:
    """Apply a detector whose checkpoint is not there; returns how its error starts."""
    window.panel.detector.weights.setText("nope.pt")
    window.panel.detector.apply.click()
    return "No such checkpoint: nope.pt"


@pytest.mark.timeout(90)
@pytest.mark.parametrize("fail", [open_a_missing_file, open_a_closed_port,
                                  apply_missing_weights])
def test_a_failure_while_a_stream_is_lost_leaves_it_reconnecting(qtbot, make_window, errors,
                                                                 tmp_path, fail):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    url, port = lose_a_stream(qtbot, window)
    expected = fail(window, tmp_path)
    qtbot.waitUntil(lambda: bool(errors), timeout=20000)
    message = window.statusBar().currentMessage()  # the failure's error, not the stream's
    assert message.startswith("error: ") and f":{port}/" not in message, message
    assert errors[0].startswith(expected), errors
    qtbot.wait(2500)  # no second error naming the stream: it carries on reconnecting
    assert len(errors) == 1, errors
    assert window.is_playing and window.view._hud[0].startswith("LOST")
    assert window.windowTitle() == f"DriveVision - {url}"
    seen = stream_seq(window)
    with MjpegTestServer(port, fps=30):  # back on the same address: the viewer reconnects
        qtbot.waitUntil(lambda: stream_seq(window) > seen, timeout=30000)
        assert len(window.packet.detections) == 2  # with the detector that ran before
        qtbot.waitUntil(lambda: "reconnected" in window.statusBar().currentMessage(),
                        timeout=5000)
    window.pause()
    assert len(errors) == 1, errors


def undecodable_video(clip_path, tmp_path):
    """``clip_path`` with its frames' data zeroed: it opens (its header is whole), but no
    frame decodes."""
    data = bytearray(Path(clip_path).read_bytes())
    moov, mdat = data.find(b"moov"), data.find(b"mdat")
    assert 0 <= moov < mdat, "expected the header before the frames"
    data[mdat + 4:] = bytes(len(data) - mdat - 4)
    bad = tmp_path / "zeroed.mp4"
    bad.write_bytes(bytes(data))
    return bad


def test_a_video_that_opens_but_shows_no_frame_leaves_the_stream_playing(
        qtbot, make_window, errors, clip_path, tmp_path):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    bad = undecodable_video(clip_path, tmp_path)
    with MjpegTestServer(fps=30) as server:
        window.open_source(server.url)  # live: plays at once
        qtbot.waitUntil(lambda: window.packet is not None and window.is_playing, timeout=10000)
        window.open_source(str(bad))
        qtbot.waitUntil(lambda: bool(errors), timeout=10000)
        assert window.windowTitle() == f"DriveVision - {server.url}"
        failed_at = stream_seq(window)
        qtbot.waitUntil(lambda: stream_seq(window) > failed_at + 5, timeout=10000)
        assert window.is_playing
        window.pause()
        qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
    assert errors == [f"{bad}: no frame could be decoded (damaged or empty video)"]


@pytest.mark.timeout(90)
def test_play_on_a_stopped_stream_that_is_gone_names_it_each_time(qtbot, make_window, errors):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    with MjpegTestServer(fps=30) as server:
        window.open_source(server.url)  # live: plays at once
        qtbot.waitUntil(lambda: window.packet is not None and window.is_playing, timeout=20000)
        window.pause()
        qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
    window.play()  # Space, and Space again: the stream is tried each time
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=20000)
    window.play()
    qtbot.waitUntil(lambda: len(errors) == 2, timeout=20000)
    assert [e.partition(": no stream there")[0] for e in errors] == \
        [f"Cannot open {server.url}"] * 2
    assert window.windowTitle() == f"DriveVision - {server.url}"
