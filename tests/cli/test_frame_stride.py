"""``detect --frame-stride K``: only frames 0, K, 2K, ... are detected and written, each at
its own index and time."""

import csv
import json

import av
import pytest

from drivevision.cli import main
from drivevision.io.sources import open_source
from drivevision.synthetic import write_clip
from tests.batch.helpers import WEIGHTS as DEMO_MODEL


def run(capsys, *args):
    code = main(["detect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def video_times(path) -> tuple[float, list[float]]:
    """A video's declared frame rate and each frame's presentation time in ms."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base * 1000) for f in container.decode(stream)]
        return float(stream.average_rate), times


def test_only_every_kth_frame_is_detected_and_written_at_its_own_index_and_time(
        tmp_path, capsys, clip_path, tiny_checkpoint):
    with open_source(clip_path) as source:
        times = {f.index: f.timestamp_ms for f in source}
    jsonl, table = tmp_path / "d.jsonl", tmp_path / "d.csv"
    code, out, err = run(capsys, clip_path, "-o", tmp_path / "a.mp4", "--jsonl", jsonl,
                         "--csv", table, "--weights", tiny_checkpoint, "--conf", "0.01",
                         "--classes", "all", "--frame-stride", "5")
    assert code == 0, err
    assert "12 frames read, every 5th detected: 3 frames in" in out
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(d["frame"], d["timestamp_ms"]) for d in lines] == [(i, times[i]) for i in (0, 5, 10)]
    assert {int(r["frame"]) for r in csv.DictReader(table.open())} <= {0, 5, 10}
    rate, shown = video_times(tmp_path / "a.mp4")  # 10 fps in: 2 fps out, as long as the input
    assert rate == pytest.approx(2.0) and shown == pytest.approx([0.0, 500.0, 1000.0])


def test_an_avi_has_a_kth_of_the_frame_rate_so_it_lasts_as_long_as_the_input(
        tmp_path, capsys, clip_path, tiny_checkpoint):
    code, _, err = run(capsys, clip_path, "-o", tmp_path / "a.avi", "--weights",
                       tiny_checkpoint, "--frame-stride", "4")
    assert code == 0, err
    rate, shown = video_times(tmp_path / "a.avi")  # AVI holds a rate, no times: PyAV counts
    assert rate == pytest.approx(2.5)                # its frames from one
    assert [t - shown[0] for t in shown] == pytest.approx([0.0, 400.0, 800.0])


def test_a_folder_output_gets_the_images_of_the_frames_detected(tmp_path, capsys, clip_path,
                                                               tiny_checkpoint):
    code, _, err = run(capsys, clip_path, "-o", tmp_path / "frames", "--weights",
                       tiny_checkpoint, "--frame-stride", "4")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "frames").glob("*.png")) == [
        "frame_000000.png", "frame_000004.png", "frame_000008.png"]


def test_tracks_follow_objects_across_the_frames_passed_over(tmp_path, capsys):
    clip = tmp_path / "drive.mp4"
    write_clip(clip, 30, width=320, height=180, fps=15.0, seed=0)
    mot = tmp_path / "m.txt"
    code, out, err = run(capsys, clip, "--weights", DEMO_MODEL, "--device", "cpu", "--conf",
                         "0.1", "--track", "--frame-stride", "3", "--mot", mot)
    assert code == 0, err
    rows = [line.split(",") for line in mot.read_text().splitlines()]
    assert {int(r[0]) for r in rows} <= set(range(1, 31, 3))  # MOT frames count from 1
    seen: dict[int, int] = {}
    for r in rows:
        seen[int(r[1])] = seen.get(int(r[1]), 0) + 1
    assert max(seen.values()) >= 8  # one id through nearly all 10 frames detected


@pytest.mark.parametrize("stride", ["0", "-1"])
def test_a_stride_below_one_is_refused_before_any_work(tmp_path, capsys, clip_path, stride):
    code, _, err = run(capsys, clip_path, "--frame-stride", stride, "--weights", "missing.pt")
    assert code == 2 and f"Expected --frame-stride >= 1 frames, but got {stride}" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_live_refuses_a_stride_and_says_why(capsys, clip_path):
    code = main(["live", clip_path, "--frame-stride", "2"])
    err = capsys.readouterr().err
    assert code == 2 and "live drops the frames it has no time for by itself" in err
