"""``drivevision eval``: which frames are scored (unlabelled ones, a file covering some
of the labelled frames, a strided file, COCO images by index or file name), and the
generated labelled clip the detector is run on."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from drivevision.cli import main
from drivevision.evaluation import evaluate, read_predictions, read_truth
from tests.evaluation.helpers import CAR, write_preds, write_truth

ASSETS = Path(__file__).parents[2] / "assets"


def test_unlabelled_frames_are_left_out_when_allowed(files, capsys):
    gt, pred = files
    write_preds(pred, {0: [("car", 0.9, CAR)], 7: [("car", 0.9, CAR)]})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--allow-unlabelled",
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["detections"] == 1
    assert "left out 1 predicted frame without" in captured.err


def covered(tmp_path, capsys, frames, *options, labelled=12):
    """``eval --pred --json`` of a truth with a car in each of ``labelled`` frames and a
    file that finds it in each of ``frames``: the metrics and the notes."""
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", shifted(CAR, 10 * f))]
                                             for f in range(labelled)])
    pred = write_preds(tmp_path / "pred.jsonl", {f: [("car", 0.9, shifted(CAR, 10 * f))]
                                                 for f in frames})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", *options]) == 0
    out, err = capsys.readouterr()
    metrics, notes = json.loads(out), [line for line in err.splitlines() if "note:" in line]
    assert metrics.pop("notes") == [line.split("note: ", 1)[1] for line in notes]
    return metrics, notes


def shifted(box, dx):
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


@pytest.mark.parametrize("frames, says, not_said", [
    (range(0, 12, 5), ["scored 3 of 12 labelled frames", "(the others are not counted as "
                       "missed)", "every 5th frame only (written with --frame-stride 5?)"],
     ["cut short", "start at", "lack"]),
    (range(8), ["scored 8 of 12", "they stop at frame 7, the ground truth at 11 (a run cut "
                "short?)"], ["--frame-stride", "start at", "lack"]),
    (range(0, 6, 5), ["scored 2 of 12", "every 5th frame only", "and stop at frame 5, the "
                      "ground truth at 11 (a run cut short?)"], ["start at", "lack"]),
    ([f for f in range(12) if f not in (3, 6)], ["scored 10 of 12", "they lack 2 frames in "
                                                 "between (3, 6)"],
     ["--frame-stride", "cut short", "start at"]),
    (range(4, 12), ["scored 8 of 12", "they start at frame 4, the ground truth at 0"],
     ["--frame-stride", "cut short", "lack"]),
])
def test_only_the_frames_the_predictions_have_are_scored_and_a_note_says_why(
        tmp_path, capsys, frames, says, not_said):
    """A file ``detect --frame-stride K`` wrote, or one of a run cut short, scores what the
    detector did on the frames it saw: the frames without a line are not missed objects."""
    metrics, [note] = covered(tmp_path, capsys, frames)
    assert (metrics["frames"], metrics["gt_boxes"]) == (len(frames), len(frames))
    assert (metrics["AP"], metrics["AR100"]) == pytest.approx((1.0, 1.0))
    assert note.startswith("drivevision: note: scored ")
    assert all(s in note for s in says) and not any(s in note for s in not_said), note


def test_a_file_with_every_labelled_frame_needs_no_note(tmp_path, capsys):
    metrics, notes = covered(tmp_path, capsys, range(12))
    assert metrics["frames"] == 12 and notes == []


def test_predicted_frames_past_the_ground_truth_are_left_out_of_the_stride_too(tmp_path,
                                                                               capsys):
    metrics, notes = covered(tmp_path, capsys, range(0, 20, 5), "--allow-unlabelled",
                             labelled=10)
    assert metrics["frames"] == 2 and metrics["detections"] == 2
    assert metrics["AP"] == pytest.approx(1.0)
    assert "scored 2 of 10 labelled frames" in notes[0] and "--frame-stride 5?" in notes[0]
    assert "cut short" not in notes[0]  # frame 10 is past the ground truth, not missing
    assert "left out 2 predicted frames without ground truth (10, 15)" in notes[1]


def test_a_file_with_no_labelled_frame_is_refused_also_with_allow_unlabelled(files, capsys):
    gt, pred = files
    write_preds(pred, {7: [("car", 0.9, CAR)], 8: []})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--allow-unlabelled"]) == 2
    [err] = capsys.readouterr().err.strip().splitlines()
    assert err.endswith(f"{pred} has no line for any frame {gt} labels (its frames 7-8, the "
                        "ground truth's 0-1): nothing to score; were they made from the same "
                        "video?")


def test_coco_images_are_frames_by_frame_index_or_file_name(tmp_path):
    coco = {"categories": [{"id": 3, "name": "Car"}],
            "images": [{"id": 10, "file_name": "f10.png", "width": 320, "height": 240},
                       {"id": 11, "file_name": "f2.png", "width": 320, "height": 240}],
            "annotations": [{"id": 1, "image_id": 10, "category_id": 3,
                             "bbox": [10, 10, 100, 100], "iscrowd": 0}]}
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    by_name = read_truth(tmp_path / "gt.json")
    assert len(by_name.frames[1]) == 1 and len(by_name.frames[0]) == 0  # f2 before f10
    for frame, image in zip((7, 3), coco["images"]):
        image["frame_index"] = frame
    (tmp_path / "gt.json").write_text(json.dumps(coco))
    by_index = read_truth(tmp_path / "gt.json")
    assert by_index.frames[7].boxes.tolist() == [CAR] and by_index.classes == ("car",)
    preds = read_predictions(write_preds(tmp_path / "p.jsonl", {7: [("car", 0.9, CAR)]}))
    assert evaluate(by_index, preds).metrics["AP"] == pytest.approx(1.0)


def test_the_eval_clip_is_made_of_drives_the_demo_model_never_saw(tmp_path):
    from drivevision.synthetic import EVAL_SEEDS, write_eval_clip

    trained = json.loads((ASSETS / "tiny-fpn-synthetic.json").read_text())
    assert not set(EVAL_SEEDS) & set(trained["train_scenes"]["seeds"])
    scenes = write_eval_clip(tmp_path / "e.mp4", tmp_path / "e.jsonl", frames_per_seed=4)
    truth = read_truth(tmp_path / "e.jsonl")
    assert len(truth.frames) == len(scenes) == 4 * len(EVAL_SEEDS)
    assert truth.has_tracks and set(truth.sizes.values()) == {(384, 216)}
    ids = [set(truth.frames[f].track_ids.tolist()) for f in (0, 4)]
    assert not ids[0] & ids[1]  # another drive: other objects, other ids
    np.testing.assert_allclose(truth.frames[3].boxes, scenes[3].boxes, atol=0.01)
