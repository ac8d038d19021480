"""The video widget: paints the newest frame scaled to fit (aspect kept) and a HUD on top."""

from __future__ import annotations

from PyQt6.QtCore import QPointF, QRectF, QSize, Qt, pyqtSignal
from PyQt6.QtGui import QColor, QFont, QImage, QMouseEvent, QPainter, QPaintEvent
from PyQt6.QtWidgets import QSizePolicy, QWidget

EMPTY_MESSAGE = "Open a file, folder, camera or stream (Ctrl+O), or drop a file here"


def fit_rect(image: QSize, area: QSize) -> QRectF:
    """The largest rectangle with ``image``'s aspect ratio centred in ``area``."""
    if image.isEmpty() or area.isEmpty():
        return QRectF()
    scale = min(area.width() / image.width(), area.height() / image.height())
    w, h = image.width() * scale, image.height() * scale
    return QRectF((area.width() - w) / 2, (area.height() - h) / 2, w, h)


class VideoView(QWidget):
    """Shows one RGB QImage and a few HUD lines; ``clicked`` gives image pixel coordinates."""

    clicked = pyqtSignal(float, float)

    def __init__(self, parent: QWidget | None = None):
        super().__init__(parent)
        self._image = QImage()
        self._hud: list[str] = []
        self.hud_visible = True
        self.setMinimumSize(320, 180)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)
        self.setAttribute(Qt.WidgetAttribute.WA_OpaquePaintEvent)

    def set_image(self, image: QImage) -> None:
        self._image = image
        self.update()  # coalesced by Qt: many calls before the next paint give one paint

    def image(self) -> QImage:
        return self._image

    def set_hud(self, lines: list[str]) -> None:
        self._hud = lines
        self.update()

    def image_rect(self) -> QRectF:
        return fit_rect(self._image.size(), self.size())

    def sizeHint(self) -> QSize:  # noqa: N802 - Qt's name
        return QSize(960, 540)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 - Qt's name
        painter = QPainter(self)
        painter.fillRect(self.rect(), QColor(24, 24, 24))
        if self._image.isNull():
            painter.setPen(QColor(200, 200, 200))
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, EMPTY_MESSAGE)
        else:
            painter.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform)
            painter.drawImage(self.image_rect(), self._image)
            if self.hud_visible and self._hud:
                self._paint_hud(painter)
        painter.end()

    def _paint_hud(self, painter: QPainter) -> None:
        font = QFont(self.font())
        font.setStyleHint(QFont.StyleHint.Monospace)
        font.setFamily("monospace")
        painter.setFont(font)
        metrics = painter.fontMetrics()
        width = max(metrics.horizontalAdvance(line) for line in self._hud) + 12
        height = metrics.height() * len(self._hud) + 8
        painter.fillRect(QRectF(8, 8, width, height), QColor(0, 0, 0, 150))
        painter.setPen(QColor(240, 240, 240))
        for i, line in enumerate(self._hud):
            painter.drawText(QPointF(14, 12 + metrics.ascent() + i * metrics.height()), line)

    def mousePressEvent(self, event: QMouseEvent) -> None:  # noqa: N802 - Qt's name
        rect = self.image_rect()
        pos = event.position()
        if rect.isEmpty() or not rect.contains(pos):
            return
        scale = self._image.width() / rect.width()
        self.clicked.emit((pos.x() - rect.x()) * scale, (pos.y() - rect.y()) * scale)
