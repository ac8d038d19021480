"""``--track`` and ``--mot`` as a user runs them: ids in every output, the same ids whatever
the batch size, MOTChallenge lines, and the summary's track counts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from drivevision.cli import main
from drivevision.cli.exits import EXIT_USAGE
from drivevision.synthetic import write_clip

DEMO_MODEL = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"  # trained on scenes


@pytest.fixture(scope="module")
def drive(tmp_path_factory) -> str:
    """2 s of a generated drive at 320x180, 15 fps."""
    path = tmp_path_factory.mktemp("drive") / "drive.mp4"
    write_clip(path, 30, width=320, height=180, fps=15.0, seed=0)
    return str(path)


def run(capsys, *args):
    code = main(["detect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def tracked(jsonl) -> list[list[tuple[int, list[float]]]]:
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return [[(d["track_id"], d["box"]) for d in line["detections"]] for line in lines]


def assert_same_tracks(first, second):
    """The same ids on the same objects in every frame. Boxes may differ by float rounding:
    CPU kernels may sum in another order for another batch size (0.03 px seen on one CI
    CPU), far below what moves a track."""
    assert [[t for t, _ in frame] for frame in first] == [[t for t, _ in frame] for frame in second]
    for a, b in zip(first, second):
        assert [box for _, box in a] == [pytest.approx(box, abs=0.1) for _, box in b]


def test_track_ids_are_the_same_with_any_batch_and_reach_every_output(tmp_path, capsys, drive):
    common = ["--weights", DEMO_MODEL, "--device", "cpu", "--conf", "0.1", "--track"]
    runs = []
    for batch in (1, 4):
        out = tmp_path / f"b{batch}"
        out.mkdir()
        code, stdout, err = run(capsys, drive, *common, "--batch", batch, "--jsonl",
                                out / "d.jsonl", "--csv", out / "d.csv", "--mot", out / "m.txt")
        assert code == 0, err
        runs.append(out)
    assert "tracks" in stdout and "median length" in stdout
    first, second = (tracked(r / "d.jsonl") for r in runs)
    assert len(first) == 30
    assert_same_tracks(first, second)
    ids = [tid for frame in first for tid, _ in frame]
    assert ids and min(ids) >= 1
    assert all(len({t for t, _ in frame}) == len(frame) for frame in first)  # unique per frame

    rows = list(csv.DictReader((runs[0] / "d.csv").open()))
    assert [int(r["track_id"]) for r in rows] == ids

    lines = (runs[0] / "m.txt").read_text().splitlines()
    assert len(lines) == len(ids)
    by_frame = [(f + 1, tid, box) for f, frame in enumerate(first) for tid, box in frame]
    for line, (frame, tid, (x1, y1, x2, y2)) in zip(lines, by_frame):
        fields = line.split(",")
        assert len(fields) == 10 and fields[7:] == ["-1", "-1", "-1"]
        assert int(fields[0]) == frame and int(fields[1]) == tid  # frames count from 1
        x, y, w, h = map(float, fields[2:6])
        assert (x, y, x + w, y + h) == tuple(round(v, 1) for v in (x1, y1, x2, y2)) or (
            abs(x - x1) < 0.02 and abs(y - y1) < 0.02 and abs(w - (x2 - x1)) < 0.03
            and abs(h - (y2 - y1)) < 0.03)
        assert 0 < float(fields[6]) <= 1


@pytest.mark.slow
def test_the_summary_gives_a_strided_tracks_length_in_detected_and_in_input_frames(
        tmp_path, capsys, drive):
    """With --frame-stride 3 a track in 2 detected frames lasted 6 frames of the input (and
    the summary says both), not 2 frames as if every frame were detected."""
    code, stdout, err = run(capsys, drive, "--weights", DEMO_MODEL, "--device", "cpu",
                            "--track", "--frame-stride", "3", "--jsonl", tmp_path / "t.jsonl")
    assert code == 0, err
    frames_of: dict[int, list[int]] = {}
    for line in (tmp_path / "t.jsonl").read_text().splitlines():
        record = json.loads(line)
        for d in record["detections"]:
            frames_of.setdefault(d["track_id"], []).append(record["frame"])
    detected = float(np.median([len(f) for f in frames_of.values()]))
    over = float(np.median([f[-1] - f[0] + 3 for f in frames_of.values()]))
    [tracks] = [line for line in stdout.splitlines() if "tracks" in line]
    assert tracks.endswith(f"; median length {detected:g} detected frame"
                           f"{'' if detected == 1 else 's'}, over {over:g} frames of the input "
                           f"({over / 15:.2f} s)"), tracks  # the drive is 15 fps


def scores(jsonl) -> list[float]:
    return [d["score"] for line in jsonl.read_text().splitlines()
            for d in json.loads(line)["detections"]]


def test_track_without_conf_keeps_the_weak_boxes_its_second_round_matches(tmp_path, capsys,
                                                                          drive):
    common = [drive, "--weights", DEMO_MODEL, "--device", "cpu", "--precision", "fp32"]
    assert run(capsys, *common, "--jsonl", tmp_path / "plain.jsonl")[0] == 0
    assert min(scores(tmp_path / "plain.jsonl")) >= 0.5  # no --track: the usual 0.5
    assert run(capsys, *common, "--track", "--jsonl", tmp_path / "t.jsonl")[0] == 0
    tracked_scores = scores(tmp_path / "t.jsonl")
    assert min(tracked_scores) < 0.5 and min(tracked_scores) >= 0.1  # weak boxes extend tracks
    assert run(capsys, *common, "--track", "--conf", "0.5", "--jsonl", tmp_path / "c.jsonl")[0] == 0
    assert min(scores(tmp_path / "c.jsonl")) >= 0.5  # an explicit --conf wins


@pytest.mark.parametrize("command", ["detect", "live"])
def test_mot_without_track_is_refused_before_the_model_loads(tmp_path, capsys, clip_path,
                                                             command):
    code = main([command, str(clip_path), "--mot", str(tmp_path / "m.txt"), "--weights",
                 "missing.pt"])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and "--track" in err and not (tmp_path / "m.txt").exists()


def test_live_writes_the_tracks_as_mot_text_as_detect_does(tmp_path, capsys, drive):
    """A camera's tracks for MOT evaluation tools: live --mot (refused as unknown before)
    writes the lines of its JSONL's tracked boxes, frames from 1."""
    common = ["--weights", DEMO_MODEL, "--device", "cpu", "--track", "-q"]
    code = main(["live", drive, *map(str, common), "--jsonl", str(tmp_path / "l.jsonl"),
                 "--mot", str(tmp_path / "l.txt")])
    assert code == 0, capsys.readouterr().err
    lines = [line.split(",") for line in (tmp_path / "l.txt").read_text().splitlines()]
    records = [json.loads(line) for line in (tmp_path / "l.jsonl").read_text().splitlines()]
    expected = [[str(r["frame"] + 1), str(d["track_id"])] for r in records if "frame" in r
                for d in r["detections"]]
    assert lines and [line[:2] for line in lines] == expected
    assert all(line[7:] == ["-1", "-1", "-1"] for line in lines)


@pytest.mark.parametrize("command", ["detect", "live", "batch", "view"])
@pytest.mark.parametrize("options, message", [
    (["--track", "--track-thresh", "5"], "Expected --track-thresh in [0, 1], but got 5"),
    (["--track", "--match-thresh", "0"], "Expected --match-thresh in (0, 1]"),
    (["--track", "--track-buffer", "-1"], "Expected --track-buffer >= 0 frames, but got -1"),
    (["--conf", "1.5"], "Expected --conf in [0, 1], but got 1.5"),
])
def test_bad_tracker_and_score_settings_are_refused_by_their_option_names(
        tmp_path, capsys, clip_path, command, options, message):
    where = ["--out", str(tmp_path / "out")] if command == "batch" else []
    try:
        code = main([command, clip_path, *where, *options, "--weights", "missing.pt"])
    except SystemExit as e:  # the viewer's own parser refuses with parser.error
        code = e.code
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == EXIT_USAGE
    assert len(errors) == 1 and message in errors[0]  # not the checkpoint: no work was done
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("command", ["detect", "eval"])
def test_an_input_after_track_is_named_as_one_not_only_as_no_tracker(tmp_path, capsys,
                                                                      clip_path, command):
    """``--track``'s NAME is optional, so argparse gives it the input that follows."""
    where = ["--gt", str(tmp_path / "gt.jsonl")] if command == "eval" else []
    with pytest.raises(SystemExit) as stop:
        main([command, *where, "--track", clip_path])
    err = capsys.readouterr().err.splitlines()[-1]
    assert stop.value.code == EXIT_USAGE
    assert "expected a tracker, botsort or bytetrack" in err
    assert "looks like an input: put it before --track" in err
    with pytest.raises(SystemExit):
        main(["detect", clip_path, "--track", "sort"])
    err = capsys.readouterr().err.splitlines()[-1]
    assert "but got 'sort'" in err and "looks like an input" not in err


@pytest.mark.parametrize("command", ["detect", "batch", "eval"])
@pytest.mark.parametrize("options, message", [
    (["--frame-stride", "35"], "Expected --track-buffer >= 34 frames with --frame-stride 35"),
    (["--frame-stride", "2", "--track-buffer", "0"],
     "Expected --track-buffer >= 1 frames with --frame-stride 2"),
])
def test_a_stride_longer_than_the_track_buffer_is_refused_before_any_work(
        tmp_path, capsys, clip_path, command, options, message):
    """Every track would end in the frames between two detected ones: after the first frame
    no box would reach any output (new tracks show from their second detection)."""
    gt = tmp_path / "gt.jsonl"
    gt.write_text('{"frame": 0, "boxes": [[10, 10, 40, 40]], "labels": ["car"]}\n')
    where = {"batch": ["--out", str(tmp_path / "out")], "eval": ["--gt", str(gt)]}
    code = main([command, clip_path, *where.get(command, []), "--track", *options,
                 "--weights", "missing.pt"])
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == EXIT_USAGE
    assert len(errors) == 1 and message in errors[0]  # not the checkpoint: no work was done
    assert list(tmp_path.iterdir()) == [gt]


@pytest.mark.parametrize("command", ["detect", "live", "batch", "view"])
def test_tracker_settings_without_track_are_refused_before_any_work(tmp_path, capsys, clip_path,
                                                                    command):
    where = ["--out", str(tmp_path / "out")] if command == "batch" else []
    try:
        code = main([command, clip_path, *where, "--track-thresh", "0.3", "--match-thresh",
                     "0.5", "--weights", "missing.pt"])
    except SystemExit as e:
        code = e.code
    errors = [line for line in capsys.readouterr().err.splitlines() if "error:" in line]
    assert code == EXIT_USAGE and len(errors) == 1
    assert "Expected --track with --track-thresh and --match-thresh" in errors[0]
    assert list(tmp_path.iterdir()) == []


def test_mot_dash_writes_to_stdout_as_jsonl_and_csv_do(tmp_path, capsys, drive,
                                                      monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, stdout, err = run(capsys, drive, "--weights", DEMO_MODEL, "--device", "cpu",
                            "--track", "--mot", "-", "--csv", "d.csv")
    assert code == 0, err
    assert not Path("-").exists()  # before: a file named '-'
    rows = list(csv.DictReader(Path("d.csv").read_text().splitlines()))
    lines = stdout.splitlines()
    assert rows and len(lines) == len(rows)  # only MOT lines: the summary went to stderr
    assert [line.split(",")[:2] for line in lines] == [
        [str(int(r["frame"]) + 1), r["track_id"]] for r in rows]
    assert "wrote -" in err and "tracks" in err


def test_without_track_there_are_no_ids(tmp_path, capsys, clip_path, tiny_checkpoint):
    code, stdout, _ = run(capsys, clip_path, "--weights", tiny_checkpoint, "--device", "cpu",
                          "--conf", "0.05", "--classes", "all", "--jsonl", tmp_path / "d.jsonl")
    assert code == 0 and "tracks" not in stdout
    lines = [json.loads(line) for line in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert all("track_id" not in d for line in lines for d in line["detections"])


def test_live_with_several_sources_tracks_each_on_its_own(tmp_path, capsys, drive):
    """One tracker per source: each source's ids start from 1 and follow only its frames, as
    when the source runs alone."""
    common = ["--weights", DEMO_MODEL, "--device", "cpu", "--conf", "0.1", "--track", "-q"]
    code = main(["live", drive, drive, *map(str, common), "--jsonl", str(tmp_path / "two.jsonl")])
    assert code == 0, capsys.readouterr().err
    alone = tmp_path / "alone.jsonl"
    assert main(["detect", drive, *map(str, common), "--jsonl", str(alone)]) == 0
    expected = tracked(alone)
    for i in range(2):
        mine = tracked(tmp_path / f"two.{i}.jsonl")
        assert_same_tracks(mine, expected)
        assert min(t for frame in mine for t, _ in frame) == 1
