"""The viewer tests' shared fixtures: a window to drive, its settings file, the error
dialogs recorded, a model biased to find cars; Qt on the offscreen platform."""

from __future__ import annotations

import os

# before any Qt import: no display needed; a 1920x1080 screen (offscreen's own is 800x800,
# too small to restore a desktop-sized window into)
os.environ["QT_QPA_PLATFORM"] = \
    f"offscreen:configfile={os.path.join(os.path.dirname(__file__), 'offscreen.json')}"

import pytest  # noqa: E402
import torch  # noqa: E402

pytest.importorskip("PyQt6.QtWidgets")

from PyQt6.QtCore import QSettings  # noqa: E402
from PyQt6.QtWidgets import QMessageBox  # noqa: E402
from viewer_steps import CAR, PERSON  # noqa: E402

from drivevision.config import DetectorConfig  # noqa: E402
from drivevision.labels import COCO_NAMES  # noqa: E402
from drivevision.model import LoadedModel, build_model  # noqa: E402
from gui.main_window import MainWindow  # noqa: E402


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
