"""Steps and checks the viewer tests share: two fixed boxes, waiting for a frame or the
end, a recorded video's frame times, the MJPEG server's frame on show, a painted colour."""

from __future__ import annotations

import time

import av
from mjpeg_server import read_seq

from drivevision.detections import Detections

CAR, PERSON = 3, 1


def two_boxes() -> Detections:
    return Detections([[20, 20, 80, 70], [110, 30, 180, 90]], [0.9, 0.3], [CAR, PERSON])


def wait_for_frame(qtbot, window, index: int, timeout: int = 20000) -> None:
    qtbot.waitUntil(lambda: window.packet is not None and window.packet.frame.index == index,
                    timeout=timeout)


def painted_rgb(window, x: float, y: float) -> tuple[int, int, int]:
    """The colour the video widget painted at frame pixel (x, y)."""
    grab = window.view.grab().toImage()
    rect = window.view.image_rect()
    scale = rect.width() / window.view.image().width()
    colour = grab.pixelColor(round(rect.x() + x * scale), round(rect.y() + y * scale))
    return colour.red(), colour.green(), colour.blue()


def near(rgb, bgr, tol: int = 40) -> bool:
    return all(abs(a - b) <= tol for a, b in zip(rgb, bgr[::-1]))


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
