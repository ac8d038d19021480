"""What the viewer paints over the video: the confidence slider and class toggles, one
box per object, and the frame the HUD shows saved with S."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from PyQt6.QtCore import Qt  # noqa: E402
from standins import FixedDetector  # noqa: E402
from viewer_steps import CAR, PERSON, near, painted_rgb, two_boxes, wait_for_frame  # noqa: E402

from drivevision.detections import Detections  # noqa: E402
from drivevision.labels import COCO_NAMES, colour_for  # noqa: E402

pytestmark = pytest.mark.timeout(60)


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
