"""``drivevision view`` and ``drivevision-gui``: the same detector options as detect, and
--play starting a live stream once."""

from __future__ import annotations

import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from mjpeg_server import MjpegTestServer  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402
from viewer_steps import stream_seq  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_drivevision_view_starts_the_viewer_with_the_same_options(monkeypatch, clip_path):
    from drivevision import cli
    from drivevision.cli.options import detector_config
    from gui import app
    from gui.app import build_parser

    calls = []
    monkeypatch.setattr(app, "main", lambda argv, prog: calls.append(argv) or 0)
    options = ["--model", "tiny-fpn", "--device", "cpu", "--conf", "0.3", "--classes", "car",
               "--agnostic-nms", "--iou", "0.6", "--max-det", "20"]
    assert cli.main(["view", clip_path, *options]) == 0
    [argv] = calls  # in this process
    assert argv[0] == clip_path
    viewer = detector_config(build_parser().parse_args(argv))
    detect = detector_config(cli.build_parser().parse_args(["detect", clip_path, *options]))
    assert viewer == detect


@pytest.mark.timeout(90)
def test_gui_command_with_play_starts_a_live_stream_once(qtbot, monkeypatch, settings,
                                                         tiny_checkpoint):
    from gui import app, main_window
    from gui.worker import Worker

    sent, windows = [], []
    send = Worker.send
    monkeypatch.setattr(Worker, "send", lambda self, name, *a: (sent.append(name),
                                                                 send(self, name, *a)))

    class Window(main_window.MainWindow):  # the test's settings, never the user's
        def __init__(self, config, **options):
            super().__init__(config, settings=settings, **options)
            windows.append(self)

    def run_until_frames(_app) -> int:
        [window] = windows
        qtbot.waitUntil(lambda: window.packet is not None, timeout=60000)
        first = stream_seq(window)
        qtbot.waitUntil(lambda: stream_seq(window) > first + 1, timeout=20000)
        window.close()
        return 0

    monkeypatch.setattr(main_window, "MainWindow", Window)
    monkeypatch.setattr(QApplication, "exec", run_until_frames)
    with MjpegTestServer(fps=30) as server:
        assert app.main([server.url, "--play", "--model", "tiny-fpn", "--weights",
                         tiny_checkpoint, "--device", "cpu", "--min-size", "96",
                         "--max-size", "160", "--proposals", "50"]) == 0
    assert sent.count("play") == 1
    assert not windows[0].worker.is_running()
