"""Calibrated INT8 (ONNX Runtime QDQ): detections close to fp32 on the trained demo model,
the calibration and quantized files cached by the calibration set's digest, the export
command's Q/DQ ONNX and its metadata, one-line errors for bad --calib, and the TensorRT
(for RTX, no GPU needed) build of the Q/DQ pieces as an explicitly quantized int8 engine."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from drivevision.cli import main
from drivevision.detector import Detector
from drivevision.engines.export import read_metadata
from drivevision.engines.int8 import cached_int8_onnx
from drivevision.io.calibration import calibration_frames
from drivevision.synthetic import SceneGenerator
from tests.engines.int8_helpers import assert_int8_matches_fp32, generated

FIXTURE = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"
SAMPLE = Path(__file__).parents[2] / "assets" / "sample.mp4"


@pytest.mark.slow
def test_int8_detections_match_fp32_on_the_trained_model(loaded):
    """Every confident fp32 detection has an int8 one of the same class at IoU >= 0.7, and
    the counts agree, on held-out scenes (calibrated on other drives)."""
    fp32 = Detector(loaded, engine="onnx", device="cpu", conf=0.5, classes="all")
    int8 = Detector(loaded, engine="onnx", device="cpu", precision="int8", conf=0.5,
                    classes="all", calib=generated(31))
    assert_int8_matches_fp32(fp32, int8)


def test_a_run_that_finds_the_int8_pieces_cached_says_so_in_one_line(loaded, tmp_path,
                                                                    monkeypatch, capsys):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    calls: list = []
    cached_int8_onnx(loaded, generated(43, 2, calls), exporter="legacy", progress=True)
    assert calls == [43]  # read once, for both pieces
    first = capsys.readouterr().err
    assert "Calibrating tiny-fpn dense_a" in first and "from the cache" not in first
    cached_int8_onnx(loaded, generated(43, 2), exporter="legacy", progress=True)
    later = capsys.readouterr().err.splitlines()
    assert later == [f"Loaded tiny-fpn dense_a, dense_b int8 ONNX (cpu scheme, calibrated on "
                     f"seed 43) from the cache ({tmp_path / 'int8'}; built by an earlier run, "
                     "listed by drivevision cache)"]
    # the other scheme (export's) from the same calibration: measured once, said so
    cached_int8_onnx(loaded, generated(43, 2, calls), "tensorrt", exporter="legacy",
                     progress=True)
    assert calls == [43]
    assert capsys.readouterr().err.splitlines() == [
        f"Loaded tiny-fpn dense_a, dense_b int8 calibration on seed 43 (quantizing to the "
        f"tensorrt scheme now) from the cache ({tmp_path / 'int8'}; built by an earlier run, "
        "listed by drivevision cache)"]


@pytest.mark.slow
def test_calibration_is_cached_by_the_sets_digest(loaded):
    """A second run with the same set calibrates nothing and gives the same file; another
    set calibrates again into another file."""
    calls: list = []
    first = cached_int8_onnx(loaded, generated(41, 3, calls), exporter="legacy")
    again = cached_int8_onnx(loaded, generated(41, 3, calls), exporter="legacy")
    assert calls == [41]  # once for both pieces (dense A, dense B), then cache hits
    assert first == again
    other = cached_int8_onnx(loaded, generated(42, 3, calls), exporter="legacy")
    assert calls == [41, 42]
    assert other["dense_a"] != first["dense_a"] and other["dense_a"].is_file()
    meta = read_metadata(other["dense_a"])
    assert meta["precision"] == "int8" and meta["calibration"] == "test-seed42-3"


@pytest.mark.slow
def test_export_writes_qdq_onnx_calibrated_on_an_image_folder(tmp_path, capsys):
    import cv2
    import onnx

    folder = tmp_path / "frames"
    folder.mkdir()
    gen = SceneGenerator(384, 216, seed=51)
    for i in range(4):
        cv2.imwrite(str(folder / f"{i:03d}.png"), gen.frame(i * 9).image)
    out = tmp_path / "out"
    code = main(["export", "--weights", str(FIXTURE), "--precision", "int8", "--calib",
                 str(folder), "--input-size", "224x384", "--exporter", "legacy", "-o", str(out)])
    assert code == 0, capsys.readouterr().err
    assert "Calibrating" in capsys.readouterr().err  # the progress line before the slow part
    for piece in ("dense_a", "dense_b"):
        meta = read_metadata(out / f"{piece}.onnx")
        assert meta["precision"] == "int8" and meta["int8_scheme"] == "tensorrt"
        assert len(meta["calibration"]) == 16 and meta["calibration_source"] == "frames"
        assert meta["input_size"] == "224x384"
        ops = Counter(n.op_type for n in onnx.load(str(out / f"{piece}.onnx")).graph.node)
        assert ops["QuantizeLinear"] > 0 and ops["DequantizeLinear"] > 0


@pytest.mark.parametrize("extra,says", [
    ([], "pass --calib CLIP_OR_FOLDER"),
    (["--calib", "/no/such/clip.mp4"], "does not exist"),
    (["--calib", "rtsp://camera/stream"], "stream or camera"),
    (["--calib", "EMPTY"], "has no images"),
    (["--calib", str(SAMPLE), "--calib-frames", "0"], "--calib-frames between 1 and 256"),
    (["--calib", str(SAMPLE), "--calib-frames", "257"], "--calib-frames between 1 and 256"),
])
def test_bad_calib_is_one_clear_line(tmp_path, capsys, extra, says):
    extra = [str(tmp_path) if a == "EMPTY" else a for a in extra]
    code = main(["export", "--weights", str(FIXTURE), "--precision", "int8", *extra, "-o",
                 str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and says in err[0], err


@pytest.mark.parametrize("command", [
    ["export", "--exporter", "legacy", "-o", "out"], ["detect", str(SAMPLE), "--no-save"]])
def test_a_calib_file_that_is_no_video_is_refused_before_the_model_loads(
        tmp_path, capsys, monkeypatch, command):
    """Found when calibration starts, it came after the model loaded and its fp32 pieces
    were exported (minutes for R50-FPN): now at once, in one line."""
    import drivevision.model

    def loaded(*args, **kwargs):
        raise AssertionError("the model loaded before the refusal")

    monkeypatch.setattr(drivevision.model, "load_model", loaded)
    monkeypatch.setattr(Detector, "from_config", loaded)
    labels = tmp_path / "labels.jsonl"
    labels.write_text('{"frame": 0, "boxes": []}\n')
    command = [str(tmp_path / "out") if a == "out" else a for a in command]
    code = main([*command, "--weights", str(FIXTURE), "--precision", "int8",
                 "--calib", str(labels)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith(f"drivevision: error: Expected --calib to be a video file or a "
                             f"folder of images from your own cameras, but cannot open {labels} "
                             "as a video"), err


def test_detect_refuses_a_calib_folder_without_images_before_the_model_loads(
        tmp_path, capsys, monkeypatch):
    def loaded(*args, **kwargs):
        raise AssertionError("the model loaded before the refusal")

    monkeypatch.setattr(Detector, "from_config", loaded)
    (tmp_path / "notes.txt").write_text("no images here")
    code = main(["detect", str(SAMPLE), "--weights", str(FIXTURE), "--precision", "int8",
                 "--calib", str(tmp_path), "--no-save"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].endswith(
        f"but folder {tmp_path} has no images"), err


def test_detect_int8_without_calib_says_what_to_pass(tmp_path, capsys):
    code = main(["detect", str(SAMPLE), "--weights", str(FIXTURE), "--engine", "onnx",
                 "--precision", "int8", "--no-save"])
    err = capsys.readouterr().err
    assert code == 2 and "pass --calib CLIP_OR_FOLDER" in err


def test_detect_int8_without_an_engine_picks_the_int8_engine(tmp_path, capsys, monkeypatch):
    import drivevision.engines

    monkeypatch.setattr(drivevision.engines, "pick_int8", lambda: ("onnx", "the test's choice"))
    code = main(["detect", str(SAMPLE), "--weights", str(FIXTURE), "--precision", "int8",
                 "--calib", str(SAMPLE), "--calib-frames", "3",
                 "--jsonl", str(tmp_path / "d.jsonl")])
    err = capsys.readouterr().err
    assert code == 0 and "engine onnx int8 on cpu" in err and "the test's choice" in err
    assert "3 frames of sample.mp4" in err  # --calib-frames reached the calibration
    code = main(["detect", str(SAMPLE), "--weights", str(FIXTURE), "--engine", "torch",
                 "--precision", "int8", "--calib", str(SAMPLE), "--no-save"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "for int8" in err[-1]


def test_int8_on_an_engine_without_it_is_refused(loaded):
    with pytest.raises(ValueError, match="for int8"):
        Detector(loaded, engine="torch", device="cpu", precision="int8", calib=generated(1))


def test_detect_refuses_a_calib_frames_count_out_of_range_before_loading(capsys):
    code = main(["detect", str(SAMPLE), "--weights", str(FIXTURE), "--precision", "int8",
                 "--calib", str(SAMPLE), "--calib-frames", "-4", "--no-save"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "--calib-frames between 1 and 256" in err[0], err


def test_the_frame_count_names_its_own_calibration():
    from drivevision.detector import calibration_set

    default, five = calibration_set(str(SAMPLE)), calibration_set(str(SAMPLE), 5)
    assert default.digest != five.digest  # cached apart: another set of frames
    assert len(five.frames()) == 5 and len(default.frames()) == 16


def test_calibration_frames_are_evenly_spaced_over_the_clip():
    frames = calibration_frames(str(SAMPLE), 5)
    assert len(frames) == 5 and all(f.dtype == np.uint8 and f.ndim == 3 for f in frames)
    assert not np.array_equal(frames[0], frames[-1])


@pytest.mark.slow
@pytest.mark.timeout(240)
def test_tensorrt_builds_the_qdq_pieces_as_an_int8_engine(loaded):
    """The symmetric Q/DQ pieces parse and build with TensorRT for RTX (strongly typed,
    explicit quantization; a portable engine, no GPU needed)."""
    trt = pytest.importorskip("tensorrt_rtx")
    from drivevision.engines.trt_build import build_serialized

    pieces = cached_int8_onnx(loaded, generated(41, 3), "tensorrt", exporter="legacy")
    a = build_serialized(trt, pieces["dense_a"], {"images": (
        (1, 3, 224, 384), (4, 3, 224, 384), (4, 3, 224, 384))}, "int8")
    b = build_serialized(trt, pieces["dense_b"],
                         {"pooled": ((1, 64, 7, 7), (1000, 64, 7, 7), (1000, 64, 7, 7))},
                         "int8", compute_capability="SM89")
    assert len(a) > 100_000 and len(b) > 100_000


NO_TORCHAO = ("Expected torchao for int8 on the compiled engine (pip install "
              "'drivevision[int8]'), or use {}")


def test_compiled_int8_without_torchao_is_refused_by_the_commands_naming_the_option(
        tmp_path, capsys, monkeypatch):
    """Before the model loads (detect), or skipped with its reason (eval, bench); the Python
    API names the keyword (tests/test_detector_options.py)."""
    import sys

    from drivevision.cli.settings import why_not_here

    monkeypatch.setitem(sys.modules, "torchao", None)  # as where it is not installed
    code = main(["detect", str(SAMPLE), "--no-save", "--weights", str(FIXTURE), "--device",
                 "cpu", "--engine", "compiled", "--precision", "int8", "--calib", str(SAMPLE)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and err == [f"drivevision: error: {NO_TORCHAO.format('--engine onnx')}"]
    assert why_not_here("compiled", "int8", "cpu") == NO_TORCHAO.format("--engine onnx")
