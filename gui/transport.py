"""The bar under the video: play/pause, step, seek slider with time, speed, record, screenshot."""

from __future__ import annotations

from PyQt6.QtCore import Qt
from PyQt6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QToolButton,
    QWidget,
)

SPEEDS = (0.25, 0.5, 1.0, 2.0, 4.0)
RECORDING_STYLE = ("QToolButton { background: #c62828; color: white; font-weight: bold; "
                   "border-radius: 3px; padding: 2px 6px; }")


EVERY_FRAME_TIP = ("Show every frame (waits for the detector) instead of keeping real time "
                   "and skipping frames")
LIVE_TIP = "A live source always shows its newest frame: frames the detector misses are skipped"


def format_time(ms: float) -> str:
    seconds = max(ms, 0.0) / 1000.0
    return f"{int(seconds // 60):02d}:{seconds % 60:04.1f}"


class TransportBar(QWidget):
    """Controls only; the main window connects them to the worker."""

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        style = self.style()
        self.play = self._button(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay),
                                 "Play / pause (Space)")
        self.back = self._button(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward),
                                 "One frame back (Left)")
        self.forward = self._button(
            style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward),
            "One frame forward (Right)")
        self.seek = QSlider(Qt.Orientation.Horizontal)
        self.seek.setEnabled(False)
        self._count, self._fps = 0, None  # the media's, for the labels while dragging
        self.seek.sliderMoved.connect(self._dragged)
        self.time = QLabel("--:--.- / --:--.-")
        self.frame = QLabel("frame - / -")
        self.speed = QComboBox()
        self.speed.addItems([f"{s:g}x" for s in SPEEDS])
        self.speed.setCurrentIndex(SPEEDS.index(1.0))
        self.speed.setToolTip("Playback speed (+ / -)")
        self.every_frame = QCheckBox("Every frame")
        self.every_frame.setToolTip(EVERY_FRAME_TIP)
        self._every_frame_wanted = False  # the user's choice, kept while a live source shows
        self.record = self._button(style.standardIcon(QStyle.StandardPixmap.SP_DialogSaveButton),
                                   "Record the annotated stream and detections")
        self.record.setCheckable(True)
        self.record.setText("Rec")
        self.record.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        for widget in (self.back, self.play, self.forward):
            layout.addWidget(widget)
        layout.addWidget(self.seek, 1)
        for widget in (self.time, self.frame, self.speed, self.every_frame, self.record):
            layout.addWidget(widget)

    def _button(self, icon, tip: str) -> QToolButton:
        button = QToolButton()
        button.setIcon(icon)
        button.setToolTip(tip)
        return button

    def set_recording(self, seconds: float | None) -> None:
        """``seconds`` recorded so far: the Rec button is pressed, red, with the time; None:
        not recording. Emits nothing."""
        self.record.blockSignals(True)
        self.record.setChecked(seconds is not None)
        self.record.blockSignals(False)
        if seconds is None:
            self.record.setText("Rec")
            self.record.setStyleSheet("")
        else:
            self.record.setText(f"\u25cf Rec {format_time(seconds * 1000.0)[:-2]}")
            self.record.setStyleSheet(RECORDING_STYLE)

    def set_playing(self, playing: bool) -> None:
        icons = QStyle.StandardPixmap
        pixmap = icons.SP_MediaPause if playing else icons.SP_MediaPlay
        self.play.setIcon(self.style().standardIcon(pixmap))

    def speed_value(self) -> float:
        return SPEEDS[self.speed.currentIndex()]

    def change_speed(self, steps: int) -> None:
        index = min(max(self.speed.currentIndex() + steps, 0), len(SPEEDS) - 1)
        self.speed.setCurrentIndex(index)

    def set_live(self, live: bool) -> None:
        """A live source cannot be sought or shown frame by frame: the slider's handle
        stays at the start and "Every frame" is off and disabled (the file's choice comes
        back with the next file). Emits nothing."""
        if live == (not self.every_frame.isEnabled()):
            return
        self.every_frame.blockSignals(True)
        if live:
            self._every_frame_wanted = self.every_frame.isChecked()
            self.every_frame.setChecked(False)
            self.seek.blockSignals(True)
            self.seek.setRange(0, 0)
            self.seek.blockSignals(False)
        else:
            self.every_frame.setChecked(self._every_frame_wanted)
        self.every_frame.setEnabled(not live)
        self.every_frame.setToolTip(LIVE_TIP if live else EVERY_FRAME_TIP)
        self.every_frame.blockSignals(False)

    def every_frame_choice(self) -> bool:
        """"Every frame" as the user set it for files (also while a live source shows)."""
        return self.every_frame.isChecked() if self.every_frame.isEnabled() \
            else self._every_frame_wanted

    def set_position(self, index: int, count: int, ms: float, fps: float | None,
                     readable: int = 0) -> None:
        """Move the slider without emitting seeks, and update the time and frame labels.
        ``readable``: where the media was found to end before its ``count`` frames (a video
        cut short), the frames the slider reaches."""
        self.seek.blockSignals(True)
        if count > 0:
            self.seek.setRange(0, (readable or count) - 1)
        if count > 0 and not self.seek.isSliderDown():  # live (no count): the handle stays
            self.seek.setValue(index)
        self.seek.blockSignals(False)
        self._count, self._fps = count, fps
        if not self.seek.isSliderDown():  # while dragging, the labels tell the handle's place
            self._show_labels(index, ms)

    def limit(self, readable: int) -> None:
        """The media was found to end after ``readable`` frames (0: not before its count):
        the slider reaches no further. Emits nothing."""
        if 0 < readable <= self.seek.maximum():
            self.seek.blockSignals(True)
            self.seek.setMaximum(readable - 1)
            self.seek.blockSignals(False)

    def _dragged(self, index: int) -> None:
        """The handle dragged to ``index``: the labels follow it (the frame shows on release)."""
        if self._count:
            self._show_labels(index, index * 1000.0 / self._fps if self._fps else None)

    def _show_labels(self, index: int, ms: float | None) -> None:
        count, fps = self._count, self._fps
        total = format_time(count * 1000.0 / fps) if count and fps else "live"
        now = "--:--.-" if ms is None else format_time(ms)
        self.time.setText(f"{now} / {total}")
        self.frame.setText(f"frame {index + 1} / {count or '-'}")
