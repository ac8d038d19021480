"""The side panel: overlay controls, run statistics, class counts, detections, detector choice."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from PyQt6.QtCore import Qt, pyqtSignal
from PyQt6.QtGui import QColor, QIcon, QPixmap
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSlider,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from drivevision.config import DEVICES, ENGINES, MODELS, PRECISIONS
from drivevision.detections import Detections
from drivevision.labels import DRIVING_CLASSES, colour_for, name_of
from drivevision.pipeline.stats import PIPELINE_STAGES
from gui.overlay import OverlaySettings

_SKIP_NAMES = {"N/A", "__background__"}
TABLES = ("classes", "detections")  # the tabs under the statistics, in order


def swatch(class_id: int, names: Sequence[str]) -> QIcon:
    """A small square in the class's overlay colour (colour_for gives BGR)."""
    b, g, r = colour_for(class_id, names)
    pixmap = QPixmap(12, 12)
    pixmap.fill(QColor(r, g, b))
    return QIcon(pixmap)


class OverlayControls(QGroupBox):
    """Confidence slider, labels, box thickness, per-class toggles; emits ``changed``."""

    changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Overlay", parent)
        self.conf_slider = QSlider(Qt.Orientation.Horizontal)
        self.conf_slider.setRange(0, 100)
        self.conf_label = QLabel()
        self.labels_box = QCheckBox("Labels")
        self.labels_box.setChecked(True)
        self.tracks_box = QCheckBox("Track ids and trails")
        self.set_tracking(False)  # until the viewer tracks (--track)
        self.agnostic_box = QCheckBox("One box per object")
        self.agnostic_box.setToolTip(
            "where boxes of different classes overlap (IoU > 0.7), show only the "
            "highest-scoring, e.g. a vehicle found both as car and as truck")
        self.thickness = QSpinBox()
        self.thickness.setRange(0, 12)
        self.thickness.setSpecialValueText("auto")
        self.classes = QListWidget()
        self.classes.setMaximumHeight(110)
        form = QFormLayout(self)
        row = QHBoxLayout()
        row.addWidget(self.conf_slider)
        row.addWidget(self.conf_label)
        form.addRow("Confidence", row)
        style = QHBoxLayout()
        style.addWidget(self.labels_box)
        style.addStretch(1)
        style.addWidget(QLabel("Box width"))
        style.addWidget(self.thickness)
        form.addRow(style)
        shown = QHBoxLayout()  # one row: the panel fits a 1600x900 screen unscrolled
        shown.addWidget(self.agnostic_box)
        shown.addWidget(self.tracks_box)
        shown.addStretch(1)
        form.addRow(shown)
        form.addRow(self.classes)
        self.conf_slider.valueChanged.connect(self._conf_moved)
        self.labels_box.toggled.connect(self.changed)
        self.tracks_box.toggled.connect(self.changed)
        self.agnostic_box.toggled.connect(self.changed)
        self.thickness.valueChanged.connect(self.changed)
        self.classes.itemChanged.connect(self.changed)
        self._conf_moved(self.conf_slider.value())

    def _conf_moved(self, value: int) -> None:
        self.conf_label.setText(f"{value / 100:.2f}")
        self.changed.emit()

    def set_tracking(self, available: bool) -> None:
        """Without a tracker the toggle reads as unavailable: unchecked and greyed out,
        its tooltip saying how to get it; with one, checked and enabled."""
        self.tracks_box.setChecked(available)
        self.tracks_box.setEnabled(available)
        self.tracks_box.setToolTip("draw each object's track id and trail" if available
                                   else "unavailable: start the viewer with --track to "
                                        "follow objects")

    def set_conf(self, conf: float) -> None:
        self.conf_slider.setValue(round(conf * 100))

    def set_classes(self, names: Sequence[str], enabled: Sequence[int] | None) -> None:
        """One checkable row per class of the model, driving classes first."""
        self.classes.blockSignals(True)
        self.classes.clear()
        ids = [i for i, n in enumerate(names) if n not in _SKIP_NAMES]
        ids.sort(key=lambda i: (names[i] not in DRIVING_CLASSES, i))
        for i in ids:
            item = QListWidgetItem(swatch(i, names), name_of(i, names))
            item.setData(Qt.ItemDataRole.UserRole, i)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
            on = enabled is None or i in enabled
            item.setCheckState(Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)
            self.classes.addItem(item)
        self.classes.blockSignals(False)
        self.changed.emit()

    def class_item(self, class_id: int) -> QListWidgetItem | None:
        for row in range(self.classes.count()):
            item = self.classes.item(row)
            if item.data(Qt.ItemDataRole.UserRole) == class_id:
                return item
        return None

    def settings(self, highlight: int | None = None) -> OverlaySettings:
        hidden = frozenset(
            self.classes.item(r).data(Qt.ItemDataRole.UserRole)
            for r in range(self.classes.count())
            if self.classes.item(r).checkState() != Qt.CheckState.Checked)
        return OverlaySettings(conf=self.conf_slider.value() / 100, hidden=hidden,
                               labels=self.labels_box.isChecked(),
                               thickness=self.thickness.value(), highlight=highlight,
                               tracks=self.tracks_box.isChecked(),
                               agnostic_nms=self.agnostic_box.isChecked())


class DetectorControls(QGroupBox):
    """Model, engine, device, precision and weights; ``apply_clicked`` restarts the worker."""

    apply_clicked = pyqtSignal()

    def __init__(self, parent: QWidget | None = None):
        super().__init__("Detector", parent)
        self.model, self.engine = QComboBox(), QComboBox()
        self.device, self.precision = QComboBox(), QComboBox()
        self.model.addItems(MODELS)
        self.engine.addItems(ENGINES)
        self.device.addItems(DEVICES)
        self.device.setEditable(True)  # cuda:N
        self.precision.addItems(PRECISIONS)
        self.weights = QLineEdit()
        self.weights.setPlaceholderText("COCO weights")
        self.apply = QPushButton("Apply")
        form = QFormLayout(self)
        for label, widget in (("Model", self.model), ("Weights", self.weights),
                              ("Engine", self.engine), ("Device", self.device)):
            form.addRow(label, widget)
        last = QHBoxLayout()
        last.addWidget(self.precision, 1)
        last.addWidget(self.apply)
        form.addRow("Precision", last)
        self.apply.clicked.connect(self.apply_clicked)

    def set_values(self, model: str, weights: str | None, engine: str, device: str,
                   precision: str) -> None:
        self.model.setCurrentText(model)
        self.weights.setText(weights or "")
        self.engine.setCurrentText(engine)
        self.device.setCurrentText(device)
        self.precision.setCurrentText(precision)

    def values(self) -> dict:
        return {"model": self.model.currentText(), "weights": self.weights.text() or None,
                "engine": self.engine.currentText(), "device": self.device.currentText(),
                "precision": self.precision.currentText()}


class SidePanel(QWidget):
    """Everything right of the video. ``detection_selected(index or -1)`` on a list click."""

    detection_selected = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self.overlay = OverlayControls()
        self.stats = QLabel("-")
        self._last_stats: tuple[dict, dict, float] | None = None
        self.stats.setWordWrap(True)
        self.stats.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.stats.setToolTip(
            "Waiting for frames: how long reading the frame waited for it to come (a camera, "
            "a stream, or a file played in real time);\nfor a camera or stream its decoding "
            "is in it. The other times are the work done on the frame, in ms.")
        self.counts = QTableWidget(0, 3)
        self.counts.setHorizontalHeaderLabels(["class", "frame", "all frames"])
        self.counts.horizontalHeaderItem(2).setToolTip(
            "Shown detections summed over the frames seen since opening, each frame once")
        rows = self.counts.verticalHeader()
        rows.setVisible(False)
        rows.setMinimumSectionSize(1)
        rows.setDefaultSectionSize(self.fontMetrics().height() + 6)  # as dense as a list's
        self.counts.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.detections = QListWidget()
        self.track_info = QLabel()  # the selected track's span, when the viewer tracks
        self.track_info.setWordWrap(True)
        for table in (self.counts, self.detections):  # they take the room left, down to 70 px,
            table.setMinimumHeight(70)  # so the whole panel fits a 900-pixel-high screen
            table.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Ignored)
        # one above the other, each had two or three rows on a 900-pixel-high screen; as
        # tabs each gets the room of both
        self.tables = QTabWidget()
        self.tables.addTab(self.counts, "Classes (shown)")
        self.tables.setTabToolTip(0, "Detections the overlay shows, per class")
        self.tables.addTab(self.detections, "Detections")
        self.tables.setTabToolTip(1, "The detections shown in this frame; click one to "
                                     "highlight it")
        self.detector = DetectorControls()
        layout = QVBoxLayout(self)
        layout.addWidget(self.overlay)
        layout.addWidget(_boxed("Statistics", self.stats))
        layout.addWidget(self.tables, 1)
        layout.addWidget(self.track_info)
        layout.addWidget(self.detector)
        self.detections.currentRowChanged.connect(self.detection_selected)
        self.setMinimumWidth(260)

    def show_table(self, name: str) -> None:
        """Bring the "classes" or the "detections" tab to the front."""
        self.tables.setCurrentIndex(TABLES.index(name))

    def shown_table(self) -> str:
        return TABLES[self.tables.currentIndex()]

    def show_stats(self, stats: dict, timings: dict, latency_ms: float) -> None:
        """A frame's statistics; rates of None (a single frame shown, not played) read "-"."""
        self._last_stats = (stats, timings, latency_ms)
        # a non-breaking space: a narrow panel wraps between stages, never inside one
        stages = "  ".join(f"{s}\u00a0{timings[s]:.0f}" for s in PIPELINE_STAGES
                           if s in timings and s != "wait")
        wait = f"\nwaiting for frames {timings['wait']:.0f} ms" if "wait" in timings else ""
        self.stats.setText(
            f"input {rate(stats.get('input_fps'))}, detector {rate(stats.get('detector_fps'))}"
            f"\nlatency {latency_ms:.0f} ms, dropped {int(stats.get('dropped', 0))}{wait}"
            f"\nms: {stages or '-'}")

    def show_outage(self, state: str) -> None:
        """A live source lost (``state``, e.g. "LOST 8 s, reconnecting") or no longer (""):
        while it is lost no frame comes, so the last rates would stand; they read "-"
        instead."""
        if self._last_stats is None:
            return
        stats, timings, latency_ms = self._last_stats
        if not state:  # back (its frame's own figures follow) or stopped: the last ones
            self.show_stats(stats, timings, latency_ms)
            return
        self.show_stats(dict(stats, input_fps=None, detector_fps=None), timings, latency_ms)
        self.stats.setText(f"{state}\n{self.stats.text()}")

    def show_counts(self, shown: Detections, run: Counter, names: Sequence[str]) -> None:
        frame = Counter(int(c) for c in shown.class_ids)
        ids = sorted(set(frame) | set(run), key=lambda i: (-run.get(i, 0), i))
        self.counts.setRowCount(len(ids))
        for row, class_id in enumerate(ids):
            name = QTableWidgetItem(swatch(class_id, names), name_of(class_id, names))
            self.counts.setItem(row, 0, name)
            self.counts.setItem(row, 1, QTableWidgetItem(str(frame.get(class_id, 0))))
            self.counts.setItem(row, 2, QTableWidgetItem(str(run.get(class_id, 0))))

    def show_detections(self, shown: Detections, names: Sequence[str]) -> None:
        self.detections.blockSignals(True)
        self.detections.clear()
        for i in range(len(shown)):
            x1, y1, x2, y2 = (round(float(v)) for v in shown.xyxy[i])
            track = "" if shown.track_ids is None else f"#{shown.track_ids[i]} "
            text = (f"{track}{name_of(int(shown.class_ids[i]), names)} "
                    f"{shown.scores[i]:.2f}  ({x1}, {y1}, {x2}, {y2})")
            self.detections.addItem(QListWidgetItem(swatch(int(shown.class_ids[i]), names), text))
        self.detections.blockSignals(False)
        self.tables.setTabText(1, f"Detections ({len(shown)})")


def rate(fps: float | None) -> str:
    """A frame rate as the panel and the HUD print it: "-" where there is none to tell: not
    known yet (None), or 0, which the meters say once frames stopped coming (a folder's last
    frames detected after its reading ended, a lost stream) or before a second one came."""
    return f"{fps:.1f} fps" if fps else "- fps"


def _boxed(title: str, widget: QWidget) -> QGroupBox:
    box = QGroupBox(title)
    QVBoxLayout(box).addWidget(widget)
    return box
