"""The viewer playing a file: to the end, seeking while playing, the seek handle dragged,
play greyed out until something is open, the end told, a live source's seek handle."""

from __future__ import annotations

import json
import time
from collections import Counter

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from mjpeg_server import MjpegTestServer  # noqa: E402
from PyQt6.QtCore import Qt  # noqa: E402
from PyQt6.QtWidgets import QApplication  # noqa: E402
from standins import FixedDetector  # noqa: E402
from viewer_steps import play_to_the_end, two_boxes, wait_for_frame  # noqa: E402

from drivevision.detector import Detector  # noqa: E402
from drivevision.io.sinks import detection_records  # noqa: E402
from drivevision.labels import COCO_NAMES  # noqa: E402
from drivevision.pipeline.runner import detect_video  # noqa: E402
from gui.messages import short_uri  # noqa: E402
from gui.overlay import visible  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def test_plays_a_clip_to_the_end_matching_the_library_jsonl(qtbot, make_window, biased_loaded,
                                                            clip_path, tmp_path):
    jsonl = tmp_path / "library.jsonl"
    library = Detector(biased_loaded, device="cpu", conf=0.75, classes="all")
    detect_video(clip_path, jsonl=jsonl, detector=library)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) == 12 and any(line["detections"] for line in lines)

    window = make_window(Detector(biased_loaded, device="cpu", conf=0.05, classes="all"),
                         conf=0.75)
    window.transport.every_frame.setChecked(True)
    window.transport.speed.setCurrentIndex(4)  # 4x: the 1.2 s clip plays in about 0.3 s
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    with qtbot.waitSignal(window.worker.ended, timeout=30000):
        window.play()
    wait_for_frame(qtbot, window, 11)

    assert window.transport.frame.text() == "frame 12 / 12"
    last = lines[-1]["detections"]
    shown = visible(window.packet.detections, window.overlay_settings())
    assert detection_records(shown, COCO_NAMES) == last
    panel = window.panel.detections
    listed = [panel.item(i).text().split()[0] for i in range(panel.count())]
    assert listed == [d["class_name"] for d in last]
    totals = Counter(d["class_name"] for line in lines for d in line["detections"])
    table = window.panel.counts
    run = {table.item(r, 0).text(): int(table.item(r, 2).text()) for r in range(table.rowCount())}
    assert run == dict(totals)

    window.step(-1)
    wait_for_frame(qtbot, window, 10)
    assert window.transport.frame.text() == "frame 11 / 12"
    window.seek(3)
    wait_for_frame(qtbot, window, 3)
    with qtbot.waitSignal(window.worker.ended, timeout=30000):
        window.play()  # and once more to the end: every frame seen again
    wait_for_frame(qtbot, window, 11)
    run = {table.item(r, 0).text(): int(table.item(r, 2).text()) for r in range(table.rowCount())}
    assert run == dict(totals), "frames seen again were counted again"


@pytest.mark.parametrize("choice", ["speed", "every frame"])
def test_a_seek_while_playing_plays_on_as_the_transport_bar_says(qtbot, make_window, clip_path,
                                                                 choice):
    slow = choice == "every frame"
    window = make_window(FixedDetector(0.25 if slow else 0.0, detections=two_boxes()))
    bar = window.transport
    bar.speed.setCurrentIndex(2 if slow else 0)  # 1x, or 0.25x: the 12 frames take 4.8 s
    bar.every_frame.setChecked(slow)  # a detector at 4 frames/s on the 10 fps clip waits
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.play()
    qtbot.waitUntil(lambda: window.packet.frame.index >= 1, timeout=10000)
    qtbot.waitUntil(lambda: window.is_playing, timeout=5000)
    started = time.monotonic()
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        window.seek(7)
    wait_for_frame(qtbot, window, 11)
    if slow:  # every frame from 8 to 12 shown, none skipped for the detector
        assert window.packet.stats["dropped"] == 0
    else:  # frames 9 to 12 at a quarter of 10 fps: 1.6 s (0.4 s at 1x)
        assert time.monotonic() - started > 1.2


def drag(slider, x: float, *, press: bool = False, release: bool = False) -> None:
    """The left mouse button on ``slider`` at ``x`` (its own pixels): pressed, moved with
    the button held, or released, as a hand dragging its handle sends them."""
    from PyQt6.QtCore import QEvent, QPointF
    from PyQt6.QtGui import QMouseEvent

    kind = (QEvent.Type.MouseButtonPress if press else QEvent.Type.MouseButtonRelease
            if release else QEvent.Type.MouseMove)
    held = Qt.MouseButton.NoButton if release else Qt.MouseButton.LeftButton
    point = QPointF(x, slider.height() / 2)
    QApplication.sendEvent(slider, QMouseEvent(kind, point, slider.mapToGlobal(point),
                                               Qt.MouseButton.LeftButton, held,
                                               Qt.KeyboardModifier.NoModifier))


def test_the_time_and_frame_labels_follow_the_seek_handle_while_it_is_dragged(
        qtbot, make_window, clip_path):
    from PyQt6.QtWidgets import QStyle, QStyleOptionSlider

    window = make_window(FixedDetector(detections=two_boxes()))
    bar = window.transport
    window.open_source(clip_path)  # 12 frames at 10 fps
    wait_for_frame(qtbot, window, 0)
    assert (bar.time.text(), bar.frame.text()) == ("00:00.0 / 00:01.2", "frame 1 / 12")
    option = QStyleOptionSlider()
    bar.seek.initStyleOption(option)
    handle = bar.seek.style().subControlRect(QStyle.ComplexControl.CC_Slider, option,
                                             QStyle.SubControl.SC_SliderHandle, bar.seek)
    drag(bar.seek, handle.center().x(), press=True)
    seen = []
    for x in range(handle.center().x(), bar.seek.width(), 8):
        drag(bar.seek, x)
        seen.append((bar.seek.value(), bar.frame.text(), bar.time.text()))
    dragged = bar.seek.value()
    assert dragged == 11 and bar.seek.isSliderDown()
    for value, frame, time_text in seen:  # each place the handle passed, told at once
        assert frame == f"frame {value + 1} / 12"
        assert time_text == f"00:{value / 10:04.1f} / 00:01.2"
    assert len({frame for _, frame, _ in seen}) > 5
    qtbot.wait(300)
    assert window.packet.frame.index == 0  # not sought while dragging ...
    assert bar.frame.text() == "frame 12 / 12"  # ... and the labels stay with the handle
    drag(bar.seek, bar.seek.width() - 1, release=True)
    wait_for_frame(qtbot, window, 11)  # sought on release
    assert (bar.time.text(), bar.frame.text()) == ("00:01.1 / 00:01.2", "frame 12 / 12")


def test_play_is_greyed_out_saying_why_until_something_is_open(qtbot, make_window, errors,
                                                                clip_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    qtbot.waitExposed(window)
    button = window.transport.play
    assert not button.isEnabled() and not window.play_action.isEnabled()
    assert button.toolTip() == \
        "Nothing to play yet: open a file, folder, camera or stream first"
    window.play_action.trigger()  # what Space and the menu do: nothing, no error dialog
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.wait(300)
    assert errors == [] and not window.is_playing
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    assert button.isEnabled() and button.toolTip() == "Play / pause (Space)"
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        window.play_action.trigger()
    assert errors == []


def test_the_end_of_a_file_is_told_naming_it(qtbot, make_window, clip_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    play_to_the_end(qtbot, window)
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() != "", timeout=5000)
    assert window.statusBar().currentMessage() == f"end of {short_uri(clip_path)}"


def test_the_hud_names_the_image_of_a_folder_it_shows_cutting_a_long_name(qtbot, make_window,
                                                                          tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    long = "front_camera_2024-05-17_14-03-22_frame_000123.png"  # 49 characters
    for name in ("a.png", long):
        cv2.imwrite(str(folder / name), np.full((48, 64, 3), 90, np.uint8))
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(str(folder))
    wait_for_frame(qtbot, window, 0)
    qtbot.waitUntil(lambda: window.view._hud[0] == "frame 1/2  a.png  1 object")
    window.step(1)
    wait_for_frame(qtbot, window, 1)
    shown = "front_camera_\u20262_frame_000123.png"
    qtbot.waitUntil(lambda: window.view._hud[0] == f"frame 2/2  {shown}  1 object")
    assert len(shown) == 32


def test_live_source_keeps_the_seek_handle_still_and_every_frame_off(qtbot, make_window,
                                                                     clip_path):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    bar = window.transport
    bar.every_frame.setChecked(True)
    with MjpegTestServer(fps=30) as server:
        window.open_source(server.url)  # live: plays at once
        qtbot.waitUntil(lambda: window.packet is not None, timeout=20000)
        qtbot.waitUntil(lambda: window.packet.frame.index > 5, timeout=20000)
        assert bar.seek.value() == bar.seek.minimum() == bar.seek.maximum()
        assert not bar.every_frame.isEnabled() and not bar.every_frame.isChecked()
        window.pause()
        qtbot.waitUntil(lambda: not window.is_playing, timeout=5000)
    window.open_source(clip_path)  # a file: the choice made for files comes back
    qtbot.waitUntil(lambda: bar.every_frame.isEnabled() and bar.seek.maximum() > 0,
                    timeout=10000)
    assert bar.every_frame.isChecked()
