"""Recording in the viewer: the REC button, what a recording holds and how long it lasts,
a file that cannot be finished, a second recording refused."""

from __future__ import annotations

import json
import time

import cv2
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from standins import BurstyStream, FixedDetector  # noqa: E402
from viewer_steps import play_to_the_end, two_boxes, video_times, wait_for_frame  # noqa: E402

from drivevision.detections import Detections  # noqa: E402
from drivevision.io.live_sinks import LiveVideoSink  # noqa: E402
from drivevision.labels import COCO_NAMES  # noqa: E402
from gui.recording import Recording  # noqa: E402

pytestmark = pytest.mark.timeout(60)


def red_share(widget) -> float:
    """How much of ``widget`` is painted a strong red."""
    image = widget.grab().toImage()
    pixels = [image.pixelColor(x, y) for x in range(0, image.width(), 2)
              for y in range(0, image.height(), 2)]
    return sum(c.red() > 150 and c.green() < 90 and c.blue() < 90 for c in pixels) / len(pixels)


def test_the_rec_button_shows_a_recording_is_running(qtbot, make_window, errors, clip_path,
                                                    tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    rec = window.transport.record
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    idle_text, idle_red = rec.text(), red_share(rec)
    window.start_recording(str(tmp_path / "rec.mp4"), str(tmp_path / "rec.jsonl"))
    qtbot.waitUntil(rec.isChecked, timeout=10000)
    assert idle_text == "Rec" and idle_red < 0.05
    assert rec.text().startswith("\u25cf Rec 00:0") and red_share(rec) > 0.5
    qtbot.waitUntil(lambda: rec.text() == "\u25cf Rec 00:01", timeout=5000)  # the time runs
    window.stop_recording()
    qtbot.waitUntil(lambda: not rec.isChecked(), timeout=10000)
    assert rec.text() == "Rec" and red_share(rec) < 0.05

    window.start_recording(str(tmp_path / "no" / "such" / "folder" / "rec.mp4"), None)
    qtbot.waitUntil(lambda: len(errors) == 1, timeout=10000)
    assert not rec.isChecked() and rec.text() == "Rec"  # it did not start


def record_to_the_end(qtbot, window, video) -> tuple[float, list[dict], object]:
    """Record ``video`` (and ``rec.jsonl`` beside it) while the open source plays to its end;
    returns the seconds it played, the JSONL records and the video's path."""
    wait_for_frame(qtbot, window, 0)
    jsonl = video.with_name("rec.jsonl")
    window.start_recording(str(video), str(jsonl))
    playing_s = play_to_the_end(qtbot, window)
    window.stop_recording()
    qtbot.waitUntil(jsonl.exists, timeout=10000)
    return playing_s, [json.loads(line) for line in jsonl.read_text().splitlines()], video


def test_recording_a_folder_of_images_names_each_image_file(qtbot, make_window, tmp_path):
    folder = tmp_path / "pics"
    folder.mkdir()
    for i in (1, 2, 10):  # natural order: 10 after 2
        cv2.imwrite(str(folder / f"p{i}.png"), np.full((48, 64, 3), i, np.uint8))
    window = make_window(FixedDetector(detections=two_boxes()))
    window.transport.every_frame.setChecked(True)
    window.open_source(str(folder))
    _, lines, _ = record_to_the_end(qtbot, window, tmp_path / "rec.mp4")
    # the image on show when recording started, then those played
    assert [(line["frame"], line["file"]) for line in lines] == [(0, "p1.png"), (1, "p2.png"),
                                                                   (2, "p10.png")]
    assert window.packet.frame.file == "p10.png"  # the frame shown keeps its file too


def test_frames_shown_by_steps_and_seeks_while_recording_are_recorded(qtbot, make_window,
                                                                        clip_path, tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    window.start_recording(str(video), str(jsonl))
    qtbot.waitUntil(window.transport.record.isChecked, timeout=10000)
    for index, move in ((1, lambda: window.step(1)), (2, lambda: window.step(1)),
                        (6, lambda: window.seek(6))):
        qtbot.wait(200)  # looked at for a while: a still in the video
        move()
        wait_for_frame(qtbot, window, index)
    qtbot.wait(200)
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()
    assert saved.args[0].startswith("saved 4 frames to ")  # the first on show at Rec
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["frame"] for line in lines] == [0, 1, 2, 6]
    times = video_times(video)  # and the last once more, at Stop
    assert len(times) == 5 and all(gap > 0.15 for gap in np.diff(times)), times


def test_a_recording_lasts_from_rec_to_stop_as_its_clock_says(qtbot, make_window, clip_path,
                                                               tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    asked = time.monotonic()
    with qtbot.waitSignal(window.worker.recording, timeout=10000):
        window.start_recording(str(video), str(jsonl))
    started = time.monotonic()
    qtbot.wait(1000)  # paused: frame 0 on show
    stepped = time.monotonic()
    window.step(1)
    wait_for_frame(qtbot, window, 1)
    qtbot.wait(1000)  # paused again before Stop
    clock = window.transport.record.text()
    stopping = time.monotonic()
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()
    stopped = time.monotonic()
    assert saved.args[0].startswith("saved 2 frames to ")
    assert [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()] == [0, 1]
    times = video_times(video)  # frame 0 from Rec, frame 1 from the step, held until Stop
    assert len(times) == 3 and times[1] - times[0] >= stepped - started, times
    assert stopping - started <= times[-1] - times[0] <= stopped - asked
    # the clock (whole seconds of tenths rounded, four updates a second) said as much
    assert clock.startswith("\u25cf Rec 00:0")
    assert -0.1 < times[-1] - times[0] - int(clock[-1]) < 1.3, (clock, times)


def test_a_recording_stopped_before_any_frame_names_no_video_it_did_not_write(
        qtbot, make_window, tmp_path):
    window = make_window(FixedDetector(detections=two_boxes()))  # nothing opened: no frame
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    window.start_recording(str(video), str(jsonl))
    qtbot.waitUntil(window.transport.record.isChecked, timeout=10000)
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()  # nothing shown meanwhile: no frame to record
    assert not video.exists() and jsonl.read_text() == ""
    assert saved.args[0] == f"nothing recorded: no frame was shown while recording ({jsonl} " \
                            "left empty)"
    assert window.statusBar().currentMessage() == saved.args[0]


def test_recording_while_frames_are_skipped_lasts_as_long_as_the_playing(
        qtbot, make_window, clip_path, tmp_path):
    window = make_window(FixedDetector(0.25, detections=two_boxes()))  # 4 detections/s on 10 fps
    window.transport.speed.setCurrentIndex(2)  # 1x, skipping frames the detector misses
    window.transport.every_frame.setChecked(False)
    window.open_source(clip_path)
    playing_s, lines, video = record_to_the_end(qtbot, window, tmp_path / "rec.mkv")
    assert lines[0]["frame"] == 0 and 3 <= len(lines) < 12, \
        "frame 0 on show at Rec, then the detector should have skipped frames"
    times = video_times(video)
    assert len(times) == len(lines) + 1  # the last frame once more at Stop: shown until then
    watched = (lines[-1]["timestamp_ms"] - lines[1]["timestamp_ms"]) / 1000.0
    # about 2.5 frames apart, so stamped at the clip's 10 fps the video would last 0.4x the
    # watching; a frame captured late on a loaded machine shortens it by that lateness only
    assert 0.7 * watched <= times[-2] - times[1] <= playing_s + 0.01
    # from Rec (sent just before Play) to Stop (after the end): at least the playing
    assert times[-1] - times[0] >= playing_s - 0.05


def test_recording_every_frame_lasts_as_long_as_the_clip(qtbot, make_window, tmp_path):
    from drivevision.synthetic import write_clip

    clip = tmp_path / "long.mp4"  # longer than the frames the pipeline reads ahead
    write_clip(clip, 40, width=160, height=96, fps=20.0)
    window = make_window(FixedDetector(0.1, detections=two_boxes()))  # half the clip's rate
    window.transport.every_frame.setChecked(True)  # waits for the detector
    window.open_source(str(clip))
    playing_s, lines, video = record_to_the_end(qtbot, window, tmp_path / "rec.mp4")
    times = video_times(video)
    assert len(times) == len(lines) == 40  # frame 0 on show at Rec, then 39 played
    clip_s = (lines[-1]["timestamp_ms"] - lines[0]["timestamp_ms"]) / 1000.0
    assert playing_s > 1.5 * clip_s
    assert abs((times[-1] - times[0]) - clip_s) < 0.01, (times[-1] - times[0], clip_s)


def test_recording_a_stream_with_its_own_clock_times_frames_by_it_not_by_arrival(
        qtbot, make_window, tmp_path, monkeypatch):
    stream = BurstyStream(bursts=3, per_burst=5)  # 10 fps, 5 frames 20 ms apart, then 0.4 s
    monkeypatch.setattr("gui.worker.open_media", lambda uri: stream)
    window = make_window(FixedDetector(detections=two_boxes()))
    window.open_source(stream.uri)  # live: plays at once
    wait_for_frame(qtbot, window, 0)
    video, jsonl = tmp_path / "rec.mkv", tmp_path / "rec.jsonl"
    window.start_recording(str(video), str(jsonl))
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        stream.go.set()
    window.stop_recording()
    qtbot.waitUntil(jsonl.exists, timeout=10000)
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert len(lines) > 3 + 1, "frames of one burst should have been recorded"
    stamps = np.array([line["timestamp_ms"] for line in lines]) / 1000.0
    times = np.array(video_times(video))
    assert len(times) == len(lines)
    # by arrival, frames of one burst would be 20 ms apart: here as far as their own times
    np.testing.assert_allclose(np.diff(times), np.diff(stamps), atol=0.0015)


def test_a_stream_with_its_own_clock_reopened_after_a_pause_records_the_pause_as_a_still(
        tmp_path):
    from drivevision.io.frames import Frame
    from drivevision.pipeline import Result
    from gui.overlay import OverlaySettings

    image = np.zeros((48, 64, 3), np.uint8)
    # (its own time in ms, arrival in s): a segment at once; paused 3 s; opened anew, its
    # times start again from 0
    frames = [(0.0, 10.0), (100.0, 10.01), (200.0, 10.02), (0.0, 13.02), (100.0, 13.03)]
    recording = Recording()
    recording.start(tmp_path / "rec.mkv", None, fps=10.0, names=COCO_NAMES)
    for i, (ms, arrived) in enumerate(frames):
        result = Result(Frame(i, ms, image, arrived), Detections.empty())
        recording.write(result, OverlaySettings(), COCO_NAMES, stream_clock=True)
    recording.stop()
    np.testing.assert_allclose(video_times(tmp_path / "rec.mkv"), [0, 0.1, 0.2, 3.2, 3.3],
                               atol=0.0015)


def _disk_full_on_finishing_video(monkeypatch) -> None:
    real = LiveVideoSink._finish

    def finish(self):
        real(self)  # the file is written up to its end ...
        raise OSError(28, "No space left on device")  # ... and then closing it fails

    monkeypatch.setattr(LiveVideoSink, "_finish", finish)


def _record_the_clip(qtbot, window, clip_path, video, jsonl) -> None:
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    window.start_recording(str(video), str(jsonl))
    window.transport.every_frame.setChecked(True)
    window.transport.speed.setCurrentIndex(4)
    with qtbot.waitSignal(window.worker.ended, timeout=20000):
        window.play()


def test_a_recording_file_that_cannot_be_finished_leaves_the_other_finished(
        qtbot, make_window, clip_path, tmp_path, monkeypatch, errors):
    _disk_full_on_finishing_video(monkeypatch)
    window = make_window(FixedDetector(detections=two_boxes()))
    video, jsonl = tmp_path / "rec.mp4", tmp_path / "rec.jsonl"
    _record_the_clip(qtbot, window, clip_path, video, jsonl)
    with qtbot.waitSignal(window.worker.recorded, timeout=10000) as saved:
        window.stop_recording()
    message = saved.args[0]
    assert message.startswith("recording failed: No space left on device")
    assert "what was written is kept in " + str(tmp_path / "rec.partial.mp4") in message
    assert len(jsonl.read_text().splitlines()) == 12  # finished and in place all the same
    assert (tmp_path / "rec.partial.mp4").exists() and not video.exists()
    assert window.worker.is_running() and errors == []


def test_closing_while_recording_closes_the_media_even_when_a_file_fails(
        qtbot, make_window, clip_path, tmp_path, monkeypatch, errors):
    _disk_full_on_finishing_video(monkeypatch)
    window = make_window(FixedDetector(detections=two_boxes()))
    jsonl = tmp_path / "rec.jsonl"
    _record_the_clip(qtbot, window, clip_path, tmp_path / "rec.mp4", jsonl)
    media = window.worker.media
    window.close()  # the worker's last act: finish the recording, close the media
    assert not window.worker.is_running()
    assert not media._cap.isOpened()
    assert len(jsonl.read_text().splitlines()) == 12


def test_starting_a_second_recording_is_refused_and_keeps_the_first(tmp_path):
    recording = Recording()
    first = recording.start(tmp_path / "a.mp4", tmp_path / "a.jsonl", fps=10.0,
                            names=COCO_NAMES)
    assert first.startswith("recording to")
    with pytest.raises(RuntimeError, match="Already recording to .*a.mp4"):
        recording.start(tmp_path / "b.mp4", None, fps=10.0, names=COCO_NAMES)
    assert recording.stop() == ("nothing recorded: no frame was shown while recording "
                                f"({tmp_path / 'a.jsonl'} left empty)")
    assert (tmp_path / "a.jsonl").exists() and not (tmp_path / "b.mp4").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.jsonl"]  # nothing left open
