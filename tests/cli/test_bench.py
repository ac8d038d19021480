"""``drivevision bench``: one table per engine and precision, speedup against torchvision
eager measured in the same run, unsupported settings skipped with the reason, no download."""

from __future__ import annotations

import json

import pytest

from drivevision.cli import main


def test_bench_json_has_stages_fps_and_speedup(capsys):
    code = main(["bench", "--model", "tiny-fpn", "--engines", "torch", "--precision",
                 "fp32,fp16", "--batch", "1,2", "--input-size", "96x160", "--iters", "2",
                 "--warmup", "1", "--device", "cpu", "--json"])
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert "random weights" in out["weights"]
    (entry,) = out["results"]
    assert (entry["engine"], entry["precision"]) == ("torch", "fp32")
    for batch in ("1", "2"):
        r = entry["batches"][batch]
        assert set(r["stages"]) == {"preprocess", "dense_a", "proposals", "dense_b",
                                    "postprocess"}
        baseline = out["baseline"][batch]["total"]["median"]
        assert r["total"]["median"] > 0 and baseline > 0
        # eager is timed before and after the engines; speedups divide the mean of the two
        both = out["baseline"][batch]["before_ms"], out["baseline"][batch]["after_ms"]
        assert min(both) > 0 and baseline == pytest.approx(sum(both) / 2)
        # the speedup is against torchvision eager timed in this same run, per frame
        assert r["speedup"] == pytest.approx(baseline / r["total"]["median"], rel=0.02)
        fastest = out["baseline"][batch]["total"]["min"]
        assert fastest <= baseline and r["total"]["min"] <= r["total"]["median"]
        assert r["speedup_fastest"] == pytest.approx(fastest / r["total"]["min"], rel=0.02)
        assert r["fps"] == pytest.approx(int(batch) * 1000 / r["total"]["median"], rel=0.02)
    assert out["skipped"][0]["precision"] == "fp16" and "CUDA" in out["skipped"][0]["reason"]


def test_bench_table_names_every_stage(capsys):
    assert main(["bench", "--model", "tiny-fpn", "--engines", "torch", "--batch", "1",
                 "--input-size", "96x160", "--iters", "1", "--warmup", "0",
                 "--device", "cpu"]) == 0
    table = capsys.readouterr().out
    for row in ("preprocess", "dense_a", "proposals+RoIAlign", "dense_b", "postprocess",
                "total", "frames/s", "speedup"):
        assert row in table


def test_bench_refuses_unknown_precisions_before_timing_anything(capsys):
    code = main(["bench", "--model", "tiny-fpn", "--precision", "fp32,fp8", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 2 and "fp8" in captured.err and "torchvision eager" not in captured.err


@pytest.mark.parametrize("batch", ["a", "1,two", "1.5"])
def test_a_batch_list_that_is_not_whole_numbers_names_the_option_and_what_it_takes(capsys,
                                                                                   batch):
    with pytest.raises(SystemExit) as usage:
        main(["bench", "--model", "tiny-fpn", "--batch", batch, "--device", "cpu"])
    captured = capsys.readouterr()
    assert usage.value.code == 2 and captured.out == ""
    (line,) = captured.err.splitlines()  # refused while parsing, before anything is timed
    assert line.startswith("drivevision bench: error: argument --batch: expected whole "
                           f"numbers >= 1 separated by commas (1,2,4), but got {batch!r}")


@pytest.mark.parametrize("option, value, expected", [
    ("--batch", "0", "expected whole numbers >= 1 separated by commas (1,2,4), but got '0'"),
    ("--batch", "1,0", "expected whole numbers >= 1 separated by commas (1,2,4), but got "
                       "'1,0'"),
    ("--iters", "0", "expected a whole number >= 1, but got '0'"),
    ("--warmup", "-1", "expected a whole number >= 0, but got '-1'"),
    ("--input-size", "16x640", "expected an input size of at least 32x32, but got '16x640'"),
    ("--input-size", "100x100", "expected an input size in multiples of 32 (the detector pads "
                                "frames to them), but got 100x100; the nearest: 96x96 or "
                                "128x128"),
    ("--input-size", "96x170", "expected an input size in multiples of 32 (the detector pads "
                               "frames to them), but got 96x170; the nearest: 96x160 or "
                               "96x192"),
])
def test_a_number_out_of_range_is_refused_as_parsed_naming_the_option(capsys, monkeypatch,
                                                                      option, value, expected):
    """As argparse refuses a bad value: at once, before anything loads (was a message naming
    the library's parameters, after torch loaded). 100x100 would run padded to 128x128, so
    its figures would not be 100x100's: refused as export refuses it."""
    from drivevision.cli import timing

    monkeypatch.setattr(timing, "run_bench", lambda *a, **k: pytest.fail("it ran"))
    with pytest.raises(SystemExit) as usage:
        main(["bench", "--model", "tiny-fpn", "--engines", "torch", "--device", "cpu",
              option, value])
    captured = capsys.readouterr()
    assert usage.value.code == 2 and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line == (f"drivevision bench: error: argument {option}: {expected} (drivevision "
                    "bench --help lists the options)")


@pytest.mark.parametrize("changed, expected", [
    ({"iters": 0}, "Expected iters >= 1, but got iters=0"),
    ({"warmup": -1}, "Expected warmup >= 0, but got warmup=-1"),
    ({"batches": (1, 0)}, "Expected batches of sizes >= 1 (at least one), but got "
                          "batches=(1, 0)"),
    ({"batches": ()}, "Expected batches of sizes >= 1 (at least one), but got batches=()"),
    ({"input_size": (0, 0)}, "Expected input_size (H, W) of at least 32x32, but got "
                             "input_size=(0, 0)"),
    ({"input_size": (100, 96)}, "Expected input_size (H, W) in multiples of 32 (the detector "
                                "pads frames to them), but got 100x96; the nearest: 96x96 or "
                                "128x96"),
])
def test_the_library_s_bench_spec_names_its_own_parameters(changed, expected):
    """``BenchSpec`` for API users: the parameter given wrong, as its signature spells it."""
    from drivevision.cli.timing import BenchSpec

    with pytest.raises(ValueError) as error:
        BenchSpec(**changed)
    assert str(error.value) == expected


@pytest.mark.slow
def test_bench_names_what_auto_picked_and_goes_on_after_a_failing_engine(capsys, monkeypatch,
                                                                        tmp_path):
    from drivevision.cli import timing as bench

    timed = bench.time_engine

    def fails_for_torch(detector, *args):
        if detector.engine.name == "torch":
            raise RuntimeError("engine build failed\nsecond line")
        return timed(detector, *args)

    monkeypatch.setattr(bench, "time_engine", fails_for_torch)
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    code = main(["bench", "--model", "tiny-fpn", "--engines", "torch,auto", "--batch", "1",
                 "--input-size", "96x160", "--iters", "1", "--warmup", "0", "--device", "cpu",
                 "--json"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [r["engine"] for r in out["results"]] == ["onnx"]  # auto on a CPU, fp32
    (skip,) = out["skipped"]
    assert skip["engine"] == "torch" and skip["reason"].endswith("engine build failed")


def test_bench_with_nothing_that_runs_here_fails_saying_why(capsys):
    """tensorrt on a CPU: every setting is skipped, so there is no figure to print."""
    code = main(["bench", "--model", "tiny-fpn", "--engines", "tensorrt", "--batch", "1",
                 "--input-size", "96x160", "--iters", "1", "--warmup", "0", "--device", "cpu",
                 "--json"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    (line,) = captured.err.splitlines()  # one line, before torchvision eager was timed
    assert line.startswith("drivevision: error: Expected an engine and precision that run here")
    assert "nothing would be measured (tensorrt fp32: Expected a CUDA device" in line


@pytest.mark.parametrize("engines, reason", [
    ("torch", "torch int8: Expected --engine onnx or compiled (or auto) for int8, but got torch"),
    ("torch,tensorrt", "; tensorrt int8: Expected --engine onnx or compiled (or auto) for "
                       "int8, but got tensorrt; a TensorRT int8 engine: drivevision export"),
])
def test_bench_with_no_engine_for_the_precision_fails_before_timing_eager(capsys, engines,
                                                                        reason):
    """torch int8 never runs: said at once, not after torchvision eager was timed."""
    code = main(["bench", "--model", "tiny-fpn", "--engines", engines, "--precision", "int8",
                 "--input-size", "64x64", "--iters", "1", "--warmup", "0", "--device", "cpu"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    (line,) = captured.err.splitlines()  # one line, before torchvision eager was timed
    assert line.startswith("drivevision: error: Expected an engine and precision that run here")
    assert reason in line


def test_bench_json_names_the_weights_file_and_calibration_without_a_prefix(capsys,
                                                                          tiny_checkpoint,
                                                                          monkeypatch):
    """Values a script reads as they are: the weights path, what int8 calibrated on (onnx
    int8 stands in for an engine that takes int8, and fails to load: nothing is built)."""
    from drivevision.cli import timing

    def detector(loaded, *, engine, **kwargs):
        if engine == "onnx":
            raise ImportError("no ONNX Runtime in this test")
        return real(loaded, engine=engine, **kwargs)

    real = timing.Detector
    monkeypatch.setattr(timing, "Detector", detector)
    code = main(["bench", "--weights", tiny_checkpoint, "--model", "tiny-fpn",
                 "--engines", "torch,onnx", "--precision", "fp32,int8", "--batch", "1",
                 "--input-size", "96x160", "--iters", "1", "--warmup", "0", "--device", "cpu",
                 "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 0 and out["weights"] == tiny_checkpoint
    assert out["calibration"] == "4 generated scenes (no --calib; timings only)"
    assert f"tiny-fpn: weights {tiny_checkpoint}" in captured.err
    assert "int8 calibrated on 4 generated scenes" in captured.err


def test_int8_footage_is_not_read_when_no_engine_asked_for_runs_int8(capsys, tmp_path):
    """torch int8 is skipped: --calib is neither read nor named as what int8 calibrated on
    (it was hashed, and the header said 'int8 calibrated on 16 frames of clip.mp4')."""
    from drivevision.synthetic import write_clip

    clip = tmp_path / "clip.mp4"
    write_clip(clip, 2, width=64, height=64)
    code = main(["bench", "--model", "tiny-fpn", "--engines", "torch", "--precision",
                 "fp32,int8", "--calib", str(clip), "--input-size", "64x64", "--iters", "1",
                 "--warmup", "0", "--device", "cpu", "--json"])
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert code == 0 and [r["precision"] for r in out["results"]] == ["fp32"]
    assert out["skipped"][0]["precision"] == "int8"
    assert "calibration" not in out and "calibrated" not in captured.err


@pytest.mark.parametrize("engine, precision, kind, reason", [
    ("onnx", "int8", "cpu", None),
    ("compiled", "int8", "cpu", None),
    ("auto", "int8", "cpu", None),
    ("compiled", "int8", "cuda", "Expected the CPU for int8, but got cuda; on CUDA use fp16"),
    ("auto", "int8", "cuda", "Expected the CPU for int8, but got cuda; on CUDA use fp16"),
    ("torch", "int8", "cuda", "Expected --engine onnx or compiled (or auto) for int8"),
    ("onnx", "bf16", "cpu", "Expected fp32 (CPU or CUDA), fp16 (CUDA) or int8 (CPU) for the "
                            "onnx engine, but got bf16 on cpu"),
    ("compiled", "fp16", "cpu", "Expected fp16 on a CUDA device"),
    ("tensorrt", "fp32", "cpu", "Expected a CUDA device for the tensorrt engine, but got cpu"),
    ("tensorrt", "fp16", "cuda", None),
])
def test_what_bench_and_eval_skip_before_loading_is_what_the_engines_refuse(engine, precision,
                                                                          kind, reason):
    """The settings that cannot run are known before the model loads, so nothing is checked
    or built for them (the engine cache, int8's footage); compiled int8 refuses CUDA once
    built, so on CUDA int8 runs nowhere."""
    from drivevision.cli.settings import why_not_here

    why = why_not_here(engine, precision, kind)
    assert why == reason if reason is None else why.startswith(reason)


@pytest.mark.parametrize("after_ms, warned", [(42.8, True), (500.0, False)])
def test_bench_warns_when_the_baseline_drifted_during_the_run(capsys, monkeypatch, after_ms,
                                                              warned):
    """Eager at 653.8 ms before the engines and 42.8 after: no speedup can be trusted."""
    from drivevision.cli import timing

    calls = []

    def baseline(loaded, frames, device, spec, batch, stop=None):
        calls.append(batch)
        ms = 653.8 if len(calls) == 1 else after_ms
        return {"total": {"median": ms, "p95": ms, "min": ms}, "fps": 1000 / ms}

    monkeypatch.setattr(timing, "time_baseline", baseline)
    code = main(["bench", "--model", "tiny-fpn", "--engines", "torch", "--batch", "1",
                 "--input-size", "96x160", "--iters", "1", "--warmup", "0", "--device", "cpu"])
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "unreliable" in line]
    assert code == 0 and len(calls) == 2
    assert lines == ([f"warning: torchvision eager timed before and after the engines differs "
                      f"by more than 1.5x (b1 653.8 -> {after_ms:.1f} ms): the machine's speed "
                      f"changed during the run, so the speedups are unreliable; rerun on a "
                      f"quiet machine"] if warned else [])


def test_ctrl_c_once_a_setting_is_timed_keeps_its_table_and_names_the_rest(capsys,
                                                                          monkeypatch):
    """Ctrl-C while torch bf16 runs: torch fp32's figures are printed, bf16 is named as not
    timed, eager is not timed again (speedups divide the timing before), exit 130."""
    import os
    import signal

    from drivevision.cli import timing

    timed = timing.time_engine

    def interrupted_in_bf16(detector, *args):
        if detector.precision == "bf16":
            os.kill(os.getpid(), signal.SIGINT)  # as a Ctrl-C in the terminal
        return timed(detector, *args)

    def quit_at_once(signum):  # os._exit in the program: it would end the tests here
        raise AssertionError("the Ctrl-C quit at once, losing what was timed")

    monkeypatch.setattr(timing, "time_engine", interrupted_in_bf16)
    monkeypatch.setattr("drivevision.cli.exits.quit_now", quit_at_once)
    monkeypatch.setattr("drivevision.cli.quit_now", quit_at_once)
    args = ["bench", "--model", "tiny-fpn", "--engines", "torch", "--precision", "fp32,bf16",
            "--input-size", "64x64", "--iters", "1", "--warmup", "0", "--device", "cpu"]
    assert main([*args, "--json"]) == 130
    captured = capsys.readouterr()
    out = json.loads(captured.out)
    assert [(r["engine"], r["precision"]) for r in out["results"]] == [("torch", "fp32")]
    assert out["interrupted"] is True and out["not_timed"] == ["torch bf16"]
    base = out["baseline"]["1"]
    assert base["after_ms"] is None and base["before_ms"] == base["total"]["median"]
    assert out["results"][0]["batches"]["1"]["speedup"] > 0
    assert "torchvision eager fp32 again" not in captured.err
    assert main(args) == 130
    table = capsys.readouterr().out
    assert "\ntorch fp32\n" in table and "speedup" in table
    last = table.rsplit("\ninterrupted: ", 1)[1]  # wrapped to the terminal's 80 columns
    assert " ".join(last.split()) == ("not timed: torch bf16; speedups (b1) divide "
                                      "torchvision eager as timed before the engines only")


WHY_AUTO = ("precision auto: bf16 in hardware (AVX512-BF16); its AP on the evaluation clips "
            "is within 0.3 AP points (AP x100) of fp32; engine auto: CPU, bf16: Inductor's "
            "bf16 kernels, the fastest CPU path measured")
LONG_WEIGHTS = "/home/someone/projects/driving/checkpoints/tiny-fpn-synthetic-2026-11-30.pt"


def table_result(warmup: int = 1) -> dict:
    """What run_bench returns, by hand: compiled bf16 chosen by auto at batch 1 and 8."""
    cell = {"median": 1234.5, "p95": 2345.6, "min": 1000.0}
    batch = {"stages": {s: cell for s in ("preprocess", "dense_a", "proposals", "dense_b",
                                          "postprocess")},
             "total": cell, "fps": 0.81, "speedup": 1.5, "speedup_fastest": 1.4}
    return {"model": "tiny-fpn", "weights": LONG_WEIGHTS,
            "device": "CPU: AMD EPYC 9B14 96-Core Processor", "input_size": [384, 640],
            "iters": 1, "warmup": warmup, "torch": "2.14.1+cu130", "threads": 2,
            "cpu_features": ["avx512_bf16", "avx512_vnni", "avx512f", "avx2"],
            "baseline": {b: {"total": cell, "fps": 0.8, "before_ms": 1351.0,
                             "after_ms": 870.5} for b in ("1", "8")},
            "results": [{"engine": "compiled", "precision": "bf16", "auto": WHY_AUTO,
                         "batches": {"1": batch, "8": batch}}],
            "skipped": [{"engine": "tensorrt", "precision": "fp16", "reason": "Expected a "
                         "CUDA device for the tensorrt engine, but got cpu (no GPU here)"}]}


def test_bench_tables_fit_an_80_column_terminal_with_two_batch_sizes():
    """The header, the reason auto chose and a skipped setting's reason are wrapped, not
    one 200-character line; a long path is kept whole."""
    from drivevision.cli.bench_tables import format_tables

    text = format_tables(table_result())
    assert max(len(line) for line in text.splitlines()) <= 80, text
    assert LONG_WEIGHTS in text and "1 timed call after 1 warm-up call;" in text
    assert f"compiled bf16 (chosen by {WHY_AUTO})" in " ".join(
        line.strip() for line in text.splitlines())
    assert "\nstage " in text and "\nspeedup, fastest calls " in text  # rows start a line


def test_bench_without_warm_up_says_the_first_call_s_one_off_work_is_timed():
    """--warmup 0 with the compiled engine times its compilation: 17 s of a 96x160 call."""
    from drivevision.cli.bench_tables import format_tables

    assert "no warm-up call" not in format_tables(table_result(warmup=1))
    cold = " ".join(format_tables(table_result(warmup=0)).split())
    assert ("warning: no warm-up call, so the first timed call's one-off work (compiling: a "
            "minute or more for compiled; first allocations) is in the figures; --warmup 1 "
            "keeps it out") in cold


def test_bench_progress_names_the_precision_auto_picked_not_auto(capsys):
    assert main(["bench", "--model", "tiny-fpn", "--engines", "torch", "--precision", "auto",
                 "--input-size", "64x64", "--iters", "1", "--warmup", "0", "--device", "cpu",
                 "--json"]) == 0
    captured = capsys.readouterr()
    (entry,) = json.loads(captured.out)["results"]
    assert entry["precision"] in ("fp32", "bf16")  # by the CPU's bf16 hardware
    assert f"\ntorch {entry['precision']}, batch 1\n" in captured.err
    assert "auto, batch" not in captured.err
