"""The viewer on damaged input: a folder with damaged images, a video that stops decoding
early; it shows and plays what can be read and says what cannot."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from standins import FixedDetector  # noqa: E402
from viewer_steps import play_to_the_end, two_boxes, wait_for_frame  # noqa: E402

pytestmark = pytest.mark.timeout(60)


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
