"""Video files and image folders as sources: frames upright and in order, cut or damaged
files noted, read again from the start, paced in real time, frame strides."""

from __future__ import annotations

import re
import time

import av
import cv2
import numpy as np
import pytest
from standins import ArraySource

from drivevision.io.frames import Gap
from drivevision.io.images import frame_time_ms
from drivevision.io.sources import open_source
from drivevision.io.streams import RealtimeSource, Reconnect, StreamSource


def test_files_and_folders_open_as_before(clip_path, tmp_path):
    with open_source(clip_path) as source:
        frames = list(source)
    assert len(frames) == 12 and not source.live
    for i in range(3):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), frames[i].image)
    with open_source(f"file://{tmp_path}", fps=5.0) as folder:
        assert [f.timestamp_ms for f in folder] == [0.0, 200.0, 400.0]


@pytest.mark.parametrize("rotation", [90, -90, 180])
def test_a_phone_video_with_a_display_rotation_is_read_upright(tmp_path, rotation):
    upright = np.zeros((48, 32, 3), np.uint8)  # a portrait frame, bright in its top left
    upright[:16, :16] = 255
    stored = np.ascontiguousarray(np.rot90(upright, -rotation // 90))  # as the phone stores it
    path = tmp_path / "phone.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=10)
        stream.width, stream.height, stream.pix_fmt = stored.shape[1], stored.shape[0], "yuv444p"
        stream.set_display_rotation(rotation)  # what a player turns it by
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(stored, format="bgr24")),
                       *stream.encode()]:
            out.mux(packet)
    with open_source(str(path)) as source:
        image = next(iter(source)).image
    assert image.shape == upright.shape
    assert image[:16, :16].mean() > 200 and image[16:, :].mean() < 50 and image[:, 16:].mean() < 50


@pytest.mark.parametrize("muxer", ["mpegts", "mp4"])
def test_a_video_cut_before_its_first_keyframe_says_how_many_frames_did_not_decode(
        clip_path, tmp_path, muxer):
    whole = tmp_path / "whole.mp4"
    with open_source(clip_path) as source, av.open(str(whole), "w") as out:
        stream = out.add_stream("libx264", rate=10, options={"g": "6", "sc_threshold": "0"})
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for frame in source:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")))
        out.mux(stream.encode())
    cut = tmp_path / f"cut.{muxer}"
    with av.open(str(whole)) as src, av.open(str(cut), "w", format=muxer) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        packets = [p for p in src.demux(video=0) if p.dts is not None]
        for packet in packets[3:]:  # from a frame predicted from the keyframe cut away
            packet.stream = stream
            out.mux(packet)
    with open_source(str(cut)) as source:
        frames = list(source)
    first = frames[0].index
    assert 0 < first < 6 and [f.index for f in frames] == list(range(first, first + len(frames)))
    assert source.notes == [f"{cut}: the first {first} frames could not be decoded (the video "
                            "starts without a keyframe, as a recording cut mid-stream does); "
                            f"the first frame read is frame {first}"]


@pytest.mark.parametrize("muxer", ["matroska", "webm"])
def test_a_video_cut_short_that_stores_no_frame_count_says_where_it_stopped(
        clip_path, tmp_path, muxer):
    """MKV and WebM store their length, not their frame count: a copy cut short reads to
    where its data ends, and says so instead of ending as if complete."""
    whole = tmp_path / f"whole.{muxer}"
    codec = "libx264" if muxer == "matroska" else "libvpx-vp9"
    with open_source(clip_path) as source, av.open(str(whole), "w", format=muxer) as out:
        stream = out.add_stream(codec, rate=10)
        stream.width, stream.height, stream.pix_fmt = 640, 360, "yuv420p"
        for frame in source:
            out.mux(stream.encode(av.VideoFrame.from_ndarray(frame.image, format="bgr24")))
        out.mux(stream.encode())
    data = whole.read_bytes()
    cut = tmp_path / f"cut.{muxer}"
    cut.write_bytes(data[:len(data) // 2])
    with open_source(str(whole)) as source:
        assert len(list(source)) == 12 and source.notes == []
    with open_source(str(cut)) as source:
        frames = list(source)
    assert 0 < len(frames) < 12
    reached = (frames[-1].timestamp_ms + 100) / 1000  # the end of the last frame read
    assert source.notes == [f"{cut}: decoding stopped at {reached:.1f} s of the 1.2 s the "
                            "file states; the file looks truncated or damaged"]


def test_a_video_read_again_after_a_peek_or_to_its_end_starts_from_its_first_frame(clip_path):
    with open_source(clip_path) as source:
        peeked = next(iter(source))  # e.g. for the frame size, before a pipeline reads it
        again, third = list(source), list(source)
    assert peeked.index == 0 and peeked.timestamp_ms == 0.0
    for frames in (again, third):
        assert [f.index for f in frames] == list(range(12))
        assert [f.timestamp_ms for f in frames] == [frame_time_ms(i, 10.0) for i in range(12)]
        assert np.array_equal(frames[0].image, peeked.image)
    with open_source(clip_path) as source:
        source.keep_range(0.3, 0.8)
        spans = [([f.index for f in source], source.span) for _ in range(2)]
    assert spans[0] == spans[1] == (list(range(3, 8)), (3, 7))


def test_a_folder_read_again_after_a_peek_notes_a_damaged_image_once(tmp_path):
    for i in range(4):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((16, 16, 3), 60 * i, np.uint8))
    (tmp_path / "f1.png").write_bytes(b"not a png")
    with open_source(tmp_path) as source:
        peek = iter(source)
        assert [next(peek).index, next(peek).index] == [0, 2]  # past the damaged f1.png
        peek.close()
        assert [f.index for f in source] == [0, 2, 3]
        assert len(source.notes) == 1 and "f1.png" in source.notes[0]


def test_realtime_file_is_paced_at_its_frame_rate(clip_path):
    with open_source(clip_path, realtime=True) as source:
        assert isinstance(source, RealtimeSource) and source.live
        start = time.monotonic()
        frames = list(source)
    assert len(frames) == 12
    assert time.monotonic() - start >= 1.05  # 12 frames at 10 fps: the last one is due at 1.1 s
    gaps = [b.captured_at - a.captured_at for a, b in zip(frames, frames[1:])]
    assert min(gaps) > 0.07


@pytest.mark.parametrize("kind", ["file", "folder", "realtime folder", "own source"])
def test_sources_that_cannot_lose_their_input_report_no_outage(kind, clip_path, tmp_path):
    with open_source(clip_path) as video:
        cv2.imwrite(str(tmp_path / "a.png"), next(iter(video)).image)
    make = {"file": lambda: open_source(clip_path),
            "folder": lambda: open_source(str(tmp_path)),
            "realtime folder": lambda: open_source(str(tmp_path), realtime=True),
            "own source": lambda: ArraySource(3)}[kind]
    with make() as source:
        assert len(list(source)) > 0
    assert source.gaps == [] and source.reconnects == 0 and source.outage_since is None
    assert source.gave_up is False and source.lost_seconds == 0.0


def test_lost_seconds_adds_up_every_gap():
    source = ArraySource(1)
    source.gaps += [Gap(4, 5, 1000.0, 3500.0, "the stream ended or failed", 2),
                    Gap(9, None, 6000.0, 6250.0, "no frame for 5 s", 1)]
    assert source.lost_seconds == pytest.approx(2.75)
    assert ArraySource(1).gaps == []  # every source has its own list


@pytest.mark.parametrize("index, fps, position_ms, expected", [
    (0, 10.0, 0.0, 0.0), (3, 10.0, 0.0, 300.0), (3, 10.0, -1.0, 300.0), (3, 10.0, 290.5, 290.5),
    (2, 4.0, 0.0, 500.0),
])
def test_frame_time_is_the_containers_or_index_over_fps(index, fps, position_ms, expected):
    assert frame_time_ms(index, fps, position_ms) == expected


def test_a_frame_stride_keeps_every_kth_frame_of_a_video_at_its_own_index_and_time(
        clip_path, monkeypatch):
    from drivevision.io import files

    with open_source(clip_path) as source:
        every = {f.index: f.timestamp_ms for f in source}
    converted = []
    monkeypatch.setattr(files, "to_bgr", lambda frame: converted.append(frame) or
                        frame.to_ndarray(format="bgr24"))
    with open_source(clip_path) as source:
        source.keep_every(5)
        frames = list(source)
    assert [f.index for f in frames] == [0, 5, 10]
    assert [f.timestamp_ms for f in frames] == [every[0], every[5], every[10]]
    assert len(converted) == 3  # the frames passed over are never converted to BGR
    assert source.passed == 9 and source.notes == []  # 12 frames, none called missing


def test_a_frame_stride_on_a_folder_never_opens_the_images_passed_over(clip_path, tmp_path):
    with open_source(clip_path) as video:
        images = [f.image for f, _ in zip(video, range(5))]
    for i, image in enumerate(images):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), image)
    (tmp_path / "f1.png").write_bytes(b"not an image")  # passed over: no note about it
    with open_source(str(tmp_path), fps=5.0) as folder:
        folder.keep_every(2)
        frames = list(folder)
    assert [(f.index, f.file, f.timestamp_ms) for f in frames] == [
        (0, "f0.png", 0.0), (2, "f2.png", 400.0), (4, "f4.png", 800.0)]
    assert folder.passed == 2 and folder.notes == []


@pytest.mark.parametrize("stride, message", [
    (0, "Expected a frame stride >= 1 (an int), but got 0"),
    (-2, "Expected a frame stride >= 1 (an int), but got -2"),
    (1.5, "Expected a frame stride >= 1 (an int), but got 1.5"),
])
def test_a_frame_stride_below_one_is_refused(clip_path, stride, message):
    with open_source(clip_path) as source, pytest.raises(ValueError, match=re.escape(message)):
        source.keep_every(stride)


def test_a_frame_stride_is_refused_for_live_sources_which_drop_frames_by_themselves(clip_path):
    with open_source(clip_path, realtime=True) as paced:
        paced.keep_every(1)  # every frame: nothing to refuse
        with pytest.raises(ValueError, match="is read live .* which drops frames by itself"):
            paced.keep_every(2)
    stream = StreamSource("rtsp://cam", cv2.VideoCapture, Reconnect())
    with pytest.raises(ValueError, match="drops frames by itself"):
        stream.keep_every(3)


QUIET_CLOSE = """
import itertools, sys
import av.logging
from drivevision.cli.options import quiet_opencv
from drivevision.io.sources import open_source
quiet_opencv()  # what every command does first
for _ in range(5):
    source = open_source(sys.argv[1])
    frames = iter(source)
    for _ in itertools.islice(frames, 3):
        pass
    frames.close()  # a consumer stopping early, the decoder's threads in the damage
    source.close()
print("closed; PyAV logging", av.logging.get_level())
"""


@pytest.mark.timeout(120)
def test_a_damaged_video_closed_early_prints_nothing_and_pyav_logging_stays_off(tmp_path):
    """FFmpeg's complaints about damage stay unprinted without PyAV's logging: given any
    level, PyAV calls into Python from FFmpeg's decoding threads, and a close holding the
    GIL can wait for them forever (PyAV's docs warn of it; a level of PANIC hung 2 of 3
    runs of this loop at exit when set before the sources were imported)."""
    import subprocess
    import sys

    import av

    rng = np.random.default_rng(0)
    clip = tmp_path / "noise.mp4"
    with av.open(str(clip), "w") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 192, "yuv420p"
        for _ in range(40):
            image = rng.integers(0, 255, (192, 320, 3), dtype=np.uint8)
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        out.mux(stream.encode())
    data = bytearray(clip.read_bytes())
    for i in range(len(data) // 3, len(data), 2000):
        data[i] ^= 0xFF
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(bytes(data))
    done = subprocess.run([sys.executable, "-c", QUIET_CLOSE, str(damaged)],
                          capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "closed; PyAV logging None" and done.stderr == ""
