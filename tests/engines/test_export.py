"""ONNX export (metadata inside, outputs equal to eager), the TensorRT build check that
needs no GPU (TensorRT for RTX parses and builds the exported pieces in fp32 and fp16), and
the engine cache (corrupt, stale or foreign entries are rebuilt with a message)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drivevision.cli import main
from drivevision.cli.exits import EXIT_FAILED, EXIT_USAGE
from drivevision.engines import cache as engine_cache
from drivevision.engines.export import (
    ExportSpec,
    cached_onnx,
    export_onnx,
    read_metadata,
)
from drivevision.engines.sizes import parse_size
from drivevision.engines.torch import DenseModules

FIXTURE = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"


@pytest.fixture(scope="module")
def exported(loaded, tmp_path_factory):
    """fp32 pieces through the fast (TorchScript) exporter."""
    folder = tmp_path_factory.mktemp("onnx")
    return export_onnx(loaded, folder, ExportSpec(input_size=(224, 384), exporter="legacy"))


def test_metadata_is_inside_the_onnx_files(loaded, exported):
    meta = read_metadata(exported["dense_a"])
    assert meta["model"] == "tiny-fpn" and meta["precision"] == "fp32"
    assert json.loads(meta["class_names"]) == list(loaded.class_names)
    assert meta["input_size"] == "224x384" and meta["weights_id"] == loaded.weights_id
    assert meta["fpn_levels"] == "5"
    assert {"torch", "torchvision", "onnx", "drivevision"} <= set(json.loads(meta["versions"]))
    assert read_metadata(exported["dense_b"])["piece"] == "dense_b"


def test_onnx_pieces_equal_eager_at_other_shapes(loaded, exported):
    """Batch and image size are dynamic; outputs keep the FPN level order."""
    import onnxruntime as ort

    dense = DenseModules(loaded.module).eval()
    images = torch.randn(2, 3, 160, 256)
    session = ort.InferenceSession(str(exported["dense_a"]), providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    assert names[:2] == ["feature_0", "feature_1"] and names[-1] == "deltas_4"
    got = session.run(None, {"images": images.numpy()})
    with torch.inference_mode():
        want = [t for group in dense.dense_a(images) for t in group]
    for g, w in zip(got, want):
        assert g.shape == tuple(w.shape)
        assert np.linalg.norm(g - w.numpy()) <= 1e-4 * np.linalg.norm(w.numpy())


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_export_leaves_the_callers_model_where_it_is(loaded, tmp_path, precision):
    """A detector's model is often on the GPU and in use while its pieces are exported; here
    a float64 model stands in for one that is not CPU float32: it must come out unchanged."""
    module = copy.deepcopy(loaded.module).double()
    other = type(loaded)(module, loaded.name, loaded.class_names, loaded.weights_id)
    export_onnx(other, tmp_path, ExportSpec(precision, (64, 64), exporter="legacy"),
                pieces=("dense_b",))
    assert (tmp_path / "dense_b.onnx").is_file()
    assert {p.dtype for p in module.parameters()} == {torch.float64}


@pytest.mark.parametrize("option, value, says", [
    ("--input-size", "225x385", "an input size in multiples of 32 (the detector pads frames "
                                "to them), but got 225x385; the nearest: 224x384 or 256x416"),
    ("--input-size", "big", "an input size HxW such as 800x1344, but got 'big'"),
    ("--batch", "0", "a whole number >= 1, but got '0'"),
])
def test_export_settings_the_detector_cannot_take_are_refused_naming_the_option(
        capsys, option, value, says):
    """As argparse refuses a bad value: at once (before the model loads), naming the option
    (a bad --input-size was refused after torch loaded, --batch 0 in the library's words)."""
    with pytest.raises(SystemExit) as exited:
        main(["export", "--model", "tiny-fpn", option, value, "-o", "unused"])
    assert exited.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(f"drivevision export: error: argument {option}: expected {says}")
    assert not Path("unused").exists()


@pytest.mark.parametrize("output", ["annotated.mp4", "annotated.mp4/engines"])
def test_export_to_a_file_is_refused_in_one_line_before_any_work(tmp_path, capsys, output):
    (tmp_path / "annotated.mp4").write_bytes(b"a video")
    code = main(["export", "--model", "tiny-fpn", "--weights", str(FIXTURE),
                 "-o", str(tmp_path / output)])
    err = capsys.readouterr().err
    assert code == 2, err
    assert len(err.splitlines()) == 1 and "expected a folder for the pieces" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotated.mp4"]
    assert (tmp_path / "annotated.mp4").read_bytes() == b"a video"


@pytest.mark.parametrize("text", ["800", "axb", "16x640", "800x1344x3"])
def test_bad_input_size_is_one_clear_error(text):
    with pytest.raises(ValueError, match="input size"):
        parse_size(text)


@pytest.fixture(scope="module")
def trt():
    return pytest.importorskip("tensorrt_rtx")


@pytest.fixture(scope="module")
def fp16_pieces(loaded, tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx16")
    return export_onnx(loaded, folder, ExportSpec("fp16", (224, 384), exporter="dynamo"))


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_tensorrt_parses_and_builds_the_pieces_without_a_gpu(trt, exported, fp16_pieces,
                                                             precision):
    """A real TensorRT compatibility check: TensorRT for RTX's ONNX parser and builder (no
    GPU needed: it builds a portable engine) accept both pieces, dense A with the batch range
    1..4 the engine uses for short batches; fp16 is strongly typed."""
    from drivevision.engines.trt_build import build_serialized, onnx_precision

    pieces = fp16_pieces if onnx_precision(trt, precision) == "fp16" else exported
    a = build_serialized(trt, pieces["dense_a"], {"images": (
        (1, 3, 224, 384), (4, 3, 224, 384), (4, 3, 224, 384))}, precision)
    b = build_serialized(trt, pieces["dense_b"],
                         {"pooled": ((1, 64, 7, 7), (1000, 64, 7, 7), (1000, 64, 7, 7))},
                         precision, compute_capability="SM89")
    assert len(a) > 100_000 and len(b) > 100_000


@pytest.mark.slow
def test_tensorrt_cache_rebuilds_corrupt_and_foreign_engines(trt, loaded, tmp_path,
                                                             monkeypatch):
    from drivevision.engines import trt_build as trt_engine

    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    messages = []
    monkeypatch.setattr(engine_cache._log, "warning", messages.append)
    shapes = {"pooled": ((1, 64, 7, 7), (200, 64, 7, 7), (200, 64, 7, 7))}
    cpu = torch.device("cpu")

    def get():
        return trt_engine.cached_engine(trt, loaded, "dense_b", shapes, "fp32", cpu,
                                        progress=False)

    path = get()
    built = path.stat().st_mtime_ns
    assert get() == path and path.stat().st_mtime_ns == built and not messages  # cache hit
    path.write_bytes(path.read_bytes()[:1000])  # truncated
    get()
    assert "corrupt" in messages[-1] and path.stat().st_size > 100_000
    record = json.loads(path.with_suffix(".json").read_text())
    record["fields"]["gpu"] = "Some Other GPU"  # an engine copied from another machine
    path.with_suffix(".json").write_text(json.dumps(record))
    get()
    assert "built for something else" in messages[-1] and "Some Other GPU" in messages[-1]
    assert engine_cache.check(path, trt_engine.engine_fields(
        trt, loaded, "dense_b", shapes, "fp32", cpu)) is None


@pytest.mark.slow
def test_cached_onnx_is_reexported_for_other_weights(loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    paths = cached_onnx(loaded, "fp32", exporter="legacy")
    again = cached_onnx(loaded, "fp32", exporter="legacy")
    assert paths == again
    other = type(loaded)(loaded.module, loaded.name, loaded.class_names, "other-weights")
    assert cached_onnx(other, "fp32", exporter="legacy")["dense_a"] != paths["dense_a"]


@pytest.mark.slow
def test_processes_sharing_the_cache_take_turns(tmp_path):
    """Two processes asking for the same ONNX pieces at once: both get a whole, valid file
    (one exports, the other waits for it), nothing half-written is left behind."""
    script = (
        "import sys; from drivevision.model import load_model; "
        "from drivevision.engines.export import cached_onnx; "
        f"loaded = load_model('tiny-fpn', {str(FIXTURE)!r}, progress=False); "
        "print(cached_onnx(loaded, 'fp32', exporter='legacy')['dense_a'])")
    env = {**os.environ, "DRIVEVISION_CACHE": str(tmp_path)}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, text=True,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE) for _ in range(2)]
    results = [p.communicate(timeout=240) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [err for _, err in results]
    paths = {out.strip() for out, _ in results}
    assert len(paths) == 1
    path = Path(paths.pop())
    record = json.loads(path.with_suffix(".json").read_text())
    fields = {k: v for k, v in record["fields"].items() if k != "format"}
    assert engine_cache.check(path, fields) is None  # bytes match the recorded hash
    assert read_metadata(path)["piece"] == "dense_a"
    leftovers = [p.name for p in path.parent.iterdir()
                 if p.name.endswith((".tmp", ".export", ".lock")) or p.name.startswith(".")]
    assert leftovers == []  # nor a lock file: each build removed its own


def test_a_record_that_is_not_an_object_is_rebuilt(loaded, tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    path = cached_onnx(loaded, "fp32", exporter="legacy")["dense_b"]
    path.with_suffix(".json").write_text("null")
    assert cached_onnx(loaded, "fp32", exporter="legacy")["dense_b"] == path
    assert json.loads(path.with_suffix(".json").read_text())["sha256"]


def test_first_export_says_so_and_a_later_run_says_in_one_line_it_loaded_them(
        loaded, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    cached_onnx(loaded, "fp32", exporter="legacy", progress=True)
    first = capsys.readouterr().err
    assert "Exporting" in first and "dense_a" in first and "first use" in first
    assert "from the cache" not in first
    cached_onnx(loaded, "fp32", exporter="legacy", progress=True)
    later = capsys.readouterr().err.splitlines()
    assert len(later) == 1 and "Exporting" not in later[0]
    assert later[0].startswith("Loaded tiny-fpn dense_a, dense_b ONNX (fp32) from the cache")
    assert str(tmp_path / "onnx") in later[0]  # where they came from
    cached_onnx(loaded, "fp32", exporter="legacy")  # a quiet caller (batch workers)
    assert capsys.readouterr().err == ""


def test_export_command_writes_onnx_with_metadata(tmp_path, capsys):
    code = main(["export", "--model", "tiny-fpn", "--weights", str(FIXTURE), "--format", "onnx",
                 "--input-size", "224x384", "--exporter", "legacy", "-o", str(tmp_path)])
    assert code == 0
    assert read_metadata(tmp_path / "dense_a.onnx")["input_size"] == "224x384"
    assert "wrote" in capsys.readouterr().out
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no mark


def test_export_says_calib_without_int8_is_not_used(tmp_path, capsys):
    """--calib alone does not make an int8 export (as trtexec's --calib without --int8):
    one line says so, and the pieces are the fp32 ones."""
    code = main(["export", "--model", "tiny-fpn", "--weights", str(FIXTURE), "--calib",
                 str(FIXTURE.with_name("sample.mp4")), "--input-size", "224x384",
                 "--exporter", "legacy", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 0
    assert ("drivevision: warning: --calib is only used with --precision int8; without it "
            "nothing is calibrated or quantized") in err.splitlines()
    assert read_metadata(tmp_path / "dense_a.onnx")["precision"] == "fp32"


class _FullTensorRT:
    """A stand-in for NVIDIA's full TensorRT module, which builds only on a GPU."""

    __name__ = "tensorrt"
    __version__ = "10.3.0"


def _no_tensorrt():
    raise ImportError("TensorRT is not installed: expected the tensorrt module (JetPack, or "
                      "NVIDIA's wheels) or tensorrt_rtx (pip install tensorrt-rtx)")


@pytest.mark.parametrize("importer, exit_code, says", [
    (_no_tensorrt, EXIT_FAILED, "TensorRT is not installed"),  # a library missing: as ever
    (lambda: _FullTensorRT, EXIT_USAGE, "Expected a CUDA GPU to build TensorRT engines"),
])
def test_export_tensorrt_that_cannot_build_here_is_refused_before_the_model_loads(
        tmp_path, capsys, monkeypatch, importer, exit_code, says):
    """No TensorRT, or a TensorRT that needs a GPU on a machine without one: one line before
    the model loads (R50-FPN's COCO weights may first be downloaded), nothing written."""
    import drivevision.model
    from drivevision.engines import trt_build

    def loaded(*args, **kwargs):
        raise AssertionError("the model loaded before the refusal")

    monkeypatch.setattr(drivevision.model, "load_model", loaded)
    monkeypatch.setattr(trt_build, "import_tensorrt", importer)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    code = main(["export", "--model", "tiny-fpn", "--weights", str(FIXTURE), "--format",
                 "tensorrt", "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == exit_code and len(err) == 1 and says in err[0], err
    assert not (tmp_path / "out").exists()


def test_an_interrupted_export_leaves_the_folder_as_it_was(tmp_path, monkeypatch, capsys):
    import drivevision.engines.export as export

    for piece in ("dense_a", "dense_b"):
        (tmp_path / f"{piece}.onnx").write_bytes(b"earlier " + piece.encode())
    real = export.export_onnx

    def interrupted(loaded, folder, spec, pieces=export.PIECES):
        real(loaded, folder, spec, pieces=("dense_a",))  # one piece written, then Ctrl-C
        raise KeyboardInterrupt

    monkeypatch.setattr(export, "export_onnx", interrupted)
    code = main(["export", "--model", "tiny-fpn", "--weights", str(FIXTURE), "--input-size",
                 "224x384", "--exporter", "legacy", "-o", str(tmp_path)])
    assert code == 130
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dense_a.onnx", "dense_b.onnx"]
    assert (tmp_path / "dense_a.onnx").read_bytes() == b"earlier dense_a"


@pytest.mark.slow
def test_export_command_builds_portable_tensorrt_engines(trt, tmp_path):
    code = main(["export", "--model", "tiny-fpn", "--weights", str(FIXTURE), "--format",
                 "tensorrt", "--precision", "fp16", "--input-size", "224x384",
                 "--exporter", "legacy", "-o", str(tmp_path)])
    assert code == 0
    meta = json.loads((tmp_path / "dense_a.json").read_text())
    assert meta["drivevision.precision"] == "fp16" and "tensorrt" in meta["drivevision.tensorrt"]
    assert (tmp_path / "dense_b.engine").stat().st_size > 100_000


def test_export_rejects_bf16(capsys):
    with pytest.raises(SystemExit):
        main(["export", "--model", "tiny-fpn", "--precision", "bf16"])
