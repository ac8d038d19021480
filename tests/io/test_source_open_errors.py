"""Sources that cannot be opened fail fast, with one line saying why (and the error type
a caller catches)."""

from __future__ import annotations

import errno
import os
import pickle
import socket
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest
from mjpeg_server import MjpegTestServer

from drivevision.errors import SourceError
from drivevision.io.sources import open_source

HAS_GSTREAMER = cv2.videoio_registry.hasBackend(cv2.CAP_GSTREAMER)


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


@pytest.mark.parametrize("given, found", [
    (np.zeros((4, 6, 3), np.uint8), r"a numpy array of shape \(4, 6, 3\); for frames in "
                                    r"memory use detector\(frame\) or detector.infer\(frames\)"),
    (["a.mp4", "b.mp4"], r"a list of 2; open_source opens one input"),
    (None, r"None$"),
])
def test_what_is_not_a_path_or_uri_is_a_type_error_saying_what_came(given, found):
    # (a frame once became a file name thousands of characters long: "File name too long")
    with pytest.raises(TypeError, match=r"^Expected a path or URI \(a file, a folder, .*\), "
                                        r"but found " + found):
        open_source(given)
