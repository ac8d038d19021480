"""The viewer's media and worker: the library reader's frame times, its pacing, and a
close that waits for a busy worker."""

from __future__ import annotations

import threading
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from standins import FixedDetector  # noqa: E402
from viewer_steps import two_boxes  # noqa: E402

pytestmark = pytest.mark.timeout(60)


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
