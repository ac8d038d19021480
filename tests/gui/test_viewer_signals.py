"""Signals and Ctrl-C in the viewer: the window closes and the recording is finished, also
while the detector loads or the viewer starts, in one line."""

from __future__ import annotations

import os
import time

import av
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import QSettings  # noqa: E402

from drivevision.labels import COCO_NAMES  # noqa: E402

pytestmark = pytest.mark.timeout(60)


VIEWER = """
import sys
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
from gui.app import main
from gui.main_window import MainWindow

app = QApplication([sys.argv[0]])
record = sys.argv[1]

def ready():
    [window] = [w for w in app.topLevelWidgets() if isinstance(w, MainWindow)]
    if record != "-":
        window.start_recording(record, None)
    print("ready", flush=True)

QTimer.singleShot(0, ready)
sys.exit(main(sys.argv[2:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(90)
@pytest.mark.parametrize("signum, record", [("SIGINT", False), ("SIGTERM", True)])
def test_signals_close_the_viewer_and_finish_the_recording(tmp_path, tiny_checkpoint, signum,
                                                           record):
    import signal
    import subprocess
    import sys

    from drivevision.synthetic import write_clip

    clip = tmp_path / "long.mp4"
    write_clip(clip, 80, width=160, height=96, fps=10.0)  # 8 s: still playing at the signal
    video = tmp_path / "rec.mp4"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}  # never the user's viewer settings
    viewer = subprocess.Popen(
        [sys.executable, "-c", VIEWER, str(video) if record else "-", str(clip), "--play",
         "--model", "tiny-fpn", "--weights", tiny_checkpoint, "--device", "cpu",
         "--min-size", "96", "--max-size", "160"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        assert viewer.stdout.readline().strip() == "ready", viewer.stderr.read()
        time.sleep(2.0)  # the event loop runs, the clip plays (and is recorded)
        deadline = time.monotonic() + 30  # a loaded machine: wait for the first recorded frame
        while record and time.monotonic() < deadline and not any(
                p.stat().st_size > 0 for p in tmp_path.glob(".rec.part*.mp4")):
            time.sleep(0.1)
        sent = time.monotonic()
        viewer.send_signal(getattr(signal, signum))
        code = viewer.wait(timeout=15)
        took = time.monotonic() - sent
    finally:
        viewer.kill()
        viewer.wait()
    assert code == 130 and took < 5.0  # 130 for both, as the commands
    if record:
        assert not list(tmp_path.glob(".*.part*")) and video.exists()
        # an MP4 left unfinished has no index and does not open; how many frames were played
        # in 2 s depends on the machine's load
        with av.open(str(video)) as container:
            assert sum(1 for _ in container.decode(video=0)) >= 1


def interrupt_when(viewer, line: str, signum) -> None:
    """Once the viewer process prints ``line``, send it ``signum``; it must quit within 10 s
    with exit 130 and "drivevision: interrupted" as its last line."""
    try:
        if viewer.stdout.readline().strip() != line:
            viewer.kill()
            pytest.fail(viewer.communicate()[1])
        viewer.send_signal(signum)
        _, err = viewer.communicate(timeout=10)
    finally:
        viewer.kill()
        viewer.wait()
    assert viewer.returncode == 130, err
    assert err.strip().splitlines()[-1] == "drivevision: interrupted"


LOADING_VIEWER = """
import sys, time
from drivevision.detector import Detector
from gui.app import main


def load_that_lasts(*args, **kwargs):
    print("loading", flush=True)
    time.sleep(60)


Detector.from_config = staticmethod(load_that_lasts)
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_signal_while_the_detector_loads_quits_at_once_with_one_line(tmp_path, clip_path):
    """Nothing is lost while a detector loads (importing torch, reading weights): a signal
    quits at once with one line instead of waiting for the load to end."""
    import signal
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    viewer = subprocess.Popen([sys.executable, "-c", LOADING_VIEWER, clip_path, "--play",
                               "--model", "tiny-fpn", "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    interrupt_when(viewer, "loading", signal.SIGINT)


ARRANGED_WHILE_LOADING = """
import sys, time
from PyQt6.QtCore import QTimer
from PyQt6.QtWidgets import QApplication
from drivevision.detector import Detector
from gui.app import main
from gui.main_window import MainWindow


def load_that_lasts(*args, **kwargs):
    time.sleep(60)


def arrange():  # what the user changed in this session, while the detector loads
    [window] = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
    if not window.nothing_to_finish():  # the worker has not started loading yet
        QTimer.singleShot(10, arrange)
        return
    window.resize(640, 480)
    window.panel.overlay.thickness.setValue(5)
    print("arranged", flush=True)


Detector.from_config = staticmethod(load_that_lasts)
QTimer.singleShot(0, arrange)  # once the event loop runs
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
@pytest.mark.timeout(60)
@pytest.mark.parametrize("signum", ["SIGINT", "SIGTERM"])
def test_a_signal_while_the_detector_loads_keeps_the_window_layout(qtbot, tmp_path, clip_path,
                                                                   signum):
    """Quitting at once still saves what the user arranged, as closing the window does."""
    import signal
    import subprocess
    import sys

    from PyQt6.QtWidgets import QMainWindow

    env = {**os.environ, "HOME": str(tmp_path),  # this module's offscreen screen
           "XDG_CONFIG_HOME": str(tmp_path / "config")}  # never the user's viewer settings
    viewer = subprocess.Popen([sys.executable, "-c", ARRANGED_WHILE_LOADING, clip_path,
                               "--model", "tiny-fpn", "--device", "cpu"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    interrupt_when(viewer, "arranged", getattr(signal, signum))
    saved = QSettings(str(tmp_path / "config" / "DriveVision" / "viewer.conf"),
                      QSettings.Format.IniFormat)
    assert saved.value("overlay/thickness", type=int) == 5
    window = QMainWindow()
    qtbot.addWidget(window)
    assert window.restoreGeometry(saved.value("window/geometry"))
    assert (window.width(), window.height()) == (640, 480)


def test_a_load_leaves_nothing_to_finish_unless_a_recording_runs(tmp_path):
    from gui.worker import Worker

    worker = Worker()
    assert not worker.nothing_to_finish()
    worker.loading = True
    assert worker.nothing_to_finish()
    worker._recording.start(None, tmp_path / "rec.jsonl", fps=10.0, names=COCO_NAMES)
    assert not worker.nothing_to_finish()  # the recording's files are finished first
    worker._recording.stop()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_ctrl_c_while_the_viewer_starts_is_one_line(tmp_path, clip_path, tiny_checkpoint):
    """During the imports of Qt and torch: exit 130 with one line, never a traceback."""
    import signal
    import subprocess
    import sys

    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "HOME": str(tmp_path),
           "XDG_CONFIG_HOME": str(tmp_path / "config")}
    viewer = subprocess.Popen(
        [sys.executable, "-m", "gui", clip_path, "--play", "--model", "tiny-fpn",
         "--weights", tiny_checkpoint, "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    time.sleep(0.4)  # inside the imports (torch alone takes longer) on any machine
    viewer.send_signal(signal.SIGINT)
    _, err = viewer.communicate(timeout=30)
    assert "Traceback" not in err, err
    assert viewer.returncode == 130, err
    assert err.strip().splitlines()[-1] == "drivevision: interrupted"
