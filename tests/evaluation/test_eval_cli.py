"""``drivevision eval``: file formats read, bad input refused with one line (exit 2), the
JSON and report outputs, tracks scored, and the detector run on a generated labelled clip."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import numpy as np
import pytest

from drivevision.cli import main
from drivevision.evaluation import evaluate, read_predictions, read_truth
from tests.evaluation.helpers import CAR, PERSON, write_preds, write_truth

ASSETS = Path(__file__).parents[2] / "assets"


def test_json_has_the_coco_keys_and_per_class(files, capsys):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert {"AP", "AP50", "AP75", "APs", "APm", "APl", "AR100", "per_class"} <= set(out)
    assert out["per_class"] == pytest.approx({"car": 1.0, "person": 0.0})
    assert "MOTA" not in out  # no track ids on either side


def test_report_writes_metrics_summary_and_curves(files, tmp_path, capsys):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--report",
                 str(tmp_path / "rep")]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {tmp_path / 'rep'}"
    names = sorted(p.name for p in (tmp_path / "rep").iterdir())
    assert names == [".drivevision-report.txt", "confusion-matrix.png", "metrics.json",
                     "pr-car.png", "pr-person.png", "summary.md"]
    assert json.loads((tmp_path / "rep" / "metrics.json").read_text())["AP50"] == \
        pytest.approx(0.5)
    assert "| car |" in (tmp_path / "rep" / "summary.md").read_text()


def test_a_report_without_matplotlib_says_why_it_has_no_curves(files, tmp_path, capsys,
                                                              caplog, monkeypatch):
    gt, pred = files
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # as if never installed
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--report",
                 str(tmp_path / "rep")]) == 0
    assert sorted(p.name for p in (tmp_path / "rep").iterdir()) == [
        ".drivevision-report.txt", "metrics.json", "summary.md"]
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING] == [
        f"{tmp_path / 'rep'}: no precision-recall curves or confusion matrix (PNG): they "
        'need matplotlib, which comes with the eval extra: pip install -e ".[eval]" in the clone']


def test_report_with_json_says_where_it_went_on_stderr(files, tmp_path, capsys):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", "--report",
                 str(tmp_path / "rep")]) == 0
    out, err = capsys.readouterr()
    assert "AP" in json.loads(out)  # stdout stays one JSON document
    assert f"wrote {tmp_path / 'rep'}" in err.splitlines()


def test_a_file_written_without_low_scores_warns_that_ap_is_understated(files, tmp_path,
                                                                          capsys):
    gt, pred = files  # its one box scores 0.9: written with detect's default --conf 0.5
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning.startswith("drivevision: warning: AP is understated: no score in ")
    assert warning.endswith(f"write it with drivevision detect INPUT --conf 0.05 --jsonl {pred}")
    low = write_preds(tmp_path / "low.jsonl", {0: [("car", 0.9, CAR), ("car", 0.06, PERSON)],
                                               1: []})
    assert main(["eval", "--gt", str(gt), "--pred", str(low), "--json"]) == 0
    assert "understated" not in capsys.readouterr().err


def test_a_file_of_tracks_is_not_said_to_understate_ap_for_its_lack_of_low_scores(
        files, tmp_path, capsys):
    """A tracker writes only the boxes that extend a track, so a file of tracks written at
    --conf 0.05 can hold no score under 0.2."""
    gt, _ = files
    tracks = tmp_path / "tracks.jsonl"
    with open(tracks, "w") as f:
        for i in range(2):
            f.write(json.dumps({"frame": i, "timestamp_ms": 100.0 * i, "detections": [
                {"class_id": 0, "class_name": "car", "score": 0.9, "box": CAR,
                 "track_id": 1}]}) + "\n")
    assert read_predictions(str(tracks)).has_tracks  # the premise: scored as tracks
    assert main(["eval", "--gt", str(gt), "--pred", str(tracks), "--json"]) == 0
    assert "understated" not in capsys.readouterr().err


def _bad_line(tmp_path, gt, pred):
    (tmp_path / "pred.jsonl").write_text(pred.read_text() + '{"frame": 2, "detections": [\n')
    return gt, tmp_path / "pred.jsonl"


def _x2_before_x1(tmp_path, gt, pred):
    write_preds(pred, {0: [("car", 0.9, [110, 10, 10, 110])]})
    return gt, pred


def _empty(tmp_path, gt, pred):
    (tmp_path / "empty.jsonl").write_text("\n")
    return tmp_path / "empty.jsonl", pred


def _other_size(tmp_path, gt, pred):
    write_preds(pred, {0: [("car", 0.9, [600, 300, 700, 400])]})  # a 1280x720 frame's box
    return gt, pred


def _other_classes(tmp_path, gt, pred):
    write_preds(pred, {0: [("dog", 0.9, CAR)]})
    return gt, pred


def _unlabelled_frame(tmp_path, gt, pred):
    write_preds(pred, {0: [], 5: []})
    return gt, pred


def _no_common_frame(tmp_path, gt, pred):
    write_preds(pred, {5: [], 6: []})
    return gt, pred


def _video_as_pred(tmp_path, gt, pred):
    video = tmp_path / "clip.mp4"
    video.write_bytes(bytes(range(256)) * 4)  # an MP4's bytes are not UTF-8 text
    return gt, video


def _folder_as_gt(tmp_path, gt, pred):
    return tmp_path, pred


def _swapped(tmp_path, gt, pred):
    return pred, gt


def _mot_as_pred(tmp_path, gt, pred):
    """What ``detect --track --mot`` writes, given where its ``--jsonl`` belongs."""
    mot = tmp_path / "tracks.txt"
    mot.write_text("1,1,10.00,10.00,100.00,100.00,0.9000,-1,-1,-1\n")
    return gt, mot


def _csv_as_pred(tmp_path, gt, pred):
    csv = tmp_path / "tracks.csv"
    csv.write_text("frame,timestamp_ms,track_id,class_id,class_name,score,x1,y1,x2,y2\n"
                   "0,0.0,1,2,car,0.9,10,10,110,110\n")
    return gt, csv


@pytest.mark.parametrize("make, expected", [
    (_video_as_pred, "clip.mp4 is not a text file: expected detections as JSONL, as drivevision "
                     "detect --jsonl writes them (a video or folder to run the detector on is "
                     "the INPUT, without --pred)"),
    (_folder_as_gt, "is a folder: expected ground truth: JSONL (one frame a line), COCO .json, "
                    "MOTChallenge or KITTI tracking .txt or a YOLO dataset folder (data.yaml or "
                    "classes.txt, images/, labels/)"),
    (_swapped, 'pred.jsonl line 1: expected "boxes", a list of [x1, y1, x2, y2]; this looks '
               "like a --pred file: are --gt and --pred swapped?"),
    (_bad_line, "pred.jsonl line 3: not JSON"),
    (_mot_as_pred, "tracks.txt line 1: not JSON: this looks like MOTChallenge text, as "
                   "detect --mot writes it; expected detections as JSONL, as drivevision "
                   "detect --jsonl writes them"),
    (_csv_as_pred, "tracks.csv line 1: not JSON: this looks like CSV, as detect --csv writes "
                   "it; expected detections as JSONL"),
    (_x2_before_x1, "x2 < x1"),
    (_empty, "empty.jsonl is empty"),
    (_other_size, "outside the 320x240 frame"),
    (_other_classes, "No predicted class is a class of the ground truth"),
    (_unlabelled_frame, "has 1 frame that"),
    (_no_common_frame, "has no line for any frame"),
])
def test_bad_input_is_one_line_and_exit_2(files, tmp_path, capsys, make, expected):
    gt, pred = make(tmp_path, *files)
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


@pytest.mark.parametrize("options", [["--engines", "torch,onnx"], ["--precision", "bf16"],
                                     ["--conf", "0.5"], ["--classes", "car"], ["--track"],
                                     ["--frame-stride", "3"], ["--agnostic-nms"],
                                     ["--iou", "0.6"], ["--max-det", "50"]])
def test_detector_options_with_pred_are_refused_not_ignored(files, capsys, options):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"{options[0]} applies only when eval runs the detector" in err[0]


def test_several_detector_options_with_pred_are_named_together(files, capsys):
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--conf", "0.5", "--track"]) == 2
    assert "--conf, --track apply only when eval runs" in capsys.readouterr().err


@pytest.mark.parametrize("options, expected", [
    (["--frame-stride", "3"], "Expected --track with --frame-stride"),
    (["--track", "--frame-stride", "0"], "Expected --frame-stride >= 1 frames, but got 0"),
    (["--track-buffer", "10"], "Expected --track with --track-buffer"),
])
def test_tracker_settings_on_an_input_are_checked_before_the_model_loads(files, capsys, options,
                                                                         expected):
    gt, _ = files
    assert main(["eval", "--gt", str(gt), "missing.mp4", "--weights", "missing.pt",
                 *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


@pytest.mark.parametrize("options, expected", [
    (["--engines", "torch,onx"], "Expected --engines from auto, torch, compiled, onnx, tensorrt, "
                                 "but got 'onx'; did you mean onnx?"),
    (["--precision", "fp32,fp61"], "but got 'fp61'; did you mean fp16?"),
])
def test_a_misspelt_engine_or_precision_is_refused_before_the_reference_runs(files, capsys,
                                                                             options, expected):
    gt, _ = files  # missing.pt: the model would fail to load, so nothing ran before the refusal
    assert main(["eval", "--gt", str(gt), "missing.mp4", "--weights", "missing.pt",
                 *options]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and expected in err[0], err


def test_a_missing_input_is_refused_before_the_model_loads(files, capsys):
    gt, _ = files
    assert main(["eval", "--gt", str(gt), "missing.mp4", "--weights", "missing.pt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["drivevision: error: No such file or directory: missing.mp4"]


def test_a_negative_warmup_is_refused_as_parsed_naming_the_option(files, capsys):
    """Was taken as no warm-up at all, silently."""
    gt, _ = files
    with pytest.raises(SystemExit) as usage:
        main(["eval", "--gt", str(gt), "missing.mp4", "--warmup", "-1"])
    assert usage.value.code == 2
    assert capsys.readouterr().err.splitlines() == [
        "drivevision eval: error: argument --warmup: expected a whole number >= 0, but got "
        "'-1' (drivevision eval --help lists the options)"]



def _folder_of_videos(tmp_path):
    (tmp_path / "footage").mkdir()
    (tmp_path / "footage" / "clip.mp4").write_bytes(b"\0" * 64)
    return tmp_path / "footage", "No images (.bmp"


def _empty_video(tmp_path):
    (tmp_path / "empty.mp4").touch()
    return tmp_path / "empty.mp4", "empty.mp4 is empty (0 bytes)"


def _damaged_video(tmp_path):
    (tmp_path / "damaged.mp4").write_bytes(b"not a video" * 100)
    return tmp_path / "damaged.mp4", "Cannot open"


@pytest.mark.parametrize("make", [_folder_of_videos, _empty_video, _damaged_video])
def test_an_input_that_cannot_be_read_is_refused_before_the_model_loads(files, tmp_path,
                                                                        capsys, make):
    """A batch's footage folder (videos, not images), an empty or a damaged file: one line
    at once, not after a model load (missing.pt would fail that)."""
    gt, _ = files
    source, expected = make(tmp_path)
    assert main(["eval", "--gt", str(gt), str(source), "--weights", "missing.pt"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("drivevision: error: ") and expected in err[0], err

@pytest.mark.parametrize("mode", ["pred", "input"])
def test_a_report_naming_a_file_is_refused_before_any_work_and_the_file_kept(files, tmp_path,
                                                                            capsys, mode):
    gt, pred = files
    report = tmp_path / "notes.md"
    report.write_text("mine\n")
    source = ["--pred", str(pred)] if mode == "pred" else [str(gt), "--weights", "missing.pt"]
    assert main(["eval", "--gt", str(gt), *source, "--report", str(report)]) == 2
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and f"--report {report} is a file; expected a folder" in err[0], err
    assert captured.out == "" and report.read_text() == "mine\n"


def test_without_the_eval_extra_the_error_says_what_to_install(files, capsys, monkeypatch):
    gt, pred = files
    for name in ("pycocotools", "pycocotools.coco", "pycocotools.cocoeval"):
        monkeypatch.setitem(sys.modules, name, None)  # as if never installed
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "pycocotools" in err[0], err
    assert err[0].endswith('it comes with the eval extra, pip install -e ".[eval]" in the clone')


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


def _mot_truth(path, frames=4):
    """Two people walking apart, frames from 1; a third box flagged 0 (ignore) in frame 1."""
    lines = [f"{f + 1},{tid},{10 + 5 * f + 100 * tid},20,40,100,1,1,1"
             for f in range(frames) for tid in (1, 2)]
    path.write_text("\n".join(lines + ["1,9,300,20,40,100,0,7,1"]) + "\n")
    return path


def _tracked(path, swap_from: int, frames=4):
    with open(path, "w") as f:
        for i in range(frames):
            dets = [{"class_name": "person", "score": 0.9, "track_id": (tid if i < swap_from
                                                                        else 3 - tid),
                     "box": [10 + 5 * i + 100 * tid, 20, 50 + 5 * i + 100 * tid, 120]}
                    for tid in (1, 2)]
            f.write(json.dumps({"frame": i, "detections": dets}) + "\n")
    return path


def test_mot_tracks_score_mota_idf1_and_switches(tmp_path, capsys):
    gt = _mot_truth(tmp_path / "gt.txt")
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "a.jsonl", 99)),
                 "--json"]) == 0
    perfect = json.loads(capsys.readouterr().out)
    assert (perfect["MOTA"], perfect["IDF1"], perfect["id_switches"]) == (1.0, 1.0, 0)
    assert perfect["AP"] == pytest.approx(1.0) and perfect["gt_boxes"] == 9
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "b.jsonl", 2)),
                 "--json"]) == 0
    swapped = json.loads(capsys.readouterr().out)
    assert swapped["id_switches"] == 2
    assert swapped["MOTA"] == pytest.approx(1 - 2 / 8)  # 8 boxes scored, the ignored one not
    assert swapped["IDF1"] == pytest.approx(0.5)
    assert perfect["recall"] == swapped["recall"] == 1.0  # every box shown, ids aside


def test_recall_is_the_share_of_ground_truth_boxes_a_track_shows(tmp_path, capsys):
    gt = _mot_truth(tmp_path / "gt.txt")
    lines = _tracked(tmp_path / "a.jsonl", 99).read_text().splitlines()
    first = json.loads(lines[0])
    first["detections"] = first["detections"][:1]  # frame 0 shows one person of the two
    (tmp_path / "a.jsonl").write_text("\n".join([json.dumps(first), *lines[1:]]) + "\n")
    assert main(["eval", "--gt", str(gt), "--pred", str(tmp_path / "a.jsonl"), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["recall"] == pytest.approx(7 / 8)


def test_tracks_of_a_strided_file_are_scored_on_its_frames_as_eval_frame_stride_does(
        tmp_path, capsys):
    """Tracks written at every 2nd frame: scored on frames 0 and 2, as ``eval INPUT --track
    --frame-stride 2`` scores its own (the ground truth cut to those frames); the skipped
    frames' people are not misses, and an id swap between two scored frames still counts."""
    from dataclasses import replace

    gt = _mot_truth(tmp_path / "gt.txt")
    truth = read_truth(gt)
    every_2nd = replace(truth, frames={f: fb for f, fb in truth.frames.items() if f % 2 == 0})
    for swap_from, switches in ((99, 0), (1, 2)):
        lines = _tracked(tmp_path / "a.jsonl", swap_from).read_text().splitlines()
        pred = tmp_path / "a.jsonl"
        pred.write_text("\n".join(lines[::2]) + "\n")  # frames 0 and 2
        assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"]) == 0
        out, err = capsys.readouterr()
        scored = json.loads(out)
        assert (scored["frames"], scored["recall"], scored["id_switches"]) == (2, 1.0, switches)
        assert "scored 2 of 4 labelled frames" in err and "--frame-stride 2?" in err
        as_eval_input = evaluate(every_2nd, read_predictions(pred)).metrics
        for key in ("MOTA", "IDF1", "HOTA", "AssA", "recall", "misses", "AP"):
            assert scored[key] == pytest.approx(as_eval_input[key]), key
    assert scored["MOTA"] == pytest.approx(1 - 2 / 4)  # 4 boxes scored, 2 switches


def test_hota_by_trackeval_splits_detection_from_association(tmp_path, capsys):
    gt = _mot_truth(tmp_path / "gt.txt")
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "a.jsonl", 99)),
                 "--json"]) == 0
    perfect = json.loads(capsys.readouterr().out)
    assert (perfect["HOTA"], perfect["DetA"], perfect["AssA"]) == pytest.approx((1, 1, 1))
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "b.jsonl", 2)),
                 "--json"]) == 0
    swapped = json.loads(capsys.readouterr().out)
    # Every box found (DetA 1); each person's id is right for 2 of its 4 frames and each
    # predicted id covers both people: association 2 / (4 + 4 - 2) for every match.
    assert swapped["DetA"] == pytest.approx(1.0)
    assert swapped["AssA"] == pytest.approx(1 / 3)
    assert swapped["HOTA"] == pytest.approx((1 / 3) ** 0.5)


def test_hota_matches_only_within_a_class(tmp_path):
    gt = tmp_path / "gt.jsonl"
    gt.write_text("".join(json.dumps({"frame": f, "boxes": [CAR, PERSON],
                                      "labels": ["car", "truck"], "track_ids": [1, 2]}) + "\n"
                          for f in (0, 1)))
    pred = tmp_path / "pred.jsonl"
    classes = [("car", "truck"), ("truck", "truck")]  # frame 1: track 5 turns truck on the car
    pred.write_text("".join(json.dumps({"frame": f, "detections": [
        {"class_name": c, "score": 0.9, "track_id": t, "box": b}
        for c, t, b in zip(classes[f], (5, 6), (CAR, PERSON))]}) + "\n" for f in (0, 1)))
    m = evaluate(read_truth(gt), read_predictions(pred)).metrics
    # 3 matches, frame 1's car missed and its "truck" a false positive: DetA 3 / 5.
    # Object 1 and track 5 share 1 of their 2 + 2 boxes (1/3), object 2 and track 6 all 2.
    assert m["DetA"] == pytest.approx(3 / 5)
    assert m["AssA"] == pytest.approx((1 / 3 + 2 * 1) / 3)
    assert m["HOTA"] == pytest.approx((3 / 5 * 7 / 9) ** 0.5)


def test_without_trackeval_hota_is_null_and_a_note_says_how_to_get_it(tmp_path, capsys,
                                                                        monkeypatch):
    import sys

    for name in ("trackeval", "trackeval.metrics", "trackeval.metrics.hota"):
        monkeypatch.setitem(sys.modules, name, None)  # import fails as when not installed
    gt = _mot_truth(tmp_path / "gt.txt")
    assert main(["eval", "--gt", str(gt), "--pred", str(_tracked(tmp_path / "a.jsonl", 99)),
                 "--json"]) == 0
    out, err = capsys.readouterr()
    result = json.loads(out)
    assert result["HOTA"] is None and result["MOTA"] == 1.0
    assert "pip install --no-deps trackeval" in err


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


def empty_lines(tmp_path, frames: int) -> Path:
    return write_preds(tmp_path / "pred.jsonl", {f: [] for f in range(frames)})


@pytest.mark.parametrize("mode", ["json", "summary"])
def test_predictions_without_any_box_are_noted_beside_their_ap_of_0(tmp_path, capsys, mode):
    """Every line of the file without detections (the wrong file, or one written with a
    --conf no box passed): AP 0 with a note saying so, not a bare 0."""
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", CAR)] for _ in range(3)])
    pred = empty_lines(tmp_path, 3)
    json_flag = ["--json"] if mode == "json" else []
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), *json_flag]) == 0
    out, err = capsys.readouterr()
    note = (f"{pred} holds no boxes (3 lines, none with a detection), so AP is 0: the wrong "
            "file, or one written with a --conf too high for any box to pass?")
    if mode == "json":
        metrics = json.loads(out)
        assert metrics["AP"] == 0 and metrics["notes"] == [note]
        assert f"drivevision: note: {note}" in err.splitlines()
    else:
        assert f"- {note}" in out.splitlines()


@pytest.mark.parametrize("mapping, hint", [
    ("vehicle=truk", "did you mean truck?"),
    ("vehicle=tractor", "its classes: car, truck"),
])
def test_a_class_map_naming_a_class_the_file_never_has_is_noted_with_the_close_ones(
        tmp_path, capsys, mapping, hint):
    """--class-map vehicle=truk (a typo): no box becomes a vehicle, so that class scores 0
    with no word of why; a note names the class the file lacks and the close ones. (With
    INPUT it is refused against the model's classes; a file tells only those it holds.)"""
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", CAR), ("vehicle", PERSON)]],
                     width=320, height=240)
    pred = write_preds(tmp_path / "pred.jsonl", {0: [("car", 0.9, CAR),
                                                     ("truck", 0.8, PERSON)]})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--class-map", mapping,
                 "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    model = mapping.split("=")[1]
    assert metrics["notes"][0] == (f"--class-map {mapping}: no prediction in {pred} is a "
                                   f"{model} ({hint}), so no box is scored as vehicle by it")
    assert len(metrics["notes"]) == 3  # and truck, unmapped, is left out of AP, but finds
    assert metrics["notes"][2].endswith(  # the vehicle: the map that scores it
        "but truck boxes find 1 of the 1 vehicle objects: to score them as those, "
        "--class-map \"vehicle=truck\"")


def test_a_class_map_naming_a_class_the_file_has_needs_no_note(tmp_path, capsys):
    gt = write_truth(tmp_path / "gt.jsonl", [[("vehicle", CAR)]], width=320, height=240)
    pred = write_preds(tmp_path / "pred.jsonl", {0: [("truck", 0.9, CAR)]})
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--class-map",
                 "vehicle=Truck", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["AP"] == pytest.approx(1.0) and metrics["notes"] == []
