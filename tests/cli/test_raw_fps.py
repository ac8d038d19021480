"""``--fps`` on a raw ``.h264`` stream (no container: no frame times): the user who knows
the camera's rate gives it, and the detections' times and the recorded video follow it;
``--start`` finds its time at that rate (the stream cannot seek: it is read up to it)."""

import json
from fractions import Fraction

import av
import numpy as np
import pytest

from drivevision.cli import main
from drivevision.io.sources import open_source
from tests.io.written_media import write_raw


def write_untimed_h264(path, frames: int = 12) -> None:
    """A raw H.264 stream whose SPS states no usable rate: x264 writes the 90 kHz clock of
    a variable-rate input (a camera's), read as 90000 fps."""
    with av.open(str(path), "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 96, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 90000)
        for i in range(frames):
            image = np.full((96, 160, 3), i * 20, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i * 3000, Fraction(1, 90000)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def times_and_video(tmp_path, capsys, checkpoint, *args) -> tuple[list[float], float, str]:
    jsonl, video = tmp_path / "d.jsonl", tmp_path / "a.mp4"
    code = main([*map(str, args), "--jsonl", str(jsonl), "-o", str(video), "--weights",
                 checkpoint, "--model", "tiny-fpn", "--min-size", "96", "--max-size", "128"])
    err = capsys.readouterr().err
    assert code == 0, err
    times = [json.loads(line)["timestamp_ms"] for line in jsonl.read_text().splitlines()]
    with av.open(str(video)) as container:
        shown = [float(f.time) for f in container.decode(video=0)]
    return times, shown[-1] - shown[0], err


@pytest.mark.parametrize("command", ["detect", "live"])
def test_fps_times_a_raw_stream_that_states_no_rate(tmp_path, capsys, tiny_checkpoint,
                                                     command):
    path = tmp_path / "cam.h264"
    write_untimed_h264(path)
    times, length, err = times_and_video(tmp_path, capsys, tiny_checkpoint, command, path,
                                         "--fps", "30")
    assert times == pytest.approx([i * 1000 / 30 for i in range(12)], abs=0.001)  # not 40 ms
    assert length == pytest.approx(11 / 30, abs=0.002)  # the video plays at the camera's speed
    assert f"{path}: a raw H.264 stream (no container, no frame times): timed at 30 fps, the " \
           "rate given with --fps (it states none)" in err
    assert "warning" not in err  # --fps was not ignored


def test_fps_wins_over_the_rate_a_raw_stream_states_and_says_so(tmp_path, capsys,
                                                                 tiny_checkpoint):
    path = tmp_path / "cam.h264"
    write_raw(path, "libx264", fps=10)
    times, length, err = times_and_video(tmp_path, capsys, tiny_checkpoint, "live", path,
                                         "--fps", "30")
    assert times == pytest.approx([i * 1000 / 30 for i in range(12)], abs=0.001)
    assert "timed at 30 fps, the rate given with --fps (the stream states 10)" in err
    with open_source(str(path), fps=5) as source:  # the rate image inputs are spaced by
        assert source.fps == 10  # is not a raw stream's (batch gives it to every input)


def test_without_fps_a_raw_stream_that_states_no_rate_says_how_to_give_it(tmp_path, capsys,
                                                                          tiny_checkpoint):
    path = tmp_path / "cam.h264"
    write_untimed_h264(path, frames=3)
    times, _, err = times_and_video(tmp_path, capsys, tiny_checkpoint, "live", path)
    assert times == [0.0, 40.0, 80.0]  # FFmpeg's 25 fps, said so
    assert "timed at 25 fps, FFmpeg's default; give the camera's rate with --fps (e.g. --fps " \
           "30)" in err



@pytest.mark.parametrize("command", ["detect", "live"])
def test_a_raw_stream_starts_at_the_start_time_at_the_rate_given(tmp_path, capsys,
                                                                 tiny_checkpoint, command):
    path = tmp_path / "cam.h264"
    write_untimed_h264(path)  # 12 frames: 0.4 s at 30 fps
    jsonl = tmp_path / "d.jsonl"
    code = main([command, str(path), "--fps", "30", "--start", "0.2", "--jsonl", str(jsonl),
                 "--weights", tiny_checkpoint, "--model", "tiny-fpn", "--min-size", "96", "-q"])
    assert code == 0, capsys.readouterr().err  # was: no frame could be decoded, exit 3
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [x["frame"] for x in lines] == list(range(6, 12))
    assert lines[0]["timestamp_ms"] == 200.0
    code = main([command, str(path), "--fps", "30", "--start", "5", "--jsonl",
                 str(tmp_path / "e.jsonl"), "--weights", tiny_checkpoint, "--model",
                 "tiny-fpn", "--min-size", "96", "-q"])
    assert code != 0 and capsys.readouterr().err.splitlines() == [
        f"drivevision: error: The start, 0:05, is at or past the end of {path}, which lasts "
        "0:00.4"]
