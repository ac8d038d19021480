"""The main window's widgets: building the tree, and keeping their state between runs.

Left: the video and the transport bar; right (in a scroll area, behind a splitter): the side
panel; a busy bar in the status bar. What the user set (overlay, playback, window geometry,
where the splitter between video and panel sits, the panel's tab of classes or detections) is
saved to and restored from ``ViewerSettings``.
"""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from drivevision.config import DEFAULT_MODEL, DetectorConfig
from gui.panel import TABLES, SidePanel
from gui.settings import ViewerSettings
from gui.transport import TransportBar
from gui.video_view import VideoView


def build(window: QMainWindow, config: DetectorConfig) -> None:
    """Give ``window`` its ``view``, ``transport``, ``panel``, ``splitter`` and ``progress``,
    with the panel showing ``config``'s detector settings and threshold."""
    window.setWindowTitle("DriveVision")
    window.setAcceptDrops(True)
    window.view = VideoView()
    window.transport = TransportBar()
    window.panel = SidePanel()
    left = QWidget()
    column = QVBoxLayout(left)
    column.setContentsMargins(0, 0, 0, 0)
    column.addWidget(window.view, 1)
    column.addWidget(window.transport)
    scroll = QScrollArea()
    scroll.setWidget(window.panel)
    scroll.setWidgetResizable(True)
    window.splitter = QSplitter(Qt.Orientation.Horizontal)
    window.splitter.addWidget(left)
    window.splitter.addWidget(scroll)
    window.splitter.setStretchFactor(0, 1)
    window.setCentralWidget(window.splitter)
    window.progress = QProgressBar()
    window.progress.setRange(0, 0)
    window.progress.setMaximumWidth(120)
    window.progress.hide()
    window.statusBar().addPermanentWidget(window.progress)
    window.panel.overlay.set_conf(config.conf)
    window.panel.overlay.agnostic_box.setChecked(config.agnostic_nms)
    show_detector(window, config)


def show_detector(window: QMainWindow, config: DetectorConfig) -> None:
    """The side panel's detector choices, as ``config`` has them."""
    window.panel.detector.set_values(config.model or DEFAULT_MODEL, config.weights,
                                     config.engine, config.device, config.precision)


def restore(window: QMainWindow, s: ViewerSettings) -> None:
    """Geometry, splitter, overlay and playback choices as the last run left them."""
    geometry = s.geometry()
    if geometry is not None:
        window.restoreGeometry(geometry)
    else:
        screen = window.screen().availableGeometry()
        window.resize(min(1440, screen.width()), min(900, screen.height()))
    splitter = s.state("window/splitter")
    if splitter is not None:
        window.splitter.restoreState(splitter)
    window.panel.overlay.labels_box.setChecked(s.get("overlay/labels", True, bool))
    window.panel.overlay.thickness.setValue(s.get("overlay/thickness", 0, int))
    table = s.get("panel/table", "classes", str)
    window.panel.show_table(table if table in TABLES else "classes")
    window.transport.speed.setCurrentIndex(s.get("playback/speed_index", 2, int))
    window.transport.every_frame.setChecked(s.get("playback/every_frame", False, bool))


def save(window: QMainWindow, s: ViewerSettings) -> None:
    s.set("window/geometry", window.saveGeometry())
    s.set("window/splitter", window.splitter.saveState())
    s.set("overlay/labels", window.panel.overlay.labels_box.isChecked())
    s.set("overlay/thickness", window.panel.overlay.thickness.value())
    s.set("panel/table", window.panel.shown_table())
    s.set("playback/speed_index", window.transport.speed.currentIndex())
    s.set("playback/every_frame", window.transport.every_frame_choice())
    s.sync()
