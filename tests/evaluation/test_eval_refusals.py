"""``drivevision eval``: bad input refused with one line (exit 2), options that do not
apply or cannot work refused before the model loads, and what to install when an extra lacks."""

from __future__ import annotations

import sys

import pytest

from drivevision.cli import main
from tests.evaluation.helpers import CAR, write_preds


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
    (_folder_as_gt, "is a folder: expected ground truth: JSONL (one frame a line), COCO or "
                    "BDD100K .json, MOTChallenge or KITTI tracking .txt, a KITTI object label "
                    "folder (label_2/) or a YOLO dataset folder (data.yaml or classes.txt, "
                    "images/, labels/)"),
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
