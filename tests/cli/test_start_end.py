"""``detect --start TIME --end TIME``: only that part of the input is detected; the outputs
keep each frame's index and time in the input, the annotated video holds only the range."""

import json
import subprocess
import sys

import av
import cv2
import pytest
from mjpeg_server import MjpegTestServer

from drivevision.cli import main
from drivevision.cli.detect import _to_detect
from drivevision.cli.times import time_point
from drivevision.io.sources import open_source
from drivevision.synthetic import write_clip
from tests.batch.helpers import WEIGHTS as DEMO_MODEL


@pytest.fixture(scope="module")
def long_clip(tmp_path_factory) -> str:
    """40 frames at 10 fps, 4 s, as the sample is."""
    path = tmp_path_factory.mktemp("range") / "drive.mp4"
    write_clip(path, 40, width=320, height=180, fps=10.0, seed=0)
    return str(path)


def run(capsys, *args):
    code = main(["detect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def frames_of(jsonl) -> list[tuple[int, float]]:
    lines = map(json.loads, jsonl.read_text().splitlines())
    return [(d["frame"], d["timestamp_ms"]) for d in lines]


def test_a_range_is_detected_at_its_own_indices_and_the_video_holds_only_it(
        tmp_path, capsys, long_clip, tiny_checkpoint):
    with open_source(long_clip) as source:
        times = {f.index: f.timestamp_ms for f in source}
    jsonl, video = tmp_path / "d.jsonl", tmp_path / "a.mp4"
    code, out, err = run(capsys, long_clip, "-o", video, "--jsonl", jsonl, "--weights",
                         tiny_checkpoint, "--start", "1.5", "--end", "0:03")
    assert code == 0, err
    assert "frames 15-29 of the input (0:01.5 to 0:03): 15 frames in" in out
    assert frames_of(jsonl) == [(i, times[i]) for i in range(15, 30)]
    with av.open(str(video)) as container:
        shown = [float(f.time) for f in container.decode(video=0)]
    assert len(shown) == 15 and shown[0] == 0.0 and shown[-1] == pytest.approx(1.4)


@pytest.mark.parametrize("option, summary, indices", [
    (["--start", "3.5"], "frames 35-39 of the input (0:03.5 to the end): 5 frames", range(35, 40)),
    (["--end", "0.5s"], "frames 0-4 of the input (0:00 to 0:00.5): 5 frames", range(0, 5)),
])
def test_start_alone_reads_to_the_end_and_end_alone_from_the_beginning(
        tmp_path, capsys, long_clip, tiny_checkpoint, option, summary, indices):
    jsonl = tmp_path / "d.jsonl"
    code, out, err = run(capsys, long_clip, "--jsonl", jsonl, "--weights", tiny_checkpoint,
                         *option)
    assert code == 0, err
    assert summary in out and "warning" not in err  # not a truncated file
    assert [i for i, _ in frames_of(jsonl)] == list(indices)


def test_a_range_with_a_stride_tracks_and_crops_only_the_frames_it_keeps(
        tmp_path, capsys, long_clip):
    jsonl, mot, crops = tmp_path / "d.jsonl", tmp_path / "m.txt", tmp_path / "crops"
    code, out, err = run(capsys, long_clip, "--jsonl", jsonl, "--mot", mot, "--crops", crops,
                         "--weights", DEMO_MODEL, "--device", "cpu", "--conf", "0.1",
                         "--track", "--frame-stride", "4", "--start", "1.1", "--end", "3")
    assert code == 0, err
    assert ("frames 11-29 of the input (0:01.1 to 0:03), every 4th detected: 5 frames in"
            in out)
    assert [i for i, _ in frames_of(jsonl)] == [12, 16, 20, 24, 28]
    assert {int(line.split(",")[0]) - 1 for line in mot.read_text().splitlines()} <= {
        12, 16, 20, 24, 28}  # MOT frames count from 1
    names = [p.stem for p in crops.rglob("*.jpg")]
    assert len(names) >= 5 and {int(n.split("_")[-2]) for n in names} <= {12, 16, 20, 24, 28}


def test_the_progress_total_is_the_frames_the_range_and_stride_keep(long_clip):
    for start, end, stride in [(1.1, 3.0, 4), (None, 0.5, 1), (3.5, None, 2), (0.0, None, 3)]:
        with open_source(long_clip) as source:
            source.keep_every(stride)
            source.keep_range(start, end)
            total = _to_detect(source)
            assert total == len(list(source)), (start, end, stride)


def test_a_folder_of_images_is_timed_by_fps(tmp_path, capsys, long_clip, tiny_checkpoint):
    folder = tmp_path / "frames"
    folder.mkdir()
    with open_source(long_clip) as source:
        for frame, _ in zip(source, range(8)):
            cv2.imwrite(str(folder / f"f{frame.index}.png"), frame.image)
    code, out, err = run(capsys, folder, tmp_path / "out", "--weights", tiny_checkpoint,
                         "--fps", "2", "--start", "1", "--end", "3")  # image i at i/2 s
    assert code == 0, err
    assert "frames 2-5 of the input (0:01 to 0:03): 4 frames in" in out
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == [
        "f2.png", "f3.png", "f4.png", "f5.png"]


@pytest.mark.parametrize("text, seconds", [("90", 90.0), ("90.5", 90.5), ("90s", 90.0),
                                           ("2m", 120.0), ("1h", 3600.0), ("1:30", 90.0),
                                           ("01:02:03.5", 3723.5), ("90:00", 5400.0)])
def test_times_are_taken_as_seconds_durations_or_clock_times(text, seconds):
    assert time_point(text) == seconds


@pytest.mark.parametrize("args, message", [
    (["--start", "1:30", "--end", "1:30"],
     "Expected --end after --start, but got --start 1:30 and --end 1:30"),
    (["--start", "2", "--end", "1"], "Expected --end after --start, but got --start 0:02 and "
                                     "--end 0:01"),
    (["--start", "-5"], "--start: expected a time such as 90, 90.5, 2m, 1:30 or 01:02:03.5 "
                        "(>= 0), but got '-5'"),
    (["--end", "1:75"], "--end: expected a clock time as [H:]MM:SS[.s] (minutes and seconds "
                        "below 60), such as 1:30 or 01:02:03.5, but got '1:75'"),
    (["--start", "12:30"], "The start, 12:30, is at or past the end of {clip}, which lasts 0:04"),
    (["--start", "4"], "The start, 0:04, is at or past the end of {clip}, which lasts 0:04"),
    (["--start", "1.1", "--end", "1.3", "--frame-stride", "5"],
     "No frame of {clip} in 0:01.1 to 0:01.3 is one the frame stride keeps: the range holds "
     "frames 11-12, the stride keeps multiples of 5"),
])
def test_a_range_that_cannot_be_read_is_refused_in_one_line_before_the_model_loads(
        tmp_path, capsys, monkeypatch, long_clip, args, message):
    monkeypatch.setattr("drivevision.detector.Detector.from_config",
                        lambda *a, **k: pytest.fail("the model loaded"))
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, long_clip, *args)
    assert code == 2 and err.strip().splitlines() == [
        f"drivevision: error: {message.format(clip=long_clip)}"]
    assert not (tmp_path / "runs").exists()  # no output folder made


@pytest.mark.parametrize("option, refusal", [
    (("--frame-stride", "2"), "--frame-stride takes a video file or a folder of images, but "
                              "{url} is a live source, which drops frames by itself"),
    (("--start", "10"), "--start/--end take a video file or a folder of images, but {url} is "
                        "a live source"),
])
def test_a_stride_or_range_is_refused_for_a_stream_before_the_model_loads(
        capsys, monkeypatch, option, refusal):
    monkeypatch.setattr("drivevision.detector.Detector.from_config",
                        lambda *a, **k: pytest.fail("the model loaded"))
    with MjpegTestServer(fps=30) as server:
        code, _, err = run(capsys, server.url, "--no-save", *option)
    assert code == 2 and "Traceback" not in err
    assert refusal.format(url=server.url) in err


def refusal_and_modules(*args) -> tuple[str, list[str]]:
    """The error line of ``detect ARGS`` run in a fresh interpreter, and which of torch and
    torchvision it had imported by then."""
    code = ("import sys; from drivevision.cli import main; code = main(sys.argv[1:]); "
            "print(code, sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, "detect", *args], capture_output=True,
                         text=True, timeout=120)
    return run.stderr.strip(), run.stdout.split()


def test_refusals_of_the_input_come_before_torch_loads(tmp_path, long_clip):
    """torch takes seconds to import: a start past the end, or a stride for an RTSP stream
    (live by its scheme: refused before connecting, so no server is needed), is refused
    before it. (An http(s) URL may serve a recording, which takes both: its stride is
    refused once connected, after the detector options' checks, which import torch.)"""
    err, out = refusal_and_modules(long_clip, "--no-save", "--start", "9")
    assert err == f"drivevision: error: The start, 0:09, is at or past the end of {long_clip}, " \
                  "which lasts 0:04"
    assert out == ["2", "[]"]
    url = "rtsp://127.0.0.1:9/front"
    err, out = refusal_and_modules(url, "--no-save", "--frame-stride", "5")
    assert err == f"drivevision: error: --frame-stride takes a video file or a folder of " \
                  f"images, but {url} is a live source, which drops frames by itself"
    assert out == ["2", "[]"]
