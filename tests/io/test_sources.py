"""Source URIs, GStreamer strings, fail-fast errors, and live stream sources on loopback."""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import pickle
import re
import socket
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from mjpeg_server import MjpegTestServer, read_seq, read_tint
from standins import ArraySource

from drivevision.errors import SourceError
from drivevision.io.frames import Gap
from drivevision.io.images import frame_time_ms
from drivevision.io.sources import open_source
from drivevision.io.streams import RealtimeSource, Reconnect, StreamSource
from drivevision.io.uri import csi_pipeline, ffmpeg_capture_options, parse_uri

HAS_GSTREAMER = cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER)
FAST = Reconnect(stall_timeout=0.5, backoff_initial=0.05, backoff_max=0.2)


@pytest.mark.parametrize("uri, kind, target, transport", [
    ("0", "camera", 0, None),
    ("2", "camera", 2, None),
    ("/dev/video1", "camera", "/dev/video1", None),
    ("rtsp://cam.local:8554/live", "rtsp", "rtsp://cam.local:8554/live", "tcp"),
    ("rtsp://cam/live?transport=udp&id=3", "rtsp", "rtsp://cam/live?id=3", "udp"),
    ("rtsps://cam/live?transport=TCP", "rtsp", "rtsps://cam/live", "tcp"),
    ("http://127.0.0.1:8080/video.mjpg", "http", "http://127.0.0.1:8080/video.mjpg", None),
    ("https://example.org/live/index.m3u8", "http", "https://example.org/live/index.m3u8", None),
    ("csi://1", "csi", 1, None),
    ("gst:videotestsrc ! videoconvert ! appsink", "gst", "videotestsrc ! videoconvert ! appsink",
     None),
    ("file:///data/drive.mp4", "path", "/data/drive.mp4", None),
    ("clips/drive.mp4", "path", "clips/drive.mp4", None),
    ("/data/frames", "path", "/data/frames", None),
])
def test_parse_uri(uri, kind, target, transport):
    spec = parse_uri(uri)
    assert (spec.kind, spec.target, spec.transport) == (kind, target, transport)
    assert spec.network == (kind in ("rtsp", "http"))


def test_rtsp_transport_default_and_query():
    assert parse_uri("rtsp://cam/live", transport="udp").transport == "udp"
    assert parse_uri("rtsp://cam/live?transport=tcp", transport="udp").transport == "tcp"


@pytest.mark.parametrize("uri, message", [
    ("ftp://host/video.mp4", "Unknown source scheme 'ftp://'"),
    ("webcam://0", "Unknown source scheme 'webcam://'"),
    ("csi://left", "Expected csi://N"),
    ("gst:videotestsrc ! fakesink", "ends in appsink"),
    ("rtsp://cam/live?transport=quic", "tcp or udp"),
    ("http:///path", "Expected a host"),
    ("rtsp:///live", "Expected a host in 'rtsp:///live'"),
    # the source named, with what a URL needs, not urllib's bare "Invalid IPv6 URL"
    ("http://[::1/stream", r"Expected http://HOST:PORT/PATH .*'http://\[::1/stream'"),
    ("rtsp://cam:99999/live", r"Expected rtsp://HOST:PORT/PATH .*'rtsp://cam:99999/live'"),
    ("http://cam:eighty/x", r"Expected http://HOST:PORT/PATH .*'http://cam:eighty/x'"),
    ("http://cam:0/x", "Expected a port from 1 to 65535 in 'http://cam:0/x'"),
    ("  ", "empty string"),
])
def test_bad_uri_is_one_clear_value_error(uri, message):
    with pytest.raises(ValueError, match=message) as info:
        parse_uri(uri)
    assert "\n" not in str(info.value)


def test_unknown_scheme_lists_what_is_expected():
    with pytest.raises(ValueError) as info:
        open_source("ftp://host/video.mp4")
    for form in ("camera index", "/dev/videoN", "rtsp://", "http(s)://", "csi://N", "gst:"):
        assert form in str(info.value)


def test_csi_pipeline_string():
    text = csi_pipeline(1, width=1920, height=1080, fps=29.97, flip=2)
    elements = [e.strip() for e in text.split("!")]
    assert elements[0] == "nvarguscamerasrc sensor-id=1"
    assert elements[1] == ("video/x-raw(memory:NVMM), width=1920, height=1080, "
                           "framerate=30000/1001, format=NV12")
    assert elements[2] == "nvvidconv flip-method=2"
    assert "format=BGRx" in elements[3] and elements[4] == "videoconvert"
    assert elements[5] == "video/x-raw, format=BGR"
    assert elements[6] == "appsink drop=true max-buffers=1 sync=false"
    assert "framerate=60/1" in csi_pipeline(0, width=1280, height=720, fps=60)


@pytest.mark.parametrize("kwargs", [{"width": 0}, {"fps": 0}, {"flip": 8}])
def test_csi_pipeline_rejects_bad_settings(kwargs):
    with pytest.raises(ValueError, match="Expected"):
        csi_pipeline(0, **kwargs)


@pytest.mark.parametrize("transport, existing, expected", [
    ("tcp", None, "rtsp_transport;tcp"),
    ("udp", "stimeout;5000000", "stimeout;5000000|rtsp_transport;udp"),
    ("udp", "rtsp_transport;tcp|max_delay;0", "rtsp_transport;tcp|max_delay;0"),
    (None, None, None),
])
def test_ffmpeg_capture_options(transport, existing, expected):
    assert ffmpeg_capture_options(transport, existing) == expected


@pytest.mark.skipif(HAS_GSTREAMER, reason="this OpenCV has GStreamer: csi:// would try a camera")
@pytest.mark.parametrize("uri", ["csi://0", "gst:videotestsrc ! videoconvert ! appsink"])
def test_gstreamer_sources_fail_fast_without_gstreamer(uri):
    with pytest.raises(SourceError, match="without GStreamer.*JetPack"):
        open_source(uri)


def test_missing_camera_device_fails_fast():
    start = time.monotonic()
    with pytest.raises(SourceError, match="/dev/video63: no such device"):
        open_source("/dev/video63")
    assert time.monotonic() - start < 2.0


@pytest.mark.skipif(Path("/dev/video0").exists(), reason="a camera is attached")
def test_missing_camera_index_fails_fast():
    with pytest.raises(SourceError, match="Cannot open 0: no such camera"):
        open_source("0")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_stream_fails_fast_with_one_line():
    url = f"http://127.0.0.1:{_closed_port()}/stream"
    start = time.monotonic()
    with pytest.raises(SourceError, match=f"Cannot open {url}") as info:
        open_source(url)
    assert time.monotonic() - start < 5.0
    assert "\n" not in str(info.value)


def test_http_404_fails_fast():
    with MjpegTestServer() as server, pytest.raises(SourceError, match="Cannot open"):
        open_source(server.url.replace("/stream", "/nothing"))


def test_camera_options_refused_for_files(clip_path):
    with pytest.raises(ValueError, match="only for a camera"):
        open_source(clip_path, width=640)


def test_a_file_that_is_no_video_says_so_in_ffmpegs_words_without_its_error_number(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n")
    with pytest.raises(SourceError) as refused:
        open_source(str(notes))
    assert str(refused.value) == (f"Cannot open {notes} as a video (not a video file, or "
                                  "damaged: Invalid data found when processing input)")


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


def test_mjpeg_stream_frames_in_order():
    with MjpegTestServer(fps=30, tint=2) as server, open_source(server.url) as source:
        assert isinstance(source, StreamSource) and source.live
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 10:
                break
    assert [f.index for f in frames] == list(range(10))
    seqs = [read_seq(f.image) for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    assert all(read_tint(f.image) == 2 and f.image.shape == (120, 160, 3) for f in frames)
    assert all(b.timestamp_ms > a.timestamp_ms for a, b in zip(frames, frames[1:]))


def test_frozen_stream_is_reopened_after_the_stall_timeout():
    with MjpegTestServer(fps=30, freeze_after=4) as server, \
            open_source(server.url, reconnect=FAST) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 9:
                break
    assert source.reconnects >= 2
    indices = [f.index for f in frames]
    assert indices[:4] == list(range(4)) and indices == sorted(set(indices))
    gap = source.gaps[0]
    assert gap.reason == "no frame for 0.5 s" and 0.4 < gap.seconds < 3.0
    assert gap.next_index - gap.last_index > 5  # 30 fps: the frames of 0.5 s and more lost


def test_stream_gone_for_good_ends_after_max_reconnects():
    policy = Reconnect(stall_timeout=1.0, max_reconnects=2, backoff_initial=0.05)
    server = MjpegTestServer(fps=30).__enter__()
    source = open_source(server.url, reconnect=policy)
    frames = []
    start = time.monotonic()
    for frame in source:
        frames.append(frame)
        if len(frames) == 3:
            server.__exit__(None, None, None)
    source.close()
    assert time.monotonic() - start < 8.0
    assert source.gave_up and source.reconnects == 0
    last = source.gaps[-1]
    assert last.next_index is None and last.attempts == 2
    assert "gave up after 2 reconnect attempts" in source.notes[-1]


def test_interrupt_ends_a_waiting_stream():
    policy = Reconnect(stall_timeout=1.0, backoff_initial=5.0, backoff_max=5.0)
    server = MjpegTestServer(fps=30).__enter__()
    source = open_source(server.url, reconnect=policy)
    it = iter(source)
    next(it)
    server.__exit__(None, None, None)
    start = time.monotonic()
    timer = threading.Timer(0.3, source.interrupt)
    timer.start()
    list(it)  # frames still buffered, then the outage: waits in the backoff until interrupted
    assert time.monotonic() - start < 3.0  # not the 5 s backoff
    timer.join()
    source.close()


@contextlib.contextmanager
def served(folder: Path):
    """``folder`` served over HTTP on loopback (Python's http.server); yields its base URL."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_hls_playlist_over_http_is_read_once_to_its_end(tmp_path):
    """HLS: a finished (VOD) playlist and MPEG-TS segments written here: a recording, so its
    end is the input's end, not an outage to reconnect after (which replayed it)."""
    import av
    from mjpeg_server import make_frame

    options = {"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"}
    with av.open(str(tmp_path / "index.m3u8"), "w", format="hls", options=options) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(60):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(make_frame(i, 1), format="bgr24")))
        out.mux(stream.encode(None))

    with served(tmp_path) as url, open_source(f"{url}/index.m3u8") as source:
        assert not source.live  # every frame kept, as for a file
        seqs = [read_seq(frame.image) for frame in source]  # across segment boundaries
    assert seqs == list(range(60))
    assert source.reconnects == 0 and not source.gaps


def test_a_video_file_over_http_is_read_as_a_file(clip_path):
    with served(Path(clip_path).parent) as url, \
            open_source(f"{url}/{Path(clip_path).name}") as source:
        assert not source.live and source.frame_count == 12
        frames = list(source)
    assert [f.index for f in frames] == list(range(12))
    with open_source(clip_path) as local:
        assert [f.timestamp_ms for f in local] == [f.timestamp_ms for f in frames]


@pytest.mark.timeout(30)
def test_a_ts_recording_served_without_range_requests_is_read_once_as_a_file(tmp_path):
    """MPEG-TS stores no duration, and a server without range requests lets FFmpeg find
    none: its known length (Content-Length) still tells a recording from a live stream. It
    was read as one, reopened at its end and replayed from its start, and never ended."""
    from fractions import Fraction

    from tests.io.test_source_ranges import write_gop_clip

    write_gop_clip(tmp_path / "drive.ts", 20, rate=Fraction(10), gop=10)
    with served(tmp_path) as url, open_source(f"{url}/drive.ts") as source:
        assert not source.live
        frames = list(source)
    assert [f.index for f in frames] == list(range(20))


def write_two_streams(path: Path) -> None:
    """A video holding two video streams: 160x120 dark frames, then 320x240 bright ones."""
    with av.open(str(path), "w") as out:
        streams = [out.add_stream("libx264", rate=10) for _ in range(2)]
        for stream, (w, h) in zip(streams, [(160, 120), (320, 240)]):
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for _ in range(6):
            for stream, value in zip(streams, (40, 200)):
                image = np.full((stream.height, stream.width, 3), value, np.uint8)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        for stream in streams:
            out.mux(stream.encode())


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


def write_raw(path: Path, codec: str, fps: int, frames: int = 12) -> None:
    """A raw elementary stream (no container): ``codec`` at ``fps``, as the encoder states it
    (x264 and x265 write it in the SPS)."""
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    with av.open(str(path), "w", format={"libx264": "h264", "libx265": "hevc"}.get(
            codec, codec)) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, pix_fmt
        for i in range(frames):
            image = np.full((120, 160, 3), i * 20, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format=pix_fmt)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


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


def test_an_existing_all_digit_folder_is_a_folder_not_a_camera(clip_path, tmp_path,
                                                                monkeypatch):
    monkeypatch.chdir(tmp_path)
    with open_source(clip_path) as clip:
        images = [f.image for f, _ in zip(clip, range(2))]
    Path("20231015").mkdir()  # a dashcam's date folder
    for i, image in enumerate(images):
        cv2.imwrite(f"20231015/{i:04d}.png", image)
    assert (parse_uri("20231015").kind, parse_uri("20231015").target) == ("path", "20231015")
    with open_source("20231015", fps=5.0) as folder:
        assert not folder.live and [f.index for f in folder] == [0, 1]
    assert (parse_uri("20231016").kind, parse_uri("20231016").target) == ("camera", 20231016)


def test_file_uris_are_percent_decoded(clip_path, tmp_path):
    from urllib.parse import quote

    spaced = tmp_path / "drive 1%.mp4"
    spaced.write_bytes(Path(clip_path).read_bytes())
    uri = "file://" + quote(str(spaced))
    assert "%20" in uri and parse_uri(uri).target == str(spaced)
    assert parse_uri("file://localhost/tmp/a%20b.mp4").target == "/tmp/a b.mp4"
    with open_source(uri) as source:
        assert len(list(source)) == 12


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


def scripted(monkeypatch, runs, fps=0.0, max_reconnects=3):
    """A ``StreamSource`` reading a ``ScriptedStream`` on its fake clock, and its frames."""
    from standins import ScriptedStream

    from drivevision.io import streams

    stream = ScriptedStream(runs, fps)
    monkeypatch.setattr(streams, "time", stream.clock)
    policy = Reconnect(stall_timeout=5.0, max_reconnects=max_reconnects, backoff_initial=0.001)
    source = StreamSource("rtsp://cam", stream.opener, policy)
    return source, list(source)


def test_frame_indices_go_on_after_an_outage_by_the_frames_it_lost(monkeypatch):
    # 20 frames at 25 fps, then 2 s to reconnect: the next frame comes 2.04 s after the last
    source, frames = scripted(monkeypatch, [(20, 0.04, 0.0), (5, 0.04, 2.0)], fps=90000.0)
    assert [f.index for f in frames] == [*range(20), *range(70, 75)]  # 50 lost, 51 later
    gap = source.gaps[0]
    assert (gap.last_index, gap.next_index) == (19, 70)
    assert gap.seconds == pytest.approx(2.04)  # the stream's claim (90000 fps) is not used


def test_with_one_frame_before_an_outage_the_claimed_rate_counts_the_frames_lost(monkeypatch):
    _, frames = scripted(monkeypatch, [(1, 0.1, 0.0), (2, 0.1, 1.0)], fps=10.0)
    assert [f.index for f in frames] == [0, 11, 12]  # 1.1 s at 10 fps: 10 frames lost
    _, frames = scripted(monkeypatch, [(1, 0.1, 0.0), (2, 0.1, 1.0)], fps=0.0)
    assert [f.index for f in frames] == [0, 1, 2]  # no rate known: none counted


def test_a_stream_that_never_gave_a_frame_starts_at_index_zero(monkeypatch):
    source, frames = scripted(monkeypatch, [(0, 0.04, 0.0), (3, 0.04, 2.0)], fps=25.0)
    assert [f.index for f in frames] == [0, 1, 2] and source.gaps[0].next_index == 0


@pytest.mark.parametrize("uri, kept", [("http://cam/live.m3u8", 6), ("rtsp://cam/live", 11)])
def test_frames_a_reopened_stream_hands_over_again_are_left_out(monkeypatch, uri, kept):
    """A frozen HLS playlist, read anew, starts again at segments already read: the frames
    with the times of frames already handed out are left out, up to the first new one. An
    RTSP session's times start afresh, and may meet a short one's before: all are kept."""
    from standins import ScriptedStream

    from drivevision.io import streams

    stamps = [[0, 100, 200, 300], [100, 200, 300, 400, 500], [200, 300]]
    stream = ScriptedStream([(4, 0.1, 0.0), (5, 0.1, 1.0), (2, 0.1, 1.0)], stamps=stamps)
    monkeypatch.setattr(streams, "time", stream.clock)
    policy = Reconnect(stall_timeout=5.0, max_reconnects=3, backoff_initial=0.001)
    source = StreamSource(uri, stream.opener, policy, stream_clock=True)
    frames = list(source)
    assert len(frames) == kept  # HLS: 0-300, then 400 and 500; the third only replays
    assert source.reconnects == (1 if kept == 6 else 2)


def test_a_stream_with_its_own_timestamps_is_timed_by_them_not_by_their_bursts(monkeypatch):
    """HLS hands over a segment's frames at once: frames 100 ms apart on the stream's clock
    arrive 1 ms apart. A step back or a jump of an hour is not believed (the time between
    arrivals is taken), nor are timestamps across a reconnect (the outage's length is)."""
    from standins import ScriptedStream

    from drivevision.io import streams

    stamps = [[0, 100, 200, 300, 400, 500, 400, 3_600_400, 3_600_500], [7000, 7100, 7200]]
    stream = ScriptedStream([(9, 0.001, 0.0), (3, 0.001, 2.0)], stamps=stamps)
    monkeypatch.setattr(streams, "time", stream.clock)
    policy = Reconnect(stall_timeout=5.0, max_reconnects=3, backoff_initial=0.001)
    source = StreamSource("http://cam/live.m3u8", stream.opener, policy, stream_clock=True)
    frames = list(source)
    expected = [1, 101, 201, 301, 401, 501, 502, 503, 603, 2604, 2704, 2804]
    assert [f.timestamp_ms for f in frames] == pytest.approx(expected, abs=1e-6)
    # 2.001 s lost at the median 100 ms between frames: 20 frames' time, 19 besides the next
    assert [f.index for f in frames] == [*range(9), 28, 29, 30]
    gap = source.gaps[0]
    assert (gap.start_ms, gap.end_ms) == pytest.approx((603, 2604), abs=1e-6)

    stream = ScriptedStream([(9, 0.001, 0.0)], stamps=stamps[:1])
    monkeypatch.setattr(streams, "time", stream.clock)
    arrival = StreamSource("http://cam/stream", stream.opener, policy)  # MJPEG: no clock
    assert [f.timestamp_ms for f in arrival] == pytest.approx(range(1, 10), abs=1e-6)



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


def test_a_missing_input_is_a_file_not_found_error_with_the_same_message(tmp_path):
    from drivevision.pipeline.runner import detect_video

    missing = tmp_path / "nope.mp4"
    for open_it in (open_source, detect_video):
        with pytest.raises(FileNotFoundError) as info:
            open_it(str(missing))
        error = info.value
        assert isinstance(error, SourceError)  # what the commands and older code catch
        assert str(error) == f"No such file or directory: {missing}"
        assert (error.errno, error.filename) == (errno.ENOENT, str(missing))
    copy = pickle.loads(pickle.dumps(error))  # as a batch worker's parent gets it
    assert (type(copy), str(copy), copy.filename) == (type(error), str(error), str(missing))


def test_a_video_ffmpeg_may_not_read_is_a_permission_error_with_the_same_message(
        clip_path, tmp_path, monkeypatch):
    locked = tmp_path / "locked.mp4"
    locked.write_bytes(Path(clip_path).read_bytes())
    locked.chmod(0)
    if os.access(locked, os.R_OK):  # root reads anything: FFmpeg refuses as it would then
        def refuse(path, *args, **kwargs):
            raise av.error.PermissionError(errno.EACCES, "Permission denied", path)
        monkeypatch.setattr(av, "open", refuse)
    with pytest.raises(PermissionError) as info:
        open_source(str(locked))
    assert isinstance(info.value, SourceError)
    assert str(info.value) == (f"Cannot open {locked} as a video (not a video file, or "
                               "damaged: Permission denied)")
