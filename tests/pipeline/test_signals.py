"""Ctrl-C and SIGTERM are stop requests wherever they land: in the pipeline's own wait, in
the caller's code between results, while outputs are finished, or while the command starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from standins import ArraySource, FixedDetector, count_frames

from drivevision.pipeline import signals
from drivevision.pipeline.runner import detect_video


def test_ctrl_c_in_the_callers_code_is_a_stop_request(tmp_path):
    """The signal lands in ``on_result`` (the caller's code, outside any queue wait): the run
    stops reading, writes what was detected, and says it was interrupted."""
    out, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    seen = []

    def ctrl_c_at_the_third(result):
        seen.append(result.frame.index)
        if len(seen) == 3:
            os.kill(os.getpid(), signal.SIGINT)  # handled on the next bytecode, right here

    summary = detect_video(ArraySource(10_000), out, jsonl=jsonl,
                           detector=FixedDetector(0.002), on_result=ctrl_c_at_the_third)
    assert summary.interrupted and 3 <= summary.frames < 10_000
    lines = [json.loads(x) for x in jsonl.read_text().splitlines()]
    assert [x["frame"] for x in lines] == seen == list(range(summary.frames))
    assert count_frames(out) == summary.frames
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.jsonl", "out.mp4"]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # given back


def test_a_second_ctrl_c_aborts_a_run_that_is_stopping(tmp_path):
    calls = []

    def twice(result):
        calls.append(result)
        if len(calls) in (2, 3):
            os.kill(os.getpid(), signal.SIGINT)

    summary = detect_video(ArraySource(10_000), jsonl=tmp_path / "d.jsonl",
                           detector=FixedDetector(0.01), on_result=twice)
    assert summary.interrupted and summary.frames < 50
    assert (tmp_path / "d.jsonl").exists()


def test_sigterm_stays_fatal_in_a_script_and_becomes_a_request_in_a_drivevision_program():
    with signals.requests(lambda s: None) as taken:
        assert taken and signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    previous = signals.install(lambda s: None)
    try:
        caught = []
        with signals.requests(caught.append):
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)
        assert caught == [signal.SIGTERM]
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def test_held_signals_wait_for_the_block_and_are_reported():
    with signals.held() as caught:
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.01)
        still_running = True
    assert still_running and caught == [signal.SIGINT]
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


@pytest.mark.slow
@pytest.mark.timeout(120)
@pytest.mark.parametrize("after_s", [0.3, 1.0, 2.5])
def test_ctrl_c_while_the_command_starts_is_one_line(tmp_path, clip_path, tiny_checkpoint,
                                                     after_s):
    """During imports and model loading: exit 130 with one line, never a traceback or a C++
    abort, and no output file appears."""
    cmd = [sys.executable, "-m", "drivevision", "detect", clip_path, "-o",
           str(tmp_path / "out.mp4"), "--weights", tiny_checkpoint, "--model", "tiny-fpn"]
    run = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    time.sleep(after_s)
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert "Traceback" not in err and "terminate" not in err
    assert list(tmp_path.iterdir()) in ([], [tmp_path / "out.mp4"])  # nothing half-written
    if run.returncode == 0:  # a fast machine finished the 12 frames first
        return
    assert run.returncode == 130, err
    if out:  # a fast machine was detecting: a stop request, and the summary says so
        assert out.splitlines()[0].endswith(", interrupted"), out
    else:
        assert err.strip().splitlines()[-1] == "drivevision: interrupted"
