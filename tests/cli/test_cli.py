"""`drivevision detect` as a user runs it: outputs, summary, and bad inputs."""

import json
import logging
import os
import re
import subprocess
import sys
from fractions import Fraction

import cv2
import numpy as np
import pytest
import torch

from drivevision.cli import main
from drivevision.cli.exits import EXIT_INPUT_DAMAGED
from drivevision.model import LoadedModel, build_model, save_checkpoint
from drivevision.synthetic import write_clip
from tests.standins import count_frames, x264_options


def run(capsys, *args):
    code = main(["detect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name)


def test_detect_writes_video_jsonl_csv_and_prints_a_summary(tmp_path, capsys, clip_path,
                                                           tiny_checkpoint):
    out, jsonl, csv = tmp_path / "a.mp4", tmp_path / "d.jsonl", tmp_path / "d.csv"
    code, stdout, _ = run(capsys, clip_path, "-o", out, "--jsonl", jsonl, "--csv", csv,
                          "--weights", tiny_checkpoint, "--conf", "0.01", "--classes", "all")
    assert code == 0
    assert "12 frames" in stdout and "inference" in stdout
    assert re.search(r"^write +[0-9.]+ +[0-9.]+$", stdout, re.M)  # the outputs' writing
    assert len(jsonl.read_text().splitlines()) == 12
    header = csv.read_text().splitlines()[0]
    assert header.startswith("frame,timestamp_ms,track_id,class_id,class_name,score")
    assert leftovers(tmp_path) == []


def test_video_preset_trades_the_encoders_cpu_for_file_size(tmp_path, capsys, clip_path,
                                                            tiny_checkpoint):
    fast, default = tmp_path / "fast.mp4", tmp_path / "default.mp4"
    assert run(capsys, clip_path, "-o", fast, "--video-preset", "ultrafast",
               "--weights", tiny_checkpoint)[0] == 0
    assert run(capsys, clip_path, "-o", default, "--weights", tiny_checkpoint)[0] == 0
    # x264 writes its settings into the stream: ultrafast turns off CABAC and deblocking
    assert x264_options(fast)["cabac"] == "0" and x264_options(fast)["deblock"].startswith("0")
    assert x264_options(default)["cabac"] == "1" and x264_options(default)["subme"] == "2"
    assert count_frames(fast) == count_frames(default) == 12
    assert fast.stat().st_size > default.stat().st_size
    with pytest.raises(SystemExit) as usage:
        run(capsys, clip_path, "-o", tmp_path / "x.mp4", "--video-preset", "fastest")
    assert usage.value.code == 2 and "invalid choice: 'fastest'" in capsys.readouterr().err


def test_engine_auto_says_what_it_chose_and_why(capsys, clip_path, tiny_checkpoint,
                                                monkeypatch):
    import drivevision.engines

    monkeypatch.setattr(drivevision.engines, "pick_auto", lambda device, precision:
                        ("torch", "the test's choice"))
    code, _, err = run(capsys, clip_path, "--weights", tiny_checkpoint, "--engine", "auto",
                       "--device", "cpu", "--precision", "fp32")
    assert code == 0 and "engine torch fp32 on cpu" in err
    assert "engine auto: the test's choice" in err and "precision auto" not in err
    code, _, err = run(capsys, clip_path, "--weights", tiny_checkpoint, "--device", "cpu",
                       "--precision", "fp32")
    assert code == 0 and "engine torch fp32 on cpu" in err and "auto:" not in err


def test_the_first_line_names_the_cpu_features_and_why_auto_picked_its_precision(
        capsys, clip_path, tiny_checkpoint):
    from drivevision.engines.hardware import cpu_features, pick_precision

    code, _, err = run(capsys, clip_path, "--weights", tiny_checkpoint, "--device", "cpu")
    precision, reason = pick_precision(torch.device("cpu"))
    first = err.splitlines()[1]  # after "loading ..."
    assert code == 0 and f"engine torch {precision} on cpu" in first
    assert cpu_features().describe() in first and f"precision auto: {reason}" in first


def test_engine_onnx_with_the_default_precision_runs_on_any_cpu(capsys, clip_path,
                                                                 tiny_checkpoint):
    code, _, err = run(capsys, clip_path, "--weights", tiny_checkpoint, "--engine", "onnx",
                       "--device", "cpu")
    assert code == 0 and "engine onnx fp32 on cpu" in err


def write_image(path, image):
    cv2.imwrite(str(path), image)
    return path


CUSTOM_NAMES = ("__background__", "car", "cone", "van")


@pytest.fixture(scope="module")
def custom_checkpoint(tmp_path_factory) -> str:
    """A tiny-fpn checkpoint with its own classes, one of them (car) a driving class."""
    torch.manual_seed(3)
    module = build_model("tiny-fpn", num_classes=4, min_size=96, max_size=160)
    path = tmp_path_factory.mktemp("custom") / "custom.pt"
    save_checkpoint(LoadedModel(module, "tiny-fpn", CUSTOM_NAMES, "x"), path)
    return str(path)


def warnings_in(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]


def test_model_given_with_a_checkpoint_of_another_architecture_warns_that_the_checkpoint_wins(
        tmp_path, capsys, caplog, custom_checkpoint):
    image = write_image(tmp_path / "img.png", np.zeros((96, 160, 3), np.uint8))
    for model in ([], ["--model", "tiny-fpn"]):  # the default, or the checkpoint's own
        caplog.clear()
        assert run(capsys, image, "--weights", custom_checkpoint, "--device", "cpu", *model)[0] == 0
        assert warnings_in(caplog) == []
    caplog.clear()
    code, _, err = run(capsys, image, "--weights", custom_checkpoint, "--device", "cpu",
                       "--model", "r50-fpn")
    assert code == 0, err
    [warning] = warnings_in(caplog)
    assert warning.endswith("custom.pt holds a tiny-fpn model, not r50-fpn: using tiny-fpn (a "
                            "checkpoint's own architecture wins over --model)")


def found_names(jsonl) -> set[str]:
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    return {d["class_name"] for line in lines for d in line["detections"]}


def scene_image():
    from drivevision.synthetic import SceneGenerator

    return SceneGenerator(width=160, height=96, seed=2).frame(3).image


def test_default_classes_keep_all_of_a_custom_model_and_driving_says_what_it_lacks(
        tmp_path, capsys, caplog, custom_checkpoint):
    image = write_image(tmp_path / "img.png", scene_image())
    common = ["--weights", custom_checkpoint, "--device", "cpu", "--conf", "0"]
    assert run(capsys, image, *common, "--jsonl", tmp_path / "a.jsonl")[0] == 0
    assert found_names(tmp_path / "a.jsonl") == {"car", "cone", "van"}
    assert warnings_in(caplog) == []
    code, _, err = run(capsys, image, *common, "--classes", "driving",
                       "--jsonl", tmp_path / "d.jsonl")
    assert code == 0, err
    assert found_names(tmp_path / "d.jsonl") == {"car"}
    [warning] = warnings_in(caplog)
    assert warning == ("classes 'driving': the model has no person, bicycle, motorcycle, bus, "
                       "truck, traffic light, stop sign; keeping car")


def test_warnings_print_as_one_drivevision_warning_line_each(tmp_path, custom_checkpoint):
    image = write_image(tmp_path / "img.png", np.zeros((96, 160, 3), np.uint8))
    proc = subprocess.run([sys.executable, "-m", "drivevision", "detect", str(image), "-q",
                           "--weights", custom_checkpoint, "--device", "cpu",
                           "--model", "r50-fpn", "--classes", "driving"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 2 and all(ln.startswith("drivevision: warning: ") for ln in lines)
    assert "using tiny-fpn" in lines[0] and "keeping car" in lines[1]


@pytest.mark.parametrize("channels", [1, 4])
def test_grayscale_and_four_channel_images(tmp_path, capsys, tiny_checkpoint, channels):
    image = np.random.default_rng(0).integers(0, 255, (120, 200, channels), dtype=np.uint8)
    path = write_image(tmp_path / "in.png", image)
    code, _, _ = run(capsys, path, "-o", tmp_path / "o.mp4", "--weights", tiny_checkpoint)
    assert code == 0
    cap = cv2.VideoCapture(str(tmp_path / "o.mp4"))
    ok, frame = cap.read()
    assert ok and frame.shape == (120, 200, 3)


def test_odd_frame_size_keeps_its_size_with_a_fallback_codec(tmp_path, capsys,
                                                              tiny_checkpoint):
    src = tmp_path / "frames"
    src.mkdir()
    for i in range(3):
        write_image(src / f"{i}.png", np.full((359, 641, 3), 40 * i, np.uint8))
    out = tmp_path / "o.mp4"
    code, _, err = run(capsys, src, "-o", out, "--weights", tiny_checkpoint)
    assert code == 0 and "MPEG-4" in err
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (641, 359)


def test_truncated_video_keeps_frames_before_the_damage(tmp_path, capsys, tiny_checkpoint):
    full = tmp_path / "full.mp4"
    write_clip(full, 30, width=160, height=96, fps=10.0, seed=3)
    cut = tmp_path / "cut.mp4"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    jsonl = tmp_path / "d.jsonl"
    code, _, err = run(capsys, cut, "--jsonl", jsonl, "--weights", tiny_checkpoint)
    kept = len(jsonl.read_text().splitlines())
    assert code == EXIT_INPUT_DAMAGED
    assert "truncated" in err and f"{kept} of 30" in err
    assert 0 < kept < 30


def garbage(path):
    path.write_bytes(b"this is not a checkpoint at all")
    return path


def other_arch(path, tiny_checkpoint):
    state = torch.load(tiny_checkpoint, weights_only=True)["model"]
    torch.save(state, path)  # a bare state dict: --model decides the architecture
    return path


@pytest.mark.parametrize("case, make_args, code, message", [
    ("missing path", lambda t, w: [t / "nope.mp4"], 2, "No such file or directory"),
    ("folder without images", lambda t, w: [t], 2, "No images"),
    ("text file named .mp4", lambda t, w: [(t / "a.mp4").write_text("hello") and t / "a.mp4"],
     2, "Cannot open"),
    ("zero-byte file", lambda t, w: [(t / "z.mp4").write_bytes(b"") or t / "z.mp4"],
     2, "empty"),
    ("unreadable checkpoint", lambda t, w: ["IMG", "--weights", garbage(t / "w.pt")],
     2, "w.pt is not a PyTorch checkpoint (a .pt/.pth file saved by torch.save)"),
    ("a folder as checkpoint", lambda t, w: ["IMG", "--weights", t],
     2, "is a folder, not a checkpoint"),
    ("missing checkpoint", lambda t, w: ["IMG", "--weights", t / "nowhere.pt"],
     2, "No such checkpoint"),
    ("an exported piece as checkpoint",
     lambda t, w: ["IMG", "--weights", (t / "dense_a.onnx").write_bytes(b"\x08") and t],
     2, "is what drivevision export writes, for deployment elsewhere; --weights takes the .pt "
        "checkpoint it was exported from, and --engine onnx or tensorrt runs that checkpoint"),
    ("checkpoint of another architecture",
     lambda t, w: ["IMG", "--weights", other_arch(t / "w.pt", w), "--model", "r50-fpn"],
     2, "does not fit model r50-fpn"),
    ("unknown class", lambda t, w: ["IMG", "--weights", w, "--classes", "unicorn"],
     2, "Unknown class 'unicorn'"),
    ("output is the input", lambda t, w: ["IMG", "-o", "IMG"], 2, "refusing to overwrite"),
])
def test_bad_input_gives_one_line_error_and_exit_code(tmp_path, capsys, tiny_checkpoint, case,
                                                      make_args, code, message):
    work = tmp_path / "work"
    work.mkdir()
    image = write_image(tmp_path / "img.png", np.zeros((64, 64, 3), np.uint8))
    args = [image if a == "IMG" else a for a in make_args(work, tiny_checkpoint)]
    got, stdout, err = run(capsys, *args, "--jsonl", work / "d.jsonl")
    assert got == code, err
    assert message in err
    errors = [line for line in err.splitlines() if line.startswith("drivevision: error:")]
    assert len(errors) == 1 and message in errors[0] and "Traceback" not in err
    assert not (work / "d.jsonl").exists() and leftovers(work) == []


@pytest.mark.slow
def test_console_script_runs_as_a_user_would(tmp_path, clip_path, tiny_checkpoint):
    jsonl = tmp_path / "d.jsonl"
    proc = subprocess.run([sys.executable, "-m", "drivevision", "detect", clip_path,
                           "--jsonl", str(jsonl), "--weights", tiny_checkpoint, "-q"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""  # -q: no summary
    first = json.loads(jsonl.read_text().splitlines()[0])
    assert set(first) == {"frame", "timestamp_ms", "width", "height", "detections"}
    assert (first["width"], first["height"]) == (160, 96)  # the clip's frames


def test_variable_frame_rate_file_is_not_called_truncated(tmp_path, capsys, tiny_checkpoint):
    import av

    path = tmp_path / "vfr.mkv"
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.codec_context.time_base = Fraction(1, 1000)
        for i, pts in enumerate([0, 33, 66, 300, 333, 900, 933, 966]):
            frame = av.VideoFrame.from_ndarray(np.full((48, 64, 3), 20 * i, np.uint8), "bgr24")
            frame.pts, frame.time_base = pts, Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    jsonl = tmp_path / "d.jsonl"
    code, _, err = run(capsys, path, "--jsonl", jsonl, "--weights", tiny_checkpoint)
    assert code == 0 and "truncated" not in err
    assert len(jsonl.read_text().splitlines()) == 8


@pytest.mark.parametrize("args, message", [
    (["-o", "out.webm"], "Expected an output ending in .mp4"),
    (["--fps", "0"], "Expected --fps between 0.01 and 1000"),
    (["--jsonl", "missing/d.jsonl"], "does not exist"),
    (["-o", "/proc/x.mp4"], "Cannot write /proc/x.mp4: No such file"),  # before: exit 1, late
    (["-o", "/proc/x.png"], "Cannot write /proc/x.png: No such file"),
    (["--jsonl", "d.jsonl", "--csv", "d.jsonl"],
     "Two outputs have the same path: --jsonl and --csv are both d.jsonl"),
    (["-o", "out.png", "--csv", "./out.png"],
     "Two outputs have the same path: -o and --csv are both ./out.png"),
    # (before: accepted, and the next --yolo ds refused ds as holding files no run wrote)
    (["--yolo", "ds", "--crops", "ds/crops"],
     "--crops ds/crops is inside --yolo ds, whose subfolders hold only its own files"),
    (["--crops", "cr", "--jsonl", "cr/car/d.jsonl"],
     "--jsonl cr/car/d.jsonl is inside --crops cr, whose subfolders hold only its own files"),
])
def test_output_and_option_mistakes_fail_before_any_work(tmp_path, capsys, tiny_checkpoint,
                                                        args, message, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "in.png", np.zeros((32, 32, 3), np.uint8))
    code, _, err = run(capsys, "in.png", *args, "--weights", tiny_checkpoint)
    assert code == 2 and message in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_an_output_that_is_a_folder_or_in_a_read_only_one_says_which(
        tmp_path, capsys, tiny_checkpoint, monkeypatch):
    """(before: "a folder, or in a read-only folder" for both)"""
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "in.png", np.zeros((32, 32, 3), np.uint8))
    (tmp_path / "d.jsonl").mkdir()
    code, _, err = run(capsys, "in.png", "--jsonl", "d.jsonl", "--weights", tiny_checkpoint)
    assert code == 2 and err.endswith(f"Cannot write {tmp_path / 'd.jsonl'}: it is a folder; "
                                      "give a file name\n"), err
    monkeypatch.setattr(os, "access", lambda path, mode: False)  # as root, chmod would not do
    code, _, err = run(capsys, "in.png", "--csv", "d.csv", "--weights", tiny_checkpoint)
    assert code == 2 and err.endswith(f"Cannot write {tmp_path / 'd.csv'}: its folder is "
                                      "read-only\n"), err


FPS_IGNORED = "drivevision: warning: --fps applies to image inputs and raw video streams"


def test_fps_given_for_a_video_says_it_is_ignored_and_an_image_folder_takes_it(
        tmp_path, capsys, clip_path, tiny_checkpoint):
    code, _, err = run(capsys, clip_path, "--fps", "5", "--no-save", "-q",
                       "--weights", tiny_checkpoint)
    assert code == 0 and err.count(FPS_IGNORED) == 1
    folder = tmp_path / "frames"
    folder.mkdir()
    write_image(folder / "a.png", np.zeros((32, 32, 3), np.uint8))
    jsonl = tmp_path / "d.jsonl"
    code, _, err = run(capsys, folder, "--fps", "5", "--jsonl", jsonl, "-q",
                       "--weights", tiny_checkpoint)
    assert code == 0 and FPS_IGNORED not in err
    code, _, err = run(capsys, clip_path, "--no-save", "-q", "--weights", tiny_checkpoint)
    assert code == 0 and FPS_IGNORED not in err  # left out: nothing to say


def test_unwritable_output_is_one_line_error(tmp_path, capsys, tiny_checkpoint, monkeypatch):
    from drivevision.io import sinks

    original = sinks.Path.open

    def refuse(self, mode="r", *a, **k):
        if "w" in mode and self.suffix == ".jsonl":  # the disk refuses this one file
            raise PermissionError(13, "Permission denied")
        return original(self, mode, *a, **k)

    monkeypatch.setattr(sinks.Path, "open", refuse)
    write_image(tmp_path / "in.png", np.zeros((32, 32, 3), np.uint8))
    code, _, err = run(capsys, tmp_path / "in.png", "--jsonl", tmp_path / "d.jsonl",
                       "--weights", tiny_checkpoint)
    assert code == 2 and "Cannot write" in err and "Permission denied" in err
