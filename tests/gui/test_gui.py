"""The desktop viewer, driven through its widgets with pytest-qt on the offscreen platform."""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from collections import Counter
from pathlib import Path

# before any Qt import: no display needed; a 1920x1080 screen (offscreen's own is 800x800,
# too small to restore a desktop-sized window into)
os.environ["QT_QPA_PLATFORM"] = \
    f"offscreen:configfile={os.path.join(os.path.dirname(__file__), 'offscreen.json')}"

import av  # noqa: E402
import cv2  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from mjpeg_server import MjpegTestServer, read_seq  # noqa: E402
from PyQt6.QtCore import QSettings, Qt, QTimer  # noqa: E402
from PyQt6.QtWidgets import QApplication, QMessageBox  # noqa: E402
from standins import BurstyStream, FixedDetector  # noqa: E402

from drivevision.config import DetectorConfig  # noqa: E402
from drivevision.detections import Detections  # noqa: E402
from drivevision.detector import Detector  # noqa: E402
from drivevision.io.live_sinks import LiveVideoSink  # noqa: E402
from drivevision.io.sinks import detection_records  # noqa: E402
from drivevision.labels import COCO_NAMES, colour_for, track_colour  # noqa: E402
from drivevision.model import LoadedModel, build_model  # noqa: E402
from drivevision.pipeline.runner import detect_video  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402
from gui.messages import short_uri  # noqa: E402
from gui.overlay import visible  # noqa: E402
from gui.recording import Recording  # noqa: E402

pytestmark = pytest.mark.timeout(60)

CAR, PERSON = 3, 1


@pytest.fixture(scope="module")
def biased_loaded(tiny_loaded) -> LoadedModel:
    """The tiny model at the clip's own size, with class weights that make it find cars (and
    now and then a person) with scores spread over 0.5 .. 0.9; few proposals, so it is fast."""
    module = build_model("tiny-fpn", num_classes=91, min_size=96, max_size=160,
                         rpn_pre_nms_top_n_test=200, rpn_post_nms_top_n_test=50)
    module.load_state_dict(tiny_loaded.module.state_dict())
    module.roi_heads.detections_per_img = 12
    with torch.no_grad():
        predictor = module.roi_heads.box_predictor.cls_score
        predictor.weight.mul_(30.0)
        predictor.bias.zero_()
        predictor.bias[CAR], predictor.bias[PERSON] = 5.0, 6.0
    return LoadedModel(module, "tiny-fpn", COCO_NAMES, "biased")


@pytest.fixture
def settings(tmp_path) -> QSettings:
    return QSettings(str(tmp_path / "viewer.ini"), QSettings.Format.IniFormat)


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    """Messages of the error dialogs, which are recorded instead of blocking the test."""
    shown: list[str] = []
    monkeypatch.setattr(QMessageBox, "critical", lambda parent, title, text: shown.append(text))
    return shown


@pytest.fixture
def make_window(qtbot, settings):
    windows = []

    def make(detector, tracking=(), **config) -> MainWindow:
        config.setdefault("classes", "all")
        window = MainWindow(DetectorConfig(model="tiny-fpn", device="cpu", **config),
                            detector=detector, settings=settings, tracking=tracking)
        qtbot.addWidget(window)
        window.show()
        windows.append(window)
        return window

    yield make
    for window in windows:
        window.close()
        assert not window.worker.is_running(), "the worker thread outlived its window"


def two_boxes() -> Detections:
    return Detections([[20, 20, 80, 70], [110, 30, 180, 90]], [0.9, 0.3], [CAR, PERSON])


def wait_for_frame(qtbot, window, index: int, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: window.packet is not None and window.packet.frame.index == index,
                    timeout=timeout)


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


def painted_rgb(window, x: float, y: float) -> tuple[int, int, int]:
    """The colour the video widget painted at frame pixel (x, y)."""
    grab = window.view.grab().toImage()
    rect = window.view.image_rect()
    scale = rect.width() / window.view.image().width()
    colour = grab.pixelColor(round(rect.x() + x * scale), round(rect.y() + y * scale))
    return colour.red(), colour.green(), colour.blue()


def near(rgb, bgr, tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(rgb, bgr[::-1]))


def test_slider_and_class_toggles_change_the_painted_overlay(qtbot, make_window, tmp_path):
    image_path = tmp_path / "grey.png"
    cv2.imwrite(str(image_path), np.full((120, 200, 3), 128, np.uint8))
    detector = FixedDetector(detections=two_boxes())
    window = make_window(detector, conf=0.2)
    window.panel.overlay.thickness.setValue(6)
    window.panel.overlay.labels_box.setChecked(False)
    window.open_source(str(image_path))
    wait_for_frame(qtbot, window, 0)
    qtbot.waitUntil(lambda: not window.view.image().isNull())
    car_edge, person_edge = (20, 45), (110, 60)
    assert near(painted_rgb(window, *car_edge), colour_for(CAR, COCO_NAMES))
    assert near(painted_rgb(window, *person_edge), colour_for(PERSON, COCO_NAMES))
    assert window.panel.detections.count() == 2
    assert window.view._hud[0].endswith("2 objects")
    # one frame shown, not played: no rate to tell, rather than a stalled-looking "0.0 fps"
    assert window.view._hud[1] == "in - fps  det - fps"
    assert window.panel.stats.text().startswith("input - fps, detector - fps")

    window.panel.overlay.conf_slider.setValue(50)  # the person (0.30) goes, the car stays
    qtbot.wait(50)
    assert near(painted_rgb(window, *person_edge), (128, 128, 128))
    assert near(painted_rgb(window, *car_edge), colour_for(CAR, COCO_NAMES))
    assert window.panel.detections.count() == 1
    assert window.view._hud[0].endswith(" 1 object")  # the count of what is drawn

    window.panel.overlay.class_item(CAR).setCheckState(Qt.CheckState.Unchecked)
    qtbot.wait(50)
    assert near(painted_rgb(window, *car_edge), (128, 128, 128))
    assert window.panel.detections.count() == 0
    assert detector.calls == 1, "overlay changes must not run the detector again"


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


def test_one_box_per_object_keeps_the_best_class_of_an_object_and_follows_the_option(
        qtbot, make_window, clip_path):
    truck = 8
    on_one = Detections([[20, 20, 80, 70], [21, 20, 80, 71], [110, 30, 180, 90]],
                        [0.9, 0.6, 0.8], [CAR, truck, PERSON])
    window = make_window(FixedDetector(detections=on_one), agnostic_nms=True)
    box = window.panel.overlay.agnostic_box
    assert box.isChecked()  # drivevision view --agnostic-nms
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)

    def listed() -> list[str]:
        panel = window.panel.detections
        return [panel.item(i).text().split()[0] for i in range(panel.count())]

    assert listed() == ["car", "person"]
    window.panel.overlay.class_item(CAR).setCheckState(Qt.CheckState.Unchecked)
    assert listed() == ["truck", "person"]  # a hidden class never hides one shown
    window.panel.overlay.class_item(CAR).setCheckState(Qt.CheckState.Checked)
    box.setChecked(False)
    assert listed() == ["car", "truck", "person"]


def red_share(widget) -> float:
    """How much of ``widget`` is painted a strong red."""
    image = widget.grab().toImage()
    pixels = [image.pixelColor(x, y) for x in range(0, image.width(), 2)
              for y in range(0, image.height(), 2)]
    return sum(c.red() > 150 and c.green() < 90 and c.blue() < 90 for c in pixels) / len(pixels)


def test_the_rec_button_shows_a_recording_is_running(qtbot, make_window, errors, clip_path,
                                                    tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    rec = window.transport.record
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    idle_text, idle_red = rec.text(), red_share(rec)
    window.start_recording(str(tmp_path / "rec.mp4"), str(tmp_path / "rec.jsonl"))
    qtbot.waitUntil(rec.isChecked, timeout=10000)
    assert idle_text == "Rec" and idle_red < 0.05
    assert rec.text().startswith("\u25cf Rec 00:0") and red_share(rec) > 0.5
    qtbot.waitUntil(lambda: rec.text() == "\u25cf Rec 00:01", timeout=5000)  # the time runs
    window.stop_recording()
    qtbot.waitUntil(lambda: not rec.isChecked(), timeout=10000)
    assert rec.text() == "Rec" and red_share(rec) < 0.05

    window.start_recording(str(tmp_path / "no" / "such" / "folder" / "rec.mp4"), None)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=10000)
    assert not rec.isChecked() and rec.text() == "Rec"  # it did not start


def test_the_side_panel_fits_a_1600x900_screen_without_scrolling(qtbot, make_window):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.resize(1600, 820)  # 900 less a title bar and a desktop's panel
    qtbot.wait(100)
    scroll = window.splitter.widget(1)
    assert scroll.verticalScrollBar().maximum() == 0
    apply = window.panel.detector.apply
    bottom = apply.mapTo(scroll.viewport(), apply.rect().bottomLeft()).y()
    assert apply.isVisible() and bottom <= scroll.viewport().height()


def test_the_classes_table_shows_six_rows_on_a_1600x900_screen(qtbot, make_window):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.resize(1600, 820)
    run = Counter({class_id: 10 - class_id for class_id in range(1, 9)})
    window.panel.show_counts(Detections.empty(), run, COCO_NAMES)
    window.panel.show_table("classes")
    qtbot.wait(100)
    table = window.panel.counts
    assert table.isVisible() and table.rowCount() == 8
    assert table.viewport().height() >= 6 * table.rowHeight(0)
    assert window.splitter.widget(1).verticalScrollBar().maximum() == 0


def test_where_the_user_put_the_splitter_is_kept_for_the_next_run(qtbot, make_window):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.resize(1400, 820)
    qtbot.wait(50)
    window.splitter.setSizes([1000, 400])
    qtbot.wait(50)
    sizes = window.splitter.sizes()
    window.close()  # saves the layout, as every quit does
    again = make_window(FixedDetector(detections=two_boxes()))
    qtbot.wait(50)
    assert again.splitter.sizes() == sizes != [0, 0]
    assert abs(sizes[1] - 400) <= 40  # the panel's width as dragged, not its default


def test_s_saves_the_frame_the_hud_shows_to_the_pictures_folder(qtbot, make_window, clip_path,
                                                                tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # a home without a Pictures folder yet
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.seek(11)
    wait_for_frame(qtbot, window, 11)
    assert window.view._hud[0].startswith("frame 12/12")
    [save] = [a for a in window.actions() if a.shortcut().toString() == "S"]
    save.trigger()
    [shot] = (tmp_path / "Pictures").glob("drivevision-*.png")
    assert shot.name.endswith("-frame12.png")
    assert cv2.imread(str(shot)).shape == (96, 160, 3)


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


def test_recent_sources_and_overlay_settings_persist(qtbot, make_window, settings, clip_path,
                                                     tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.panel.overlay.thickness.setValue(3)
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    window.start_recording(str(video), str(jsonl))
    window.transport.every_frame.setChecked(True)
    window.transport.speed.setCurrentIndex(4)
    playing_s = play_to_the_end(qtbot, window)
    window.stop_recording()
    qtbot.waitUntil(jsonl.exists, timeout=10000)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(12))  # frame 0 on show at Rec
    times = video_times(video)
    assert len(times) == 12
    # every frame shown: the video keeps the clip's own times (the JSONL's), not the playing's
    source = [line["timestamp_ms"] / 1000.0 for line in lines]
    assert np.allclose(np.subtract(times, times[0]), np.subtract(source, source[0]), atol=0.002)
    assert playing_s < source[-1] - source[0]  # at 4x
    shot = tmp_path / "shot.png"
    assert window.save_screenshot(shot)
    assert cv2.imread(str(shot)).shape == (96, 160, 3)
    window.panel.show_table("detections")
    window.close()

    again = make_window(FixedDetector(detections=two_boxes()))
    assert again.settings.recent()[0] == clip_path
    assert [a.text() for a in again.recent_menu.actions()] == [clip_path]
    assert again.panel.overlay.thickness.value() == 3
    assert again.panel.shown_table() == "detections"


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
    assert "wins over --model" not in caplog.text
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


def test_a_recent_file_opens_from_another_working_directory(settings, tmp_path, monkeypatch):
    from gui.settings import ViewerSettings

    (tmp_path / "drives").mkdir()
    monkeypatch.chdir(tmp_path)
    remembered = ViewerSettings(settings)
    for uri in ("drives/front.mp4", "rtsp://cam.local/front", "0", "file:///a%20b.mp4"):
        remembered.add_recent(uri)
    monkeypatch.chdir(tmp_path / "drives")
    assert remembered.recent() == ["file:///a%20b.mp4", "0", "rtsp://cam.local/front",
                                   str(tmp_path / "drives" / "front.mp4")]


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


def play_to_the_end(qtbot, window) -> float:
    """Play until the worker says the source ended; returns the seconds that took."""
    start = time.monotonic()
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        window.play()
    return time.monotonic() - start


def video_times(path) -> list[float]:
    """Presentation times (s) of every frame of the video at ``path``, in order."""
    with av.open(str(path)) as container:
        return sorted(float(frame.time) for frame in container.decode(video=0))


def stream_seq(window) -> int:
    """The MJPEG test server's sequence number of the frame on show."""
    return read_seq(window.packet.frame.image)


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


@pytest.mark.timeout(90)
@pytest.mark.parametrize("new", ["missing file", "closed port"])
def test_a_failed_open_while_a_stream_is_lost_leaves_it_reconnecting(qtbot, make_window, errors,
                                                                     tmp_path, new):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    url, port = lose_a_stream(qtbot, window)
    uri = str(tmp_path / "missing.mp4") if new == "missing file" else closed_port_url()
    window.open_source(uri)
    qtbot.waitUntil(lambda: bool(errors), timeout=20000)
    message = window.statusBar().currentMessage()  # the new source's error, not the stream's
    assert message.startswith("error: ") and f":{port}/" not in message, message
    assert errors[0].startswith(f"No such file or directory: {uri}" if new == "missing file"
                                else f"Cannot open {uri}"), errors
    qtbot.wait(2500)  # no second error naming the stream: it carries on reconnecting
    assert len(errors) == 1, errors
    assert window.is_playing and window.view._hud[0].startswith("LOST")
    assert window.windowTitle() == f"DriveVision - {url}"
    seen = stream_seq(window)
    with MjpegTestServer(port, fps=30):  # back on the same address: the viewer reconnects
        qtbot.waitUntil(lambda: stream_seq(window) > seen, timeout=30000)
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
def test_a_failed_apply_while_a_stream_is_lost_leaves_it_reconnecting(qtbot, make_window,
                                                                      errors):
    window = make_window(FixedDetector(0.02, detections=two_boxes()))
    _, port = lose_a_stream(qtbot, window)
    window.panel.detector.weights.setText("nope.pt")
    window.panel.detector.apply.click()
    qtbot.waitUntil(lambda: bool(errors), timeout=20000)
    assert "nope.pt" in errors[0], errors
    qtbot.wait(2500)  # no second error naming the stream: it carries on reconnecting
    assert len(errors) == 1, errors
    assert window.is_playing and window.view._hud[0].startswith("LOST")
    seen = stream_seq(window)
    with MjpegTestServer(port, fps=30):  # back: the detector that ran before runs on
        qtbot.waitUntil(lambda: stream_seq(window) > seen, timeout=30000)
        assert len(window.packet.detections) == 2
    window.pause()
    assert len(errors) == 1, errors


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


def record_to_the_end(qtbot, window, video) -> tuple[float, list[dict], object]:
    """Record ``video`` (and ``rec.jsonl`` beside it) while the open source plays to its end;
    returns the seconds it played, the JSONL records and the video's path."""
    wait_for_frame(qtbot, window, 0)
    jsonl = video.with_name("rec.jsonl")
    window.start_recording(str(video), str(jsonl))
    playing_s = play_to_the_end(qtbot, window)
    window.stop_recording()
    qtbot.waitUntil(jsonl.exists, timeout=10000)
    return playing_s, [json.loads(line) for line in jsonl.read_text().splitlines()], video


def pics(tmp_path, good, damaged=()):
    """A folder of ``a{i}.png`` images: those in ``good`` readable, those in ``damaged`` not."""
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in good:
        cv2.imwrite(str(folder / f"a{i}.png"), np.full((48, 64, 3), 40 * i, np.uint8))
    for i in damaged:
        (folder / f"a{i}.png").write_bytes(b"not an image")
    return folder


def test_a_folder_with_damaged_images_shows_and_plays_the_others(qtbot, make_window, errors,
                                                                  tmp_path):
    folder = pics(tmp_path, good=(1, 3), damaged=(0, 2))
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(str(folder))
    wait_for_frame(qtbot, window, 1)  # the first image that can be read
    qtbot.waitUntil(lambda: "a0.png" in window.statusBar().currentMessage())
    assert window.statusBar().currentMessage().startswith("skipped: Cannot decode image")
    window.step(1)
    wait_for_frame(qtbot, window, 3)  # over a2.png
    window.step(-1)
    wait_for_frame(qtbot, window, 1)
    window.seek(0)
    qtbot.wait(300)
    assert window.packet.frame.index == 1
    window.transport.every_frame.setChecked(True)
    window.play()  # two frames to play: it may be over before a poll could see it playing
    qtbot.waitUntil(lambda: not window.is_playing and window.packet.frame.index == 3,
                    timeout=10000)
    assert window.packet.frame.file == "a3.png"
    assert errors == []


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


def test_a_damaged_last_image_is_told_when_playing_ends_on_it(qtbot, make_window, errors,
                                                              tmp_path):
    # a2.png is read only by the playing, then it ends
    folder = pics(tmp_path, good=(0, 1), damaged=(2,))
    window = make_window(FixedDetector(detections=two_boxes()))
    window.transport.every_frame.setChecked(True)
    window.open_source(str(folder))
    wait_for_frame(qtbot, window, 0)
    play_to_the_end(qtbot, window)
    qtbot.waitUntil(lambda: "a2.png" in window.statusBar().currentMessage(), timeout=5000)
    assert window.statusBar().currentMessage().startswith("skipped: Cannot decode image")
    assert window.packet.frame.file == "a1.png" and errors == []


def test_a_video_that_stops_decoding_early_says_so_and_it_stays_said(qtbot, make_window,
                                                                      errors, clip_path,
                                                                      tmp_path):
    cut = tmp_path / "cut.mp4"  # cut at 90%: its container still counts 12 frames, 7 decode
    data = Path(clip_path).read_bytes()
    cut.write_bytes(data[:len(data) * 9 // 10])
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(str(cut))
    wait_for_frame(qtbot, window, 0)
    play_to_the_end(qtbot, window)
    told = f"{cut}: decoding stopped after 7 of 12 frames; the file looks truncated or damaged"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == told, timeout=5000)
    qtbot.wait(10500)  # longer than passing messages last
    assert window.statusBar().currentMessage() == told
    assert window.packet.frame.index == 6 and errors == []


def test_the_seek_slider_of_a_video_that_stops_decoding_early_ends_where_it_does(
        qtbot, make_window, errors, clip_path, tmp_path):
    cut = tmp_path / "cut.mp4"  # its container still counts 12 frames, 7 decode
    data = Path(clip_path).read_bytes()
    cut.write_bytes(data[:len(data) * 9 // 10])
    window = make_window(FixedDetector(detections=two_boxes()))
    slider = window.transport.seek
    window.open_source(str(cut))
    wait_for_frame(qtbot, window, 0)
    assert slider.maximum() == 11  # what the file claims, until reading finds less
    play_to_the_end(qtbot, window)
    assert window.packet.frame.index == 6 and slider.maximum() == 6
    window.step(1)  # Right on the last frame that decodes: it stays, saying why
    told = f"{cut}: frame 8 cannot be shown, none from 8 on decodes; showing frame 7"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == told, timeout=5000)
    window.seek(3)
    wait_for_frame(qtbot, window, 3)
    window.seek(11)  # a seek past it (the slider no longer goes there) shows the last frame
    wait_for_frame(qtbot, window, 6)
    told = f"{cut}: frame 12 cannot be shown, none from 8 on decodes; showing frame 7"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == told, timeout=5000)
    assert slider.value() == 6 and slider.maximum() == 6 and errors == []


def test_a_step_past_where_a_video_stops_decoding_shows_its_last_frame(qtbot, make_window,
                                                                       errors, clip_path,
                                                                       tmp_path):
    cut = tmp_path / "cut.mp4"
    data = Path(clip_path).read_bytes()
    cut.write_bytes(data[:len(data) * 9 // 10])
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(str(cut))
    wait_for_frame(qtbot, window, 0)
    window.seek(6)
    wait_for_frame(qtbot, window, 6)
    window.step(1)  # frame 8 is found not to decode only now
    qtbot.waitUntil(lambda: "cannot be shown" in window.statusBar().currentMessage(),
                    timeout=5000)
    assert window.statusBar().currentMessage() == \
        f"{cut}: frame 8 cannot be shown, none from 8 on decodes; showing frame 7"
    assert window.packet.frame.index == 6 and window.transport.seek.maximum() == 6
    assert errors == []


def test_play_at_the_last_image_that_can_be_read_plays_the_folder_again(qtbot, make_window,
                                                                         errors, tmp_path):
    folder = pics(tmp_path, good=(0, 1), damaged=(2,))
    window = make_window(FixedDetector(detections=two_boxes()))
    window.transport.every_frame.setChecked(True)
    window.open_source(str(folder))
    wait_for_frame(qtbot, window, 0)
    shown: list[str] = []  # the HUD's frame numbers, one per frame shown
    set_hud = window.view.set_hud
    window.view.set_hud = lambda lines: (shown.append(lines[0].split()[1]), set_hud(lines))
    for _ in range(2):  # the second step finds no image after a1.png: a1.png stays on show
        window.step(1)
        wait_for_frame(qtbot, window, 1)
    qtbot.wait(300)
    assert shown[-1] == "2/3" and window.packet.frame.file == "a1.png"
    shown.clear()
    play_to_the_end(qtbot, window)  # Space at the end: from the first image again
    assert shown == ["1/3", "2/3"]
    shown.clear()
    play_to_the_end(qtbot, window)  # and again, now that playing found the end too
    assert shown == ["1/3", "2/3"] and errors == []


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


def test_recording_a_folder_of_images_names_each_image_file(qtbot, make_window, tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in (1, 2, 10):  # natural order: 10 after 2
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((48, 64, 3), i, np.uint8))
    window = make_window(FixedDetector(detections=two_boxes()))
    window.transport.every_frame.setChecked(True)
    window.open_source(str(folder))
    _, lines, _ = record_to_the_end(qtbot, window, tmp_path / "rec.mp4")
    # the image on show when recording started, then those played
    assert [(line["frame"], line["file"]) for line in lines] == [(0, "p1.png"), (1, "p2.png"),
                                                                   (2, "p10.png")]
    assert window.packet.frame.file == "p10.png"  # the frame shown keeps its file too


def test_frames_shown_by_steps_and_seeks_while_recording_are_recorded(qtbot, make_window,
                                                                        clip_path, tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    window.start_recording(str(video), str(jsonl))
    qtbot.waitUntil(window.transport.record.isChecked, timeout=10000)
    for index, move in ((1, lambda: window.step(1)), (2, lambda: window.step(1)),
                        (6, lambda: window.seek(6))):
        qtbot.wait(200)  # looked at for a while: a still in the video
        move()
        wait_for_frame(qtbot, window, index)
    qtbot.wait(200)
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()
    assert saved.args[0].startswith("saved 4 frames to ")  # the first on show at Rec
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 6]
    times = video_times(video)  # and the last once more, at Stop
    assert len(times) == 5 and all(gap > 0.15 for gap in np.diff(times)), times


def test_a_recording_lasts_from_rec_to_stop_as_its_clock_says(qtbot, make_window, clip_path,
                                                               tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    asked = time.monotonic()
    with qtbot.waitSignal(window.worker.recording, timeout=10000):
        window.start_recording(str(video), str(jsonl))
    started = time.monotonic()
    qtbot.wait(1000)  # paused: frame 0 on show
    stepped = time.monotonic()
    window.step(1)
    wait_for_frame(qtbot, window, 1)
    qtbot.wait(1000)  # paused again before Stop
    clock = window.transport.record.text()
    stopping = time.monotonic()
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()
    stopped = time.monotonic()
    assert saved.args[0].startswith("saved 2 frames to ")
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == [0, 1]
    times = video_times(video)  # frame 0 from Rec, frame 1 from the step, held until Stop
    assert len(times) == 3 and times[1] - times[0] >= stepped - started, times
    assert stopping - started <= times[-1] - times[0] <= stopped - asked
    # the clock (whole seconds of tenths rounded, four updates a second) said as much
    assert clock.startswith("\u25cf Rec 00:0")
    assert -0.1 < times[-1] - times[0] - int(clock[-1]) < 1.3, (clock, times)


def test_a_recording_stopped_before_any_frame_names_no_video_it_did_not_write(
        qtbot, make_window, tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))  # nothing opened: no frame
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    window.start_recording(str(video), str(jsonl))
    qtbot.waitUntil(window.transport.record.isChecked, timeout=10000)
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()  # nothing shown meanwhile: no frame to record
    assert not video.exists() and jsonl.read_text() == ""
    assert saved.args[0] == f"nothing recorded: no frame was shown while recording ({jsonl} " \
                            "left empty)"
    assert window.statusBar().currentMessage() == saved.args[0]


def test_recording_while_frames_are_skipped_lasts_as_long_as_the_playing(
        qtbot, make_window, clip_path, tmp_path):
    window = make_window(FixedDetector(0.25, detections=two_boxes()))  # 4 detections/s on 10 fps
    window.transport.speed.setCurrentIndex(2)  # 1x, skipping frames the detector misses
    window.transport.every_frame.setChecked(False)
    window.open_source(clip_path)
    playing_s, lines, video = record_to_the_end(qtbot, window, tmp_path / "rec.mkv")
    assert lines[0]["frame"] == 0 and 3 <= len(lines) < 12, \
        "frame 0 on show at Rec, then the detector should have skipped frames"
    times = video_times(video)
    assert len(times) == len(lines) + 1  # the last frame once more at Stop: shown until then
    watched = (lines[-1]["timestamp_ms"] - lines[1]["timestamp_ms"]) / 1000.0
    # about 2.5 frames apart, so stamped at the clip's 10 fps the video would last 0.4x the
    # watching; a frame captured late on a loaded machine shortens it by that lateness only
    assert 0.7 * watched <= times[-2] - times[1] <= playing_s + 0.01
    # from Rec (sent just before Play) to Stop (after the end): at least the playing
    assert times[-1] - times[0] >= playing_s - 0.05


def test_recording_every_frame_lasts_as_long_as_the_clip(qtbot, make_window, tmp_path):
    from drivevision.synthetic import write_clip

    clip = tmp_path / "long.mp4"  # longer than the frames the pipeline reads ahead
    write_clip(clip, 40, width=160, height=96, fps=20.0)
    window = make_window(FixedDetector(0.1, detections=two_boxes()))  # half the clip's rate
    window.transport.every_frame.setChecked(True)  # waits for the detector
    window.open_source(str(clip))
    playing_s, lines, video = record_to_the_end(qtbot, window, tmp_path / "rec.mp4")
    times = video_times(video)
    assert len(times) == len(lines) == 40  # frame 0 on show at Rec, then 39 played
    clip_s = (lines[-1]["timestamp_ms"] - lines[0]["timestamp_ms"]) / 1000.0
    assert playing_s > 1.5 * clip_s
    assert abs((times[-1] - times[0]) - clip_s) < 0.01, (times[-1] - times[0], clip_s)


def test_recording_a_stream_with_its_own_clock_times_frames_by_it_not_by_arrival(
        qtbot, make_window, tmp_path, monkeypatch):
    stream = BurstyStream(bursts=3, per_burst=5)  # 10 fps, 5 frames 20 ms apart, then 0.4 s
    monkeypatch.setattr("gui.worker.open_media", lambda uri: stream)
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(stream.uri)  # live: plays at once
    wait_for_frame(qtbot, window, 0)
    video, jsonl = tmp_path / "rec.mkv", tmp_path / "rec.jsonl"
    window.start_recording(str(video), str(jsonl))
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        stream.go.set()
    window.stop_recording()
    qtbot.waitUntil(jsonl.exists, timeout=10000)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) > 3 + 1, "frames of one burst should have been recorded"
    stamps = np.array([line["timestamp_ms"] for line in lines]) / 1000.0
    times = np.array(video_times(video))
    assert len(times) == len(lines)
    # by arrival, frames of one burst would be 20 ms apart: here as far as their own times
    np.testing.assert_allclose(np.diff(times), np.diff(stamps), atol=0.0015)


def test_a_stream_with_its_own_clock_reopened_after_a_pause_records_the_pause_as_a_still(
        tmp_path):
    from drivevision.io.frames import Frame
    from drivevision.pipeline import Result
    from gui.overlay import OverlaySettings

    image = np.zeros((48, 64, 3), np.uint8)
    # (its own time in ms, arrival in s): a segment at once; paused 3 s; opened anew, its
    # times start again from 0
    frames = [(0.0, 10.0), (100.0, 10.01), (200.0, 10.02), (0.0, 13.02), (100.0, 13.03)]
    recording = Recording()
    recording.start(tmp_path / "rec.mkv", None, fps=10.0, names=COCO_NAMES)
    for i, (ms, arrived) in enumerate(frames):
        result = Result(Frame(i, ms, image, arrived), Detections.empty())
        recording.write(result, OverlaySettings(), COCO_NAMES, stream_clock=True)
    recording.stop()
    np.testing.assert_allclose(video_times(tmp_path / "rec.mkv"), [0, 0.1, 0.2, 3.2, 3.3],
                               atol=0.0015)


def _disk_full_on_finishing_video(monkeypatch) -> None:
    real = LiveVideoSink._finish

    def finish(self):
        real(self)  # the file is written up to its end ...
        raise OSError(28, "No space left on device")  # ... and then closing it fails

    monkeypatch.setattr(LiveVideoSink, "_finish", finish)


def _record_the_clip(qtbot, window, clip_path, video, jsonl) -> None:
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.start_recording(str(video), str(jsonl))
    window.transport.every_frame.setChecked(True)
    window.transport.speed.setCurrentIndex(4)
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        window.play()


def test_a_recording_file_that_cannot_be_finished_leaves_the_other_finished(
        qtbot, make_window, clip_path, tmp_path, monkeypatch, errors):
    _disk_full_on_finishing_video(monkeypatch)
    window = make_window(FixedDetector(detections=two_boxes()))
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    _record_the_clip(qtbot, window, clip_path, video, jsonl)
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()
    message = saved.args[0]
    assert message.startswith("recording failed: No space left on device")
    assert "what was written is kept in " + str(tmp_path / "rec.partial.mp4") in message
    assert len(jsonl.read_text().splitlines()) == 12  # finished and in place all the same
    assert (tmp_path / "rec.partial.mp4").exists() and not video.exists()
    assert window.worker.is_running() and errors == []


def test_closing_while_recording_closes_the_media_even_when_a_file_fails(
        qtbot, make_window, clip_path, tmp_path, monkeypatch, errors):
    _disk_full_on_finishing_video(monkeypatch)
    window = make_window(FixedDetector(detections=two_boxes()))
    jsonl = tmp_path / "rec.jsonl"
    _record_the_clip(qtbot, window, clip_path, tmp_path / "rec.mp4", jsonl)
    media = window.worker.media
    window.close()  # the worker's last act: finish the recording, close the media
    assert not window.worker.is_running()
    assert not media._cap.isOpened()
    assert len(jsonl.read_text().splitlines()) == 12


def test_starting_a_second_recording_is_refused_and_keeps_the_first(tmp_path):
    recording = Recording()
    first = recording.start(tmp_path / "a.mp4", tmp_path / "a.jsonl", fps=10.0,
                            names=COCO_NAMES)
    assert first.startswith("recording to")
    with pytest.raises(RuntimeError, match="Already recording to .*a.mp4"):
        recording.start(tmp_path / "b.mp4", None, fps=10.0, names=COCO_NAMES)
    assert recording.stop() == ("nothing recorded: no frame was shown while recording "
                                f"({tmp_path / 'a.jsonl'} left empty)")
    assert (tmp_path / "a.jsonl").exists() and not (tmp_path / "b.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]  # nothing left open


def test_viewer_media_has_the_library_readers_frame_times(clip_path, tmp_path):
    from drivevision.io.sources import open_source
    from gui.media import open_media

    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.zeros((16, 16, 3), np.uint8))
    for uri in (clip_path, str(tmp_path)):
        with open_source(uri, fps=4.0) as source:
            expected = [f.timestamp_ms for f in source]
        media = open_media(uri, fps=4.0)
        try:
            assert [media.read(i).timestamp_ms for i in range(len(expected))] == expected
        finally:
            media.close()
    assert expected == [0.0, 250.0, 500.0]


def test_viewer_plays_through_the_librarys_pacing(clip_path):
    from drivevision.io.streams import RealtimeSource
    from gui.media import Paced, open_media

    media = open_media(clip_path)
    try:
        paced = Paced(media, 6, 4.0, threading.Event())
        assert isinstance(paced, RealtimeSource) and paced.live
        start = time.monotonic()
        frames = list(paced)
        assert [f.index for f in frames] == list(range(6, 12))
        assert 0.11 <= time.monotonic() - start < 2.0  # 0.5 s of video at 4x
        slow = Paced(media, 0, 0.1, threading.Event())  # a frame a second
        threading.Timer(0.3, slow.interrupt).start()  # the pipeline stopping (pause, seek)
        start = time.monotonic()
        assert [f.index for f in slow] == [0]
        assert time.monotonic() - start < 0.9
        slow.close()
        assert media.read(3).index == 3  # the media stays open for the next seek
        with pytest.raises(ValueError, match="Expected a playback speed > 0"):
            Paced(media, 0, 0.0, threading.Event())
    finally:
        media.close()


def test_close_waits_for_a_busy_worker_instead_of_leaving_it_running(qtbot, make_window,
                                                                     tmp_path):
    image_path = tmp_path / "grey.png"
    cv2.imwrite(str(image_path), np.full((120, 200, 3), 128, np.uint8))
    gate = threading.Event()
    window = make_window(FixedDetector(detections=two_boxes(), gate=gate))
    window.close_timeout_s = 0.2
    window.open_source(str(image_path))
    qtbot.waitUntil(lambda: window.media is not None, timeout=10000)
    assert not window.close(), "closed while the worker was still in a detector call"
    assert window.isVisible() and window.worker.is_running()
    assert "close again" in window.statusBar().currentMessage()
    gate.set()
    qtbot.waitUntil(lambda: not window.worker.is_running(), timeout=10000)
    assert window.close()


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


@pytest.fixture
def tracked_window(qtbot, make_window, clip_path):
    """A viewer that tracks (botsort) two fixed boxes on the clip, stepped to its third frame."""
    from drivevision.pipeline.track_stage import track_stages

    detector = FixedDetector(detections=two_boxes())
    window = make_window(detector, conf=0.2,
                         tracking=track_stages("botsort", track_thresh=0.2, low_thresh=0.1))
    window.panel.overlay.labels_box.setChecked(False)
    window.panel.overlay.thickness.setValue(6)
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    for index in (1, 2):
        window.step(1)
        wait_for_frame(qtbot, window, index)
    return window


def test_the_track_toggle_reads_as_unavailable_without_a_tracker(qtbot, make_window):
    from drivevision.pipeline.track_stage import track_stages

    untracked = make_window(FixedDetector(detections=two_boxes())).panel.overlay.tracks_box
    assert not untracked.isChecked() and not untracked.isEnabled()
    assert "--track" in untracked.toolTip()
    tracked = make_window(FixedDetector(detections=two_boxes()),
                          tracking=track_stages("botsort")).panel.overlay.tracks_box
    assert tracked.isChecked() and tracked.isEnabled()


def test_track_ids_and_trails_show_and_hide_with_their_toggle(qtbot, tracked_window):
    window, car_edge = tracked_window, (20, 45)
    assert window.panel.detections.item(0).text().startswith("#1 car")
    assert near(painted_rgb(window, *car_edge), track_colour(1))
    window.panel.overlay.tracks_box.setChecked(False)  # class colours and no ids
    qtbot.wait(50)
    assert near(painted_rgb(window, *car_edge), colour_for(CAR, COCO_NAMES))
    assert window.panel.detections.item(0).text().startswith("car")


def test_clicking_a_box_selects_its_track_and_shows_its_span(qtbot, tracked_window):
    window = tracked_window
    assert window.panel.shown_table() == "classes"
    window.view.clicked.emit(150.0, 60.0)  # inside the person's box: track 2
    assert window.selected_track == 2 and window.highlight == 1
    assert window.panel.shown_table() == "detections"  # its row, selected, on show
    assert window.panel.track_info.text() == ("track #2: first frame 1, last frame 3, "
                                              "3 frames long (seen in 3)")
    window.step(1)
    wait_for_frame(qtbot, window, 3)
    qtbot.waitUntil(lambda: "last frame 4" in window.panel.track_info.text())
    assert window.highlight == 1  # still the selected track's box
    window.view.clicked.emit(5.0, 5.0)  # no box there
    assert window.selected_track is None and window.panel.track_info.text() == ""


@pytest.mark.parametrize("move", ["seek", "step back"])
def test_seeking_or_stepping_back_resets_the_tracker_and_says_so(qtbot, tracked_window, move):
    window = tracked_window
    window.view.clicked.emit(50.0, 45.0)
    assert window.selected_track == 1
    window.seek(10) if move == "seek" else window.step(-1)
    index = 10 if move == "seek" else 1
    wait_for_frame(qtbot, window, index)
    message = f"tracker reset: frame {index + 1} does not follow frame 3"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == message)
    assert window.worker.track_span(1) == (index, index, 1)  # ids start again at 1
    assert window.panel.track_info.text().startswith(f"track #1: first frame {index + 1},")


def test_drivevision_view_passes_the_tracking_options_on(monkeypatch, clip_path):
    from drivevision import cli
    from drivevision.cli.tracking import track_options
    from gui import app
    from gui.app import build_parser

    calls = []
    monkeypatch.setattr(app, "main", lambda argv, prog: calls.append(argv) or 0)
    assert cli.main(["view", clip_path, "--track", "bytetrack", "--track-buffer", "12"]) == 0
    args = build_parser().parse_args(calls[0])
    assert args.track == "bytetrack"  # and the settings left out keep their defaults
    assert track_options(args) == {"track_thresh": 0.5, "track_buffer": 12, "match_thresh": 0.8}


def test_a_recording_draws_the_trails_the_viewer_shows(tmp_path):
    from drivevision.io.frames import Frame
    from drivevision.pipeline import Result
    from gui.overlay import OverlaySettings
    from gui.recording import Recording

    image = np.zeros((96, 160, 3), np.uint8)
    boxes = Detections(np.array([[100, 40, 120, 60]], np.float32), np.array([0.9], np.float32),
                       np.array([3], np.int32), track_ids=np.array([1], np.int64))
    trail = {1: np.array([[20.0, 50.0], [60.0, 50.0], [110.0, 50.0]], np.float32)}
    recording = Recording()
    recording.start(tmp_path / "rec.mkv", None, fps=10.0, names=COCO_NAMES)
    for i in range(3):
        result = Result(Frame(i, i * 100.0, image, time.monotonic()), boxes, trails=trail)
        recording.write(result, OverlaySettings(tracks=True), COCO_NAMES)
    recording.stop()
    with av.open(str(tmp_path / "rec.mkv")) as container:
        last = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)][-1]
    assert last[48:53, 30:50].max() > 100  # the trail, left of the box, is drawn


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

