"""``live FILE --start TIME --end TIME``: a recording replayed through ``live`` from a given
time, as ``detect`` takes the range; a camera or stream, which has no times to seek to, is
refused in one line before the model loads."""

import json

import av
import pytest
from mjpeg_server import MjpegTestServer

from drivevision.cli import main
from drivevision.io.sources import open_source
from drivevision.synthetic import write_clip


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> str:
    """40 frames at 10 fps, 4 s, as the sample is."""
    path = tmp_path_factory.mktemp("range") / "drive.mp4"
    write_clip(path, 40, width=160, height=96, fps=10.0, seed=0)
    return str(path)


def live(capsys, checkpoint: str, *args) -> tuple[int, str, str]:
    code = main(["live", *map(str, args), "--weights", checkpoint, "--model", "tiny-fpn",
                 "--min-size", "96", "--max-size", "128"])
    out, err = capsys.readouterr()
    return code, out, err


def frames_of(jsonl) -> list[tuple[int, float]]:
    lines = map(json.loads, jsonl.read_text().splitlines())
    return [(d["frame"], d["timestamp_ms"]) for d in lines if "frame" in d]


def test_live_on_a_file_detects_only_its_range_at_the_input_times(tmp_path, capsys, long_clip,
                                                                 tiny_checkpoint):
    with open_source(long_clip) as source:
        times = {f.index: f.timestamp_ms for f in source}
    jsonl, video = tmp_path / "d.jsonl", tmp_path / "a.mp4"
    code, out, err = live(capsys, tiny_checkpoint, long_clip, "-o", video, "--jsonl", jsonl,
                          "--start", "1.5", "--end", "0:03")
    assert code == 0, err
    assert "15 frames detected of 15 captured" in out
    assert frames_of(jsonl) == [(i, times[i]) for i in range(15, 30)]  # as detect keeps them
    with av.open(str(video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == 15


@pytest.mark.timeout(60)
def test_live_paced_from_the_start_time_reads_only_from_there(tmp_path, capsys, long_clip,
                                                               tiny_checkpoint):
    jsonl = tmp_path / "d.jsonl"
    code, out, err = live(capsys, tiny_checkpoint, long_clip, "--realtime", "--start", "3",
                          "--jsonl", jsonl)
    assert code == 0, err
    assert "of 10 captured" in out  # frames 30-39, paced from frame 30 on, not from 0
    indices = [index for index, _ in frames_of(jsonl)]
    assert indices[0] == 30 and all(30 <= i < 40 for i in indices)


@pytest.mark.parametrize("args, message", [
    (("--start", "9"), "The start, 0:09, is at or past the end of {clip}, which lasts 0:04"),
    (("--start", "2", "--end", "1"), "Expected --end after --start, but got --start 0:02 and "
                                     "--end 0:01"),
    (("--end", "1:75"), "--end: expected a clock time as [H:]MM:SS[.s]"),
])
def test_a_range_that_does_not_fit_the_file_is_refused_as_detect_refuses_it(
        capsys, long_clip, tiny_checkpoint, args, message):
    code, _, err = live(capsys, tiny_checkpoint, long_clip, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert lines[0].startswith(f"drivevision: error: {message.format(clip=long_clip)}")


@pytest.mark.parametrize("source", ["0", "/dev/video63", "rtsp://127.0.0.1:9/front", "csi://0",
                                    "mjpeg"])
def test_a_range_is_refused_for_a_camera_or_stream_before_the_model_loads(
        capsys, monkeypatch, long_clip, tiny_checkpoint, source):
    monkeypatch.setattr("drivevision.detector.Detector.from_config",
                        lambda *a, **k: pytest.fail("the model loaded"))
    with MjpegTestServer(fps=30) as server:
        uri = server.url if source == "mjpeg" else source
        code, _, err = live(capsys, tiny_checkpoint, long_clip, uri, "--start", "1")
    assert code == 2 and err.strip().splitlines() == [
        f"drivevision: error: --start/--end take a video file or a folder of images, but {uri} "
        "is a live source, which has no times to seek to"]
