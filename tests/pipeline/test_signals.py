"""Ctrl-C and SIGTERM are stop requests wherever they land: in the pipeline's own wait, in
the caller's code between results, while outputs are finished, or while the command starts."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest
from standins import ArraySource, FixedDetector, count_frames

from drivevision.io.sinks import JsonlSink
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


class _FrozenCapture:
    """An OpenCV capture of a stream that froze after ``frames`` frames: the next read blocks
    until its timeout (``block_s``), as FFmpeg's does, whatever stop was asked meanwhile."""

    def __init__(self, frames: int, block_s: float):
        self.left, self.block_s = frames, block_s
        self.blocking, self.released = threading.Event(), threading.Event()

    def get(self, prop):
        return 0.0

    def read(self):
        if self.left:
            self.left -= 1
            return True, np.zeros((48, 64, 3), np.uint8)
        self.blocking.set()
        time.sleep(self.block_s)
        return False, None

    def release(self):
        self.released.set()


@pytest.mark.timeout(30)
def test_a_stop_during_a_read_blocked_on_a_frozen_stream_ends_the_run_at_once(caplog):
    """Ctrl-C while a stream is frozen (its read blocks until FFmpeg's timeout, the stall
    timeout: 4 s here): the run waited for the read, up to 10 s and then left it behind with
    a warning; now it ends within a second or two, and the read, when it times out, still
    releases its capture."""
    from drivevision.io.streams import Reconnect, StreamSource
    from drivevision.pipeline import Pipeline

    capture = _FrozenCapture(frames=3, block_s=4.0)
    source = StreamSource("http://cam/stream", lambda: capture, Reconnect(stall_timeout=20))
    pipeline = Pipeline([source], FixedDetector(0.001))
    asked = []

    def stop_while_blocked():
        capture.blocking.wait(10)
        time.sleep(0.3)
        asked.append(time.monotonic())
        pipeline.stop()

    threading.Thread(target=stop_while_blocked, daemon=True).start()
    with caplog.at_level("WARNING"), source:
        seen = [result.frame.index for result in pipeline.results()]
        took = time.monotonic() - asked[0]
    assert seen and seen[-1] == 2 and took < 2.5, took
    assert "left behind" not in caplog.text
    assert capture.released.wait(6.0)  # the read ended by itself and let go of the stream


def _ctrl_c_at(n: int):
    seen = []

    def on_result(result):
        seen.append(result.frame.index)
        if len(seen) == n:
            os.kill(os.getpid(), signal.SIGINT)

    return on_result


def test_ctrl_c_keeps_the_files_its_outputs_would_replace(tmp_path):
    """A run stopped part way never replaces a file the user had: that file stays as it
    was, and what the run wrote goes beside it as NAME.partial.EXT (never over an earlier
    .partial either), named in a note and in ``placed``."""
    out, jsonl, csv = tmp_path / "out.mp4", tmp_path / "out.jsonl", tmp_path / "out.csv"
    for path in (out, jsonl, csv):
        path.write_bytes(b"the user's own " + path.suffix.encode())
    (tmp_path / "out.partial.csv").write_text("an earlier partial run")

    summary = detect_video(ArraySource(10_000), out, jsonl=jsonl, csv=csv,
                           detector=FixedDetector(0.002), on_result=_ctrl_c_at(3))

    assert summary.interrupted and 3 <= summary.frames < 10_000
    for path in (out, jsonl, csv):
        assert path.read_bytes() == b"the user's own " + path.suffix.encode()
    assert (tmp_path / "out.partial.csv").read_text() == "an earlier partial run"
    assert summary.placed == {out: tmp_path / "out.partial.mp4",
                              jsonl: tmp_path / "out.partial.jsonl",
                              csv: tmp_path / "out.partial2.csv"}
    assert count_frames(tmp_path / "out.partial.mp4") == summary.frames
    lines = (tmp_path / "out.partial.jsonl").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == list(range(summary.frames))
    assert (tmp_path / "out.partial2.csv").read_text().startswith("frame,timestamp_ms,")
    assert any(f"{jsonl} was left as it was (the run was interrupted); this run's "
               f"{summary.frames} frames are in {tmp_path / 'out.partial.jsonl'}" == n
               for n in summary.notes), summary.notes
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_a_finished_run_replaces_the_file_and_a_live_one_stopped_with_ctrl_c_too(tmp_path):
    """-o replaces a file on a finished run; a camera is stopped with Ctrl-C, which is how
    such a run ends, so its outputs take their names too."""
    done, live = tmp_path / "done.jsonl", tmp_path / "live.jsonl"
    done.write_text("old\n")
    live.write_text("old\n")
    assert not detect_video(ArraySource(5), jsonl=done, detector=FixedDetector(0.0)).placed
    summary = detect_video(ArraySource(10_000, live=True, period=0.01), jsonl=live,
                           detector=FixedDetector(0.002), on_result=_ctrl_c_at(3))
    assert summary.interrupted and not summary.placed
    assert len(done.read_text().splitlines()) == 5
    assert live.read_text() != "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["done.jsonl", "live.jsonl"]


def test_ctrl_c_before_the_first_frame_leaves_nothing_beside_the_users_file(tmp_path):
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text("mine\n")
    with pytest.raises(KeyboardInterrupt), JsonlSink(jsonl, ["car"]):
        raise KeyboardInterrupt
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl"]
    assert jsonl.read_text() == "mine\n"
