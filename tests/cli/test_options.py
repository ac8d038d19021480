"""Options every command shares: durations with units, --debug, one-line errors."""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from drivevision.cli import main
from drivevision.cli.times import seconds


@pytest.mark.parametrize("text, expected", [
    ("5", 5.0), ("5s", 5.0), ("40ms", 0.04), ("0.5", 0.5), ("2m", 120.0), ("2min", 120.0),
    ("1h", 3600.0), (" 40 ms ", 0.04),
])
def test_durations_take_units_and_a_bare_number_is_seconds(text, expected):
    assert seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "ms", "fast", "-1", "5 parsecs", "nan", "inf"])
def test_bad_durations_say_what_was_expected(text):
    with pytest.raises(argparse.ArgumentTypeError, match="duration"):
        seconds(text)


def test_old_millisecond_batch_timeout_is_refused_with_a_hint(capsys, clip_path):
    code = main(["live", clip_path, "--batch-timeout", "40", "--model", "tiny-fpn"])
    err = capsys.readouterr().err
    assert code == 2 and "write 40ms for milliseconds" in err and len(err.splitlines()) == 1


def test_a_bug_in_a_stage_shows_its_traceback_with_debug(capsys, monkeypatch, clip_path,
                                                          tiny_checkpoint):
    from drivevision import render

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in drawing")

    monkeypatch.setattr(render, "annotate", broken)
    monkeypatch.setattr("drivevision.pipeline.pipeline.annotate", broken)
    args = ["detect", clip_path, "-o", "out.mp4", "--weights", tiny_checkpoint,
            "--model", "tiny-fpn", "-q"]
    monkeypatch.chdir(clip_path.rsplit("/", 1)[0])
    assert main(args) == 1
    plain = capsys.readouterr().err
    assert "Traceback" not in plain and "render stage failed: ZeroDivisionError" in plain
    assert "--debug" in plain
    assert main(["--debug", *args]) == 1
    debug = capsys.readouterr().err
    assert "Traceback" in debug and "in broken" in debug
    assert debug.strip().splitlines()[-1].startswith("drivevision: error: render stage failed")
    assert main([*args, "--debug"]) == 1  # where the hint leads a user to add it
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("DRIVEVISION_DEBUG", "1")
    assert main(args) == 1 and "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["detect", "batch", "export", "bench", "eval", "view",
                                     "live", "cache"])
def test_every_command_takes_debug_after_its_name(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--debug" in capsys.readouterr().out


def test_the_command_starts_without_loading_torch():
    """So Ctrl-C during start-up meets the command's own handler, and --help is instant."""
    import subprocess

    code = ("import sys; import drivevision.cli; "
            "print(sorted(m for m in ('torch', 'cv2', 'av', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


@pytest.fixture(scope="module")
def own_classes_checkpoint(tmp_path_factory) -> str:
    """A tiny-fpn checkpoint with classes of its own: pedestrian and van."""
    import torch

    from drivevision.model import LoadedModel, build_model, save_checkpoint

    torch.manual_seed(0)
    module = build_model("tiny-fpn", num_classes=3)
    path = tmp_path_factory.mktemp("own") / "own.pt"
    save_checkpoint(LoadedModel(module, "tiny-fpn", ("__background__", "pedestrian", "van"),
                                "x"), path)
    return str(path)


@pytest.fixture
def nothing_loads(monkeypatch):
    """No CUDA here whatever the machine, and a model load or worker start fails the test."""
    import torch

    from drivevision import batch
    from drivevision.cli import timing
    from drivevision.detector import Detector

    def loaded(*args, **kwargs):
        raise AssertionError("the model loaded (or a worker started) before the refusal")

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(Detector, "from_config", loaded)
    monkeypatch.setattr(timing, "bench_model", loaded)
    monkeypatch.setattr(batch, "local_workers", loaded)


NO_CUDA = "Expected a CUDA GPU for --device cuda, but torch sees none; use --device cpu"
NO_FP16 = "Expected fp16 on a CUDA device; on the CPU use bf16 or fp32"


@pytest.mark.parametrize("command", [
    ["detect", "CLIP", "-o", "out.mp4"], ["live", "CLIP", "-o", "out.mp4"],
    ["batch", "CLIP", "--out", "out"], ["eval", "CLIP", "--gt", "gt.jsonl"]])
@pytest.mark.parametrize("options, message", [
    (["--classes", "truk"], "Unknown class 'truk'; did you mean truck?"),
    (["--classes", "car,trafic light"],
     "Unknown class 'trafic light'; did you mean traffic light?"),
    (["--classes", "car", "--weights", "OWN"],
     "Unknown class 'car'; expected 'driving', 'all', or names or ids of the model's classes: "
     "pedestrian (1), van (2)"),
    (["--classes", "vans", "--weights", "OWN"], "Unknown class 'vans'; did you mean van?"),
    (["--device", "cuda"], NO_CUDA),
    (["--device", "cuda:0"], NO_CUDA),
    (["--device", "gpu"], "Expected --device auto, cpu, cuda or cuda:N, but got 'gpu'"),
    (["--iou", "0"], "Expected --iou in (0, 1], but got 0.0"),
    (["--max-det", "0"], "Expected --max-det >= 1, but got 0"),
])
def test_what_the_model_would_refuse_is_refused_before_it_loads(
        capsys, clip_path, own_classes_checkpoint, nothing_loads, command, options, message):
    given = {"CLIP": clip_path, "OWN": own_classes_checkpoint}
    code = main([given.get(a, a) for a in [*command, *options]])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.splitlines() == [f"drivevision: error: {message}"] and out == ""
    assert not any(Path().iterdir())  # no output, no runs/ folder


@pytest.fixture
def silent_stream():
    """A loopback server that accepts connections and never answers, as a camera that hangs:
    yields (URL scheme -> URL, the connections it accepted)."""
    server = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []

    def serve():
        with contextlib.suppress(OSError):  # closed at the end
            while True:
                accepted.append(server.accept()[0])

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    port = server.getsockname()[1]
    try:
        yield {"http": f"http://127.0.0.1:{port}/live.mjpg",
               "rtsp": f"rtsp://127.0.0.1:{port}/front"}, accepted
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accept (a close alone does not)
        thread.join(5)
        server.close()
        for connection in accepted:
            connection.close()


@pytest.mark.parametrize("command", [["detect", "--no-save"], ["live"]])
@pytest.mark.parametrize("scheme", ["http", "rtsp"])
@pytest.mark.parametrize("options, message", [
    (["--device", "cuda"], NO_CUDA),
    (["--precision", "fp16"], NO_FP16),
    (["--classes", "truk"], "Unknown class 'truk'; did you mean truck?"),
])
def test_a_bad_option_with_a_stream_is_refused_before_connecting(
        capsys, nothing_loads, silent_stream, command, scheme, options, message):
    """A stream that answers slowly (or, as here, never) does not delay the refusal of an
    option that needs no connection: the stream is not even connected to."""
    urls, accepted = silent_stream
    code = main([command[0], urls[scheme], *command[1:], *options])
    out, err = capsys.readouterr()
    assert code == 2 and err.splitlines() == [f"drivevision: error: {message}"] and out == ""
    assert accepted == []


def test_detect_refuses_a_bad_option_with_a_silent_stream_at_once(silent_stream):
    """The same as a user runs it (fp16 is refused on any machine with --device cpu): the
    one-line refusal comes well within the time the stream is waited for (5 s to connect,
    again to read)."""
    urls, accepted = silent_stream
    run = subprocess.run([sys.executable, "-m", "drivevision", "detect", urls["http"],
                          "--no-save", "--device", "cpu", "--precision", "fp16"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and run.stdout == ""
    assert run.stderr.splitlines() == [f"drivevision: error: {NO_FP16}"]
    assert accepted == []


NO_TENSORRT = "Expected a CUDA device for the tensorrt engine, but got cpu"
INT8_ENGINE = ("Expected --engine onnx or compiled (or auto) for int8, but got {}; a TensorRT "
               "int8 engine: drivevision export --format tensorrt --precision int8 --calib "
               "CLIP_OR_FOLDER")


@pytest.mark.parametrize("command", [
    ["detect", "CLIP", "--no-save"], ["live", "CLIP"], ["batch", "CLIP", "--out", "out"]])
@pytest.mark.parametrize("options, message", [
    (["--engine", "tensorrt"], NO_TENSORRT),
    (["--engine", "tensorrt", "--device", "cpu", "--precision", "fp32"], NO_TENSORRT),
    (["--precision", "int8", "--calib", "missing.mp4"],
     "Expected --calib to be a video file or a folder of images from your own cameras, but "
     "missing.mp4 does not exist"),
    (["--precision", "int8", "--calib", "CLIP", "--engine", "torch"], INT8_ENGINE.format("torch")),
    (["--precision", "int8", "--calib", "CLIP", "--engine", "tensorrt"],
     INT8_ENGINE.format("tensorrt")),
    (["--engine", "onnx", "--precision", "bf16"],
     "Expected fp32 (CPU or CUDA), fp16 (CUDA) or int8 (CPU) for the onnx engine, but got "
     "bf16 on cpu"),
    # fp16 on the CPU: what this engine runs instead (onnx has no bf16; tensorrt no CPU)
    (["--engine", "onnx", "--precision", "fp16"],
     "Expected fp16 on a CUDA device; on the CPU the onnx engine runs fp32, or int8 with "
     "--calib"),
    (["--engine", "tensorrt", "--precision", "fp16"],
     "Expected fp16 on a CUDA device, as the tensorrt engine runs on CUDA only; on the CPU use "
     "--engine onnx or compiled"),
    (["--engine", "compiled", "--precision", "fp16"], NO_FP16),
])
def test_engine_and_calib_mistakes_are_refused_before_the_model_loads(
        capsys, clip_path, nothing_loads, command, options, message):
    """A tensorrt engine without CUDA, a --calib that is not there, an engine without int8:
    one line before the model loads (R50-FPN's COCO weights may first be downloaded)."""
    code = main([clip_path if a == "CLIP" else a for a in [*command, *options]])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.splitlines() == [f"drivevision: error: {message}"] and out == ""


@pytest.fixture
def unusable_cache(tmp_path, monkeypatch):
    """DRIVEVISION_CACHE set to a folder under a file, or to a read-only folder (by
    ``os.access``: as root, chmod would not do): yields (kind -> the line that refuses it)."""
    a_file = tmp_path / "engines.tar"
    a_file.write_bytes(b"an archive")
    read_only = tmp_path / "read-only"
    read_only.mkdir()
    access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: Path(path) != read_only
                        and access(path, mode, **kw))
    yield {"file": (a_file / "cache", f"Expected DRIVEVISION_CACHE to be a folder (made if "
                                      f"missing), but {a_file} is not a folder"),
           "read-only": (read_only, f"Expected DRIVEVISION_CACHE to be a folder this user "
                                    f"can write, but {read_only} is read-only")}


CACHED = [["--engine", "onnx"], ["--engine", "compiled", "--device", "cpu"],
          ["--precision", "int8", "--calib", "CLIP"]]


@pytest.mark.parametrize("command", [
    ["detect", "CLIP", "--no-save"], ["live", "CLIP"], ["batch", "CLIP", "--out", "out"]])
@pytest.mark.parametrize("options", CACHED)
@pytest.mark.parametrize("cache", ["file", "read-only"])
def test_an_engine_cache_that_cannot_be_used_is_refused_before_the_model_loads(
        capsys, clip_path, nothing_loads, unusable_cache, monkeypatch, command, options, cache):
    """The engines and precisions that keep builds in the cache: one line naming the
    variable at once, not once the model has loaded (and, for a file, with the same line
    as drivevision cache gives)."""
    root, message = unusable_cache[cache]
    monkeypatch.setenv("DRIVEVISION_CACHE", str(root))
    code = main([clip_path if a == "CLIP" else a for a in [*command, *options]])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.splitlines() == [f"drivevision: error: {message}"] and out == ""


@pytest.mark.parametrize("command", [["bench", "--engines", "torch,onnx"],
                                     ["eval", "CLIP", "--gt", "gt.jsonl", "--engines", "onnx"],
                                     ["bench", "--engines", "torch,compiled", "--device", "cpu"]])
@pytest.mark.parametrize("cache", ["file", "read-only"])
def test_bench_and_eval_refuse_an_unusable_cache_before_timing_or_scoring_the_reference(
        capsys, clip_path, nothing_loads, unusable_cache, monkeypatch, command, cache):
    """Not only after torchvision eager (bench) or torch fp32 (eval) ran, as the engine that
    needs it is skipped."""
    Path("gt.jsonl").write_text('{"frame": 0, "boxes": [[10, 10, 40, 40]], "labels": ["car"]}\n')
    root, message = unusable_cache[cache]
    monkeypatch.setenv("DRIVEVISION_CACHE", str(root))
    code = main([clip_path if a == "CLIP" else a for a in command])
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.splitlines() == [f"drivevision: error: {message}"] and out == ""


@pytest.mark.parametrize("options", [["--engine", "torch"], []])
def test_a_run_that_keeps_nothing_in_the_cache_does_not_look_at_it(
        capsys, clip_path, nothing_loads, unusable_cache, monkeypatch, options):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(unusable_cache["file"][0]))
    with pytest.raises(AssertionError, match="the model loaded"):
        main(["detect", clip_path, "--no-save", *options])
    assert "DRIVEVISION_CACHE" not in capsys.readouterr().err


def test_a_read_only_cache_that_holds_builds_is_used_as_it_is(
        capsys, clip_path, nothing_loads, unusable_cache, monkeypatch):
    """Its entries may be all the run needs: a valid one is used without writing."""
    root, _ = unusable_cache["read-only"]
    (root / "onnx").mkdir()
    (root / "onnx" / "tiny-fpn-dense_a-0123456789abcdef.onnx").write_bytes(b"built")
    monkeypatch.setattr(os, "access", lambda path, mode, **kw: False)  # all of it read-only
    monkeypatch.setenv("DRIVEVISION_CACHE", str(root))
    with pytest.raises(AssertionError, match="the model loaded"):
        main(["detect", clip_path, "--no-save", "--engine", "onnx"])


UNUSED_CALIB = ("drivevision: warning: --calib is only used with --precision int8; without it "
                "nothing is calibrated or quantized")


@pytest.mark.parametrize("command", [
    ["detect", "CLIP", "--no-save"], ["live", "CLIP"], ["batch", "CLIP", "--out", "out"]])
@pytest.mark.parametrize("precision", [[], ["--precision", "fp32"]])
def test_calib_without_int8_is_said_to_do_nothing_before_the_model_loads(
        capsys, clip_path, nothing_loads, command, precision):
    """--calib does not turn int8 on (as trtexec's --calib without --int8): one line says
    so before the model loads, so a run meant to be int8 can be stopped at once."""
    with pytest.raises(AssertionError, match="the model loaded"):
        main([clip_path if a == "CLIP" else a
              for a in [*command, "--calib", "CLIP", *precision]])
    lines = capsys.readouterr().err.splitlines()
    assert lines.count(UNUSED_CALIB) == 1
    assert not any(line.startswith("loading") for line in lines[:lines.index(UNUSED_CALIB)])


@pytest.mark.parametrize("command", [
    ["detect", "CLIP", "--no-save"], ["live", "CLIP"], ["batch", "CLIP", "--out", "out"],
    ["bench"], ["bench", "--precision", "fp16,fp16"]])
def test_fp16_without_cuda_is_refused_before_the_model_loads(capsys, clip_path, nothing_loads,
                                                              command):
    code = main([clip_path if a == "CLIP" else a for a in command] + (
        [] if "--precision" in command else ["--precision", "fp16"]))
    assert code == 2 and capsys.readouterr().err.splitlines() == [f"drivevision: error: {NO_FP16}"]


def test_eval_and_bench_skip_fp16_beside_a_precision_that_runs(clip_path, nothing_loads):
    """Each setting a device cannot run is skipped with its reason; torch fp32 still runs."""
    Path("gt.jsonl").write_text('{"frame": 0, "boxes": [[10, 10, 40, 40]], "labels": ["car"]}\n')
    with pytest.raises(AssertionError, match="the model loaded"):
        main(["eval", clip_path, "--gt", "gt.jsonl", "--precision", "fp16"])
    with pytest.raises(AssertionError, match="the model loaded"):
        main(["bench", "--precision", "fp32,fp16"])


@pytest.mark.parametrize("spelled, as_primary", [
    (["batch", "in", "-o", "det"], ["batch", "in", "--out", "det"]),
    (["batch", "in", "--output", "det"], ["batch", "in", "--out", "det"]),
    (["detect", "in", "--engines", "onnx"], ["detect", "in", "--engine", "onnx"]),
    (["live", "0", "--engines", "onnx"], ["live", "0", "--engine", "onnx"]),
    (["batch", "in", "-o", "d", "--engines", "onnx"],
     ["batch", "in", "-o", "d", "--engine", "onnx"]),
    (["bench", "--engine", "onnx"], ["bench", "--engines", "onnx"]),
    (["bench", "--precisions", "fp32,bf16"], ["bench", "--precision", "fp32,bf16"]),
    (["eval", "in", "--gt", "g", "--engine", "onnx", "--precisions", "bf16"],
     ["eval", "in", "--gt", "g", "--engines", "onnx", "--precision", "bf16"]),
])
def test_another_commands_spelling_of_an_option_is_taken_as_this_ones(spelled, as_primary):
    from drivevision.cli import build_parser

    parser = build_parser()
    assert parser.parse_args(spelled) == parser.parse_args(as_primary)


@pytest.mark.parametrize("command, shown, hidden", [
    ("detect", "--engine {", "--engines"), ("bench", "--engines ENGINES", "--engine "),
    ("eval", "--precision PRECISION", "--precisions"), ("batch", "--out DIR, -o DIR", None)])
def test_the_help_shows_one_name_for_an_option(capsys, command, shown, hidden):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    text = capsys.readouterr().out
    assert shown in text and (hidden is None or hidden not in text)


@pytest.mark.parametrize("args, message", [
    (["detect", "in", "--engines", "torch,onnx"],
     "argument --engines: detect runs one engine, but got 'torch,onnx'; bench and eval "
     "compare several"),
    (["live", "0", "--engine", "onnx,torch"], "live runs one engine, but got 'onnx,torch'"),
    (["batch", "in", "-o", "d", "--precision", "fp32,bf16"],
     "argument --precision: batch runs one precision, but got 'fp32,bf16'"),
])
def test_a_comma_list_where_one_engine_runs_names_the_commands_that_compare_several(
        capsys, args, message):
    from drivevision.cli import build_parser

    with pytest.raises(SystemExit) as usage:
        build_parser().parse_args(args)
    assert usage.value.code == 2 and message in capsys.readouterr().err


def test_classes_given_by_id_are_named_in_a_note_since_ultralytics_counts_coco_from_0(capsys):
    from drivevision.cli.checkpoint import check_classes

    check_classes("2, 8,car", None)  # Ultralytics' 2 and 8 are car and boat
    assert capsys.readouterr().err == (
        "drivevision: note: --classes by id: 2 bicycle, 8 truck (torchvision's COCO ids, from "
        "1 = person; Ultralytics' count from 0)\n")
    check_classes("car,Truck", None)
    assert capsys.readouterr().err == ""


def test_a_checkpoints_own_class_ids_are_named_without_the_coco_remark(capsys):
    from drivevision.cli.checkpoint import check_classes

    demo = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"  # its own 5 classes
    check_classes("2,4", str(demo))
    assert capsys.readouterr().err == "drivevision: note: --classes by id: 2 car, 4 bus\n"
