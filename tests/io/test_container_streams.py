"""What a file's streams say about it: a second video stream named (the first read), a
raw elementary stream timed at the rate it states or at an assumed one."""

from __future__ import annotations

import contextlib
import time

import numpy as np
import pytest
from standins import FixedDetector
from written_media import served, write_raw, write_two_streams

from drivevision.io.sources import open_source
from drivevision.pipeline.runner import detect_video
from drivevision.synthetic import write_clip


@pytest.mark.parametrize("how", ["file", "realtime", "http"])
def test_a_second_video_stream_is_named_and_the_first_is_read(tmp_path, how):
    write_two_streams(tmp_path / "two.mkv")
    uri = str(tmp_path / "two.mkv")
    with contextlib.ExitStack() as stack:
        if how == "http":
            uri = f"{stack.enter_context(served(tmp_path))}/two.mkv"
        source = stack.enter_context(open_source(uri, realtime=how == "realtime"))
        frames = list(source)
    assert source.about == ["2 video streams: reading the first, #0 160x120 h264; not read: "
                            "#1 320x240 h264"]
    assert len(frames) == 6 and not source.notes  # nothing wrong with the input
    assert all(f.image.shape == (120, 160, 3) and f.image.mean() < 100 for f in frames)


def test_a_video_with_one_stream_says_nothing_about_it(clip_path):
    with open_source(clip_path) as source:
        assert source.about == []


@pytest.mark.parametrize("codec, suffix, name", [("libx264", "h264", "H.264"),
                                                 ("libx265", "h265", "H.265")])
def test_a_raw_stream_is_timed_at_the_rate_it_states_not_at_25_fps(tmp_path, codec, suffix,
                                                                    name):
    path = tmp_path / f"drive.{suffix}"
    write_raw(path, codec, fps=10)
    with open_source(str(path)) as source:
        times = [f.timestamp_ms for f in source]
    assert source.fps == 10 and times == [i * 100.0 for i in range(12)]
    assert source.about == [f"a raw {name} stream (no container, no frame times): timed at 10 "
                            "fps, the rate the stream states"]
    with open_source(str(path), realtime=True) as paced:  # paced at 10 fps, not 25
        start = time.monotonic()
        assert len(list(paced)) == 12 and time.monotonic() - start > 1.0


def test_a_raw_stream_with_no_rate_in_it_says_the_rate_is_assumed_and_how_to_set_it(tmp_path):
    write_raw(tmp_path / "cam.mjpeg", "mjpeg", fps=10, frames=3)
    with open_source(str(tmp_path / "cam.mjpeg")) as source:
        assert [f.timestamp_ms for f in source] == [0.0, 40.0, 80.0]
    assert source.fps == 25 and not source.notes
    assert source.about == ["a raw MJPEG stream (no container, no frame times, no rate in it): "
                            "timed at 25 fps, FFmpeg's default; give the camera's rate with "
                            "--fps (e.g. --fps 30)"]


def test_an_h264_avi_reads_each_frame_once_in_order_at_its_rate(tmp_path):
    # AVI stores no presentation times: its packets count in decode order, and frames the
    # decoder reorders (B-frames) came with other packets' times: frames 2 and 8 of 20 went
    # missing, indices ran to 21, timestamps to 3.8 s, with a note of a clock jumping back
    write_clip(tmp_path / "drive.mp4", 20, width=160, height=96, seed=3)
    write_clip(tmp_path / "drive.avi", 20, width=160, height=96, seed=3)
    with open_source(str(tmp_path / "drive.mp4")) as source:
        mp4 = list(source)
    with open_source(str(tmp_path / "drive.avi")) as source:
        avi = list(source)
        notes = list(source.notes)
    assert [f.index for f in avi] == list(range(20)) and notes == []
    assert [f.timestamp_ms for f in avi] == [i * 100.0 for i in range(20)]
    for a, m in zip(avi, mp4):  # the same picture as the MP4's frame of that index
        diff = np.abs(a.image.astype(int) - m.image.astype(int)).mean()
        assert diff < 4, (a.index, diff)
    with open_source(str(tmp_path / "drive.avi")) as source:
        source.keep_range(0.75, 1.5)  # a seek to the keyframe before, then read on
        assert [(f.index, f.timestamp_ms) for f in source] == [(i, i * 100.0)
                                                              for i in range(8, 15)]


def test_an_avi_this_project_wrote_reads_back_at_the_times_of_its_input(tmp_path):
    # (its H.264 has no B-frames, but FFmpeg dates AVI frames one frame late: read back,
    # frame 0 was at 100 ms)
    write_clip(tmp_path / "in.mp4", 12, width=160, height=96, seed=4)
    detect_video(str(tmp_path / "in.mp4"), tmp_path / "out.avi", detector=FixedDetector())
    with open_source(str(tmp_path / "out.avi")) as source:
        assert [(f.index, f.timestamp_ms) for f in source] == [(i, i * 100.0)
                                                              for i in range(12)]
