"""Source URIs: what each form opens, the GStreamer and FFmpeg option strings they imply,
and the clear ValueError a malformed one gets."""

from __future__ import annotations

from pathlib import Path

import cv2
import pytest

from drivevision.io.sources import open_source
from drivevision.io.uri import csi_pipeline, ffmpeg_capture_options, parse_uri


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


@pytest.mark.parametrize("rates, message", [
    (dict(fps=0), "Expected fps between 0.01 and 1000, but got 0"),
    (dict(raw_fps=5000), "Expected raw_fps between 0.01 and 1000, but got 5000"),
])
def test_a_frame_rate_out_of_range_is_refused_naming_the_keyword(clip_path, rates, message):
    """A Python caller has no --fps (the commands name it, tests/cli/test_cli.py)."""
    with pytest.raises(ValueError) as refused:
        open_source(clip_path, **rates)
    assert str(refused.value) == message
