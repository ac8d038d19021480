"""The viewer's layout on a laptop screen and what it keeps for the next run: the side
panel and classes table at 1600x900, the splitter, recent sources and overlay settings."""

from __future__ import annotations

import json
from collections import Counter

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from standins import FixedDetector  # noqa: E402
from viewer_steps import play_to_the_end, two_boxes, video_times, wait_for_frame  # noqa: E402

from drivevision.detections import Detections  # noqa: E402
from drivevision.labels import COCO_NAMES  # noqa: E402

pytestmark = pytest.mark.timeout(60)


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
