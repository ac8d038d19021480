"""The viewer's statistics: rates of the pass on show, waiting told from decoding, each
stage beside its milliseconds, a live stream's arrival rate, display drops per source."""

from __future__ import annotations

import re
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from mjpeg_server import MjpegTestServer  # noqa: E402
from standins import FixedDetector  # noqa: E402
from viewer_steps import play_to_the_end, stream_seq, two_boxes, wait_for_frame  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_replaying_from_the_end_shows_rates_of_the_new_pass(qtbot, make_window, clip_path):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    play_to_the_end(qtbot, window)
    huds: list[str] = []
    set_hud = window.view.set_hud
    window.view.set_hud = lambda lines: (huds.append(lines[1]), set_hud(lines))
    play_to_the_end(qtbot, window)  # Space at the end: from the start again
    rates = [[float(x) for x in re.findall(r"(-?[\d.]+) fps", line)] for line in huds]
    assert len(rates) >= 10 and all(r >= 0 for pair in rates for r in pair), huds
    assert 5.0 <= rates[-1][0] <= 12.0, huds  # the clip's 10 fps, measured over the pass


def test_the_statistics_tell_waiting_for_frames_from_decoding_them(qtbot, make_window,
                                                                   clip_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path, play=True)  # paced at the clip's 10 fps
    qtbot.waitUntil(lambda: window.packet is not None and window.packet.frame.index >= 3,
                    timeout=20000)
    window.pause()
    lines = window.panel.stats.text().splitlines()
    waiting = next(line for line in lines if line.startswith("waiting for frames"))
    assert 50 < float(waiting.split()[3]) < 150  # ms, the pace of 10 fps
    assert lines[-1].startswith("ms: decode\u00a0") and "wait" not in lines[-1]


def wrapped_lines(label) -> list[str]:
    """The lines ``label`` (word-wrapped plain text) shows at its width, as Qt breaks them."""
    from PyQt6.QtGui import QTextLayout, QTextOption

    text = label.text().replace("\n", "\u2028")  # a line separator: a break Qt keeps
    layout = QTextLayout(text, label.font())
    layout.setTextOption(QTextOption())
    layout.textOption().setWrapMode(QTextOption.WrapMode.WordWrap)
    lines = []
    layout.beginLayout()
    while (line := layout.createLine()).isValid():
        line.setLineWidth(label.contentsRect().width())
        lines.append(text[line.textStart():line.textStart() + line.textLength()].strip())
    layout.endLayout()
    return lines


def test_the_statistics_keep_each_stage_beside_its_milliseconds(qtbot, make_window):
    window = make_window(FixedDetector())
    timings = {"wait": 3, "decode": 4, "preprocess": 12, "inference": 1320, "postprocess": 3,
               "render": 2}
    window.panel.show_stats({"input_fps": 9.8, "detector_fps": 0.7, "dropped": 12}, timings,
                            1400)
    stages = [s for s in timings if s != "wait"]
    for width in range(260, 420, 4):  # the panel's narrowest, and wider
        window.panel.stats.setFixedWidth(width)
        lines = wrapped_lines(window.panel.stats)
        assert " ".join(lines).endswith("render\u00a02"), lines
        # a line ends with a number, never with a stage's name, whose number is below
        assert not [line for line in lines if line.split()[-1] in stages], (width, lines)


def test_a_live_stream_shows_the_rate_its_frames_arrive_at(qtbot, make_window):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    messages: list[str] = []
    window.statusBar().messageChanged.connect(messages.append)
    with MjpegTestServer(fps=10) as server:  # OpenCV says 25 fps for any MJPEG stream
        window.open_source(server.url)
        qtbot.waitUntil(lambda: window.packet is not None and stream_seq(window) >= 15
                        and window.packet.stats["input_fps"] is not None,  # settled
                        timeout=20000)
        fps = window.packet.stats["input_fps"]
        window.pause()
    assert 9.0 < fps < 11.0
    assert f"in {fps:.1f} fps" in window.view._hud[1]
    opened = next(m for m in messages if m.startswith("opened"))
    assert opened == f"opened {server.url} (live)"


def test_the_rates_read_dash_not_zero_where_frames_stopped_coming(qtbot, make_window, tmp_path):
    # every frame, a slow detector: the folder's last frames are detected seconds after its
    # reading ended, when no input rate is left to tell (the meter says 0)
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in range(14):
        cv2.imwrite(str(folder / f"a{i:02d}.png"), np.full((48, 64, 3), 10 * i, np.uint8))
    window = make_window(FixedDetector(0.35, detections=two_boxes()))
    window.transport.every_frame.setChecked(True)
    window.open_source(str(folder))
    wait_for_frame(qtbot, window, 0)
    huds: list[str] = []
    set_hud = window.view.set_hud
    window.view.set_hud = lambda lines: (huds.append(lines[1]), set_hud(lines))
    play_to_the_end(qtbot, window)
    assert window.packet.frame.index == 13 and window.packet.stats["input_fps"] == 0.0
    assert huds[-1].startswith("in - fps  det ") and "10.0 fps" in " ".join(huds), huds
    assert not [line for line in huds if "0.0 fps" in line.replace("10.0", "")], huds
    assert window.panel.stats.text().startswith("input - fps, detector ")


def test_display_drops_start_from_zero_for_a_new_source(qtbot, make_window, clip_path,
                                                        tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.transport.every_frame.setChecked(True)
    window.transport.speed.setCurrentIndex(4)
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.play()
    deadline = time.monotonic() + 10.0  # the GUI thread is busy: the worker replaces packets
    while window.worker.display_drops == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    qtbot.waitUntil(lambda: not window.is_playing, timeout=10000)
    assert window.worker.display_drops > 0
    image_path = tmp_path / "grey.png"
    cv2.imwrite(str(image_path), np.full((50, 70, 3), 128, np.uint8))
    window.open_source(str(image_path))
    qtbot.waitUntil(lambda: window.packet is not None
                    and window.packet.frame.image.shape == (50, 70, 3), timeout=10000)
    assert window.packet.stats["dropped"] == 0
    assert "dropped 0" in window.view._hud[-1]
