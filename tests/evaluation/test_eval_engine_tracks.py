"""``drivevision eval INPUT --track`` and ``--frame-stride``: the demo model's tracks scored
on a generated labelled clip, on every frame or every k-th, as ``detect`` writes them."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from drivevision.cli import eval_run, main
from drivevision.engines.hardware import FEATURES, CpuFeatures
from drivevision.synthetic import write_eval_clip, write_ground_truth
from drivevision.synthetic.evalset import eval_scenes

WEIGHTS = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")


def run_tracked(tmp_path, capsys, *options: str, frames_per_seed: int = 9) -> dict:
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=frames_per_seed)
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", "--json", "--track", *options])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_tracks_are_scored_on_every_frame_or_on_every_kth_with_frame_stride(tmp_path, capsys):
    from drivevision.evaluation import read_truth

    every = run_tracked(tmp_path, capsys, "bytetrack")
    strided = run_tracked(tmp_path, capsys, "bytetrack", "--frame-stride", "4")
    assert (every["track"], every["frame_stride"], strided["frame_stride"]) == (
        "bytetrack", 1, 4)
    [all_frames], [kth] = every["results"], strided["results"]
    truth = read_truth(tmp_path / "gt.jsonl")
    assert all_frames["frames"] == 9 and kth["frames"] == 3  # frames 0, 4 and 8
    assert kth["gt_boxes"] == sum(len(truth.frames[f]) for f in (0, 4, 8))
    for row in (all_frames, kth):
        assert row["gt_tracks"] > 0 and 0 < row["recall"] <= 1 and row["HOTA"] > 0, row
    assert all_frames["detections"] > kth["detections"]


def test_the_table_shows_the_tracker_and_its_scores(tmp_path, capsys, monkeypatch):
    # a CPU with every feature looked for: the longest features line there is
    every = CpuFeatures("Xeon", frozenset(FEATURES))
    monkeypatch.setattr(eval_run, "cpu_features", lambda: every)
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=3)
    assert main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", "--track", "--frame-stride", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("tracker botsort on frames 0, 2, 4, ...") for line in lines)
    # two tables, AP and tracks, each with the torch fp32 row, every column; 80 columns
    headers = [i for i, line in enumerate(lines) if line.startswith("engine")]
    assert [lines[i].split()[2:] for i in headers] == [
        ["AP", "AP50", "AP75", "ms/frame", "dAP"], ["HOTA", "MOTA", "IDF1", "IDsw", "recall"]]
    for i in headers:
        assert lines[i + 1].startswith("torch     fp32 ")
        assert len(lines[i + 1].split()) == len(lines[i].split())
    assert max(len(line) for line in lines if not line.startswith("note:")) <= 80


def test_eval_scores_the_frames_detect_writes_with_the_same_stride_past_a_damaged_one(
        tmp_path, capsys, monkeypatch):
    """Frames 0, K, 2K, ... by index in the input, as ``detect --frame-stride`` keeps them:
    image 1 of the folder is damaged, so counting the frames read would have picked 0, 3, 5."""
    import drivevision.cli.eval_run as eval_run

    folder, gt, jsonl = tmp_path / "frames", tmp_path / "gt.jsonl", tmp_path / "d.jsonl"
    folder.mkdir()
    scenes = eval_scenes((101,), frames_per_seed=7)
    write_ground_truth(gt, scenes)
    for i, scene in enumerate(scenes):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), scene.image)
    (folder / "frame_001.png").write_bytes(b"not an image")
    options = ["--weights", WEIGHTS, "--device", "cpu", "--conf", "0.05", "--track",
               "--frame-stride", "2"]
    assert main(["detect", str(folder), "--jsonl", str(jsonl), "-q",
                 *options]) == 0
    written = [json.loads(line)["frame"] for line in jsonl.read_text().splitlines()]
    scored = []

    def spy(truth, preds, **kwargs):
        scored.append((sorted(truth.frames), sorted(preds.frames)))
        return evaluate(truth, preds, **kwargs)

    evaluate = eval_run.evaluate
    monkeypatch.setattr(eval_run, "evaluate", spy)
    assert main(["eval", "--gt", str(gt), str(folder), "--warmup", "0", "--json",
                 *options]) == 0
    [row] = json.loads(capsys.readouterr().out)["results"]
    assert written == [0, 2, 4, 6] and scored == [(written, written)] and row["frames"] == 4


@pytest.mark.slow
def test_eval_pred_of_a_strided_detect_run_scores_as_eval_input_with_that_stride(
        tmp_path, capsys):
    """``detect --track --frame-stride 3`` then ``eval --pred`` scores the frames detect saw,
    as ``eval INPUT --track --frame-stride 3`` does: the same AP and tracking scores, not the
    skipped frames' objects as misses."""
    video, gt, jsonl = tmp_path / "clip.mp4", tmp_path / "gt.jsonl", tmp_path / "d.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=7)
    options = ["--weights", WEIGHTS, "--device", "cpu", "--precision", "fp32", "--track",
               "bytetrack", "--frame-stride", "3"]
    assert main(["detect", str(video), "--jsonl", str(jsonl), "--conf", "0.05", "-q",
                 *options]) == 0
    assert main(["eval", "--gt", str(gt), "--pred", str(jsonl), "--json"]) == 0
    out, err = capsys.readouterr()
    from_file = json.loads(out)
    assert "scored 3 of 7 labelled frames" in err and "--frame-stride 3?" in err
    assert main(["eval", "--gt", str(gt), str(video), "--warmup", "0", "--json",
                 *options]) == 0
    [run] = json.loads(capsys.readouterr().out)["results"]
    assert from_file["frames"] == run["frames"] == 3  # frames 0, 3 and 6
    assert from_file["gt_boxes"] == run["gt_boxes"] and from_file["recall"] > 0
    for key in ("AP", "AP50", "HOTA", "MOTA", "IDF1", "id_switches", "recall"):
        assert from_file[key] == pytest.approx(run[key], abs=1e-6), key
