"""The viewer's detector: a failure while playing, a slow one, the detector panel naming
the model, applying new settings (failed, before a load, while playing)."""

from __future__ import annotations

import threading
import time

import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from mjpeg_server import MjpegTestServer  # noqa: E402
from PyQt6.QtCore import QTimer  # noqa: E402
from PyQt6.QtWidgets import QMessageBox  # noqa: E402
from standins import FixedDetector  # noqa: E402
from viewer_steps import two_boxes, wait_for_frame  # noqa: E402

from drivevision.config import DetectorConfig  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_detector_failure_while_playing_shows_a_dialog(qtbot, make_window, errors, clip_path):
    detector = FixedDetector(detections=two_boxes(), fail_on_call=3)
    window = make_window(detector)
    window.transport.every_frame.setChecked(True)
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.play()
    qtbot.waitUntil(lambda: len(errors) > 0, timeout=10000)
    assert "infer stage failed" in errors[0] and "stand-in detector failed" in errors[0]
    qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
    window.seek(5)  # still usable: the next call works
    wait_for_frame(qtbot, window, 5)
    assert [t for t in threading.enumerate() if t.name.startswith("drivevision-")
            and t.name != "drivevision-viewer-worker"] == []


@pytest.mark.timeout(40)
def test_event_loop_stays_responsive_under_a_slow_detector(qtbot, make_window, clip_path):
    delay_s = 0.5
    detector = FixedDetector(delay_s, detections=two_boxes())
    window = make_window(detector)
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    gaps: list[float] = []
    last = [time.monotonic()]

    def ping() -> None:
        now = time.monotonic()
        gaps.append(now - last[0])
        last[0] = now

    timer = QTimer()
    timer.setInterval(10)
    timer.timeout.connect(ping)
    window.play()
    last[0] = time.monotonic()
    timer.start()
    qtbot.waitUntil(lambda: window.packet.frame.index >= 3, timeout=10000)
    t0 = time.monotonic()
    window.pause()
    pause_s = time.monotonic() - t0
    qtbot.wait(300)
    timer.stop()
    print(f"event loop: {len(gaps)} pings, worst gap {max(gaps) * 1000:.1f} ms; "
          f"pause {pause_s * 1000:.1f} ms")
    assert detector.calls >= 4
    # Waiting on a detector call would stall for about delay_s; a loaded machine delays a
    # 10 ms timer by far less than half of it.
    assert max(gaps) < delay_s / 2, f"the event loop stalled for {max(gaps):.2f} s"
    assert pause_s < delay_s / 2, f"pause blocked the GUI for {pause_s:.2f} s"
    qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)


@pytest.mark.timeout(120)
def test_the_detector_panel_names_the_model_the_checkpoint_holds(qtbot, settings, caplog,
                                                                 tiny_checkpoint):
    window = MainWindow(DetectorConfig(weights=tiny_checkpoint, device="cpu", min_size=96,
                                       max_size=160), settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: bool(window.names), timeout=60000)
    assert window.panel.detector.model.currentText() == "tiny-fpn"  # not the default r50
    caplog.clear()
    with qtbot.waitSignal(window.worker.detector_ready, timeout=60000):
        window.panel.detector.apply.click()  # nothing changed: nothing to warn about
    assert "wins over" not in caplog.text
    window.close()


def test_a_failed_apply_shows_the_detector_that_runs_on(qtbot, make_window, clip_path,
                                                         monkeypatch):
    window = make_window(FixedDetector(detections=two_boxes()))
    panel = window.panel.detector
    running = panel.values()
    assert running["weights"] is None and running["precision"] == "auto"
    dialogs = []  # the message, and the panel's choices as the dialog shows it
    monkeypatch.setattr(QMessageBox, "critical",
                        lambda parent, title, text: dialogs.append((text, panel.values())))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    panel.weights.setText("nope.pt")
    panel.precision.setCurrentText("bf16")
    panel.apply.click()
    qtbot.waitUntil(lambda: len(dialogs) == 1, timeout=20000)
    message, shown = dialogs[0]
    assert "nope.pt" in message
    assert shown == running == panel.values()  # what runs, not what failed to load
    assert window.config.weights is None and window.config.precision == "auto"
    window.step(1)  # the detector that was running still runs
    wait_for_frame(qtbot, window, 1)
    assert len(window.packet.detections) == 2

    panel.device.setCurrentText("gpu7")  # refused before anything loads
    panel.apply.click()
    assert "gpu7" in dialogs[1][0] and panel.values() == running


@pytest.mark.timeout(120)
def test_a_file_opened_before_any_detector_loaded_shows_its_frame_once_one_is(
        qtbot, settings, errors, clip_path, tiny_checkpoint, tmp_path):
    config = DetectorConfig(model="tiny-fpn", weights=str(tmp_path / "missing.pt"),
                            device="cpu", min_size=96, max_size=160)
    window = MainWindow(config, settings=settings)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=60000)  # no such checkpoint
    window.open_source(clip_path)
    qtbot.waitUntil(lambda: window.media is not None, timeout=10000)
    assert window.packet is None  # nothing to detect with yet
    window.panel.detector.weights.setText(tiny_checkpoint)
    window.panel.detector.apply.click()
    wait_for_frame(qtbot, window, 0, timeout=30000)
    assert not window.view.image().isNull() and "missing.pt" in errors[0]
    window.close()


@pytest.mark.timeout(120)
@pytest.mark.parametrize("source", ["file", "stream"])
def test_apply_while_playing_plays_on_with_the_new_detector(qtbot, make_window, clip_path,
                                                             tiny_checkpoint, source):
    window = make_window(FixedDetector(0.02, detections=two_boxes()), min_size=96,
                         max_size=160)
    window.transport.speed.setCurrentIndex(0)  # 0.25x: the clip plays for 4.8 s
    with MjpegTestServer(fps=30) as server:
        window.open_source(clip_path if source == "file" else server.url)
        qtbot.waitUntil(lambda: window.packet is not None, timeout=20000)
        if source == "file":  # a stream plays once open
            window.play()
        qtbot.waitUntil(lambda: window.is_playing and window.packet.frame.index >= 1,
                        timeout=10000)
        window.panel.detector.weights.setText(tiny_checkpoint)
        with qtbot.waitSignal(window.worker.detector_ready, timeout=60000):
            window.panel.detector.apply.click()
        loaded = window.packet.frame.index
        if source == "file":  # on to the clip's end
            qtbot.waitUntil(lambda: window.packet.frame.index == 11, timeout=20000)
        else:  # newer frames of the stream come
            qtbot.waitUntil(lambda: window.packet.frame.index > loaded + 3, timeout=20000)
    window.pause()
