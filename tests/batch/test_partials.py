"""The ``.partial`` files a batch removes once an input is done are only those its own failed
tries kept, as recorded in the manifest: a user's file of such a name, or another input's
output (``clip.partial.mp4`` is a name footage may have), stays."""

import os
import time

from drivevision.batch import BatchSettings, Event, find_jobs, plan_batch, run_batch
from drivevision.batch.work import run_job
from drivevision.config import DetectorConfig
from drivevision.synthetic import write_clip
from tests.batch.helpers import WEIGHTS
from tests.standins import FixedDetector


class _Detector(FixedDetector):
    size_problem = None  # takes any frame


class _Here:
    """Workers that run each input in this process on ``detector`` (a stand-in)."""

    def __init__(self, detector, settings, out):
        self.detector, self.settings, self.out = detector, settings, out

    def run(self, jobs, stopping):
        for job in jobs:
            yield Event("started", job, worker=1)
            result = run_job(self.detector, job, self.settings, self.out)
            yield Event("result", job, worker=1, result=result)


class _FailsOnceWritten(_Detector):
    """Fails on its third call, once the two frames before it are written: the writer has a
    thread of its own, and a failure that came first would leave the try nothing to keep."""

    def __init__(self, out):
        super().__init__(fail_on_call=3)
        self.out = out

    def infer_timed(self, frames):
        if self.calls + 1 == self.fail_on_call:
            deadline = time.monotonic() + 20
            while time.monotonic() < deadline and not any(
                    p.read_bytes().count(b"\n") >= 2 for p in self.out.glob(".clip*part*.jsonl")):
                time.sleep(0.01)
        return super().infer_timed(frames)


def _run(inputs, out, detector):
    settings = BatchSettings(DetectorConfig(weights=WEIGHTS))
    plan = plan_batch(find_jobs([str(i) for i in inputs], out), out, settings)
    out.mkdir(exist_ok=True)
    return plan, run_batch(plan, _Here(detector, settings, out))


def test_a_done_input_removes_the_partial_files_its_failed_tries_kept_and_no_other(tmp_path):
    clip = tmp_path / "clip.mp4"
    write_clip(clip, 6, width=160, height=96, seed=1)
    out = tmp_path / "det"
    out.mkdir()
    users = {"clip.partial.jsonl": b"mine\n", "clip.partial3.jsonl": b"mine too\n",
             "clip.partial-notes.jsonl": b"notes\n", "clip.partial2.txt": b"text\n"}
    for name, data in users.items():
        (out / name).write_bytes(data)
    _, outcome = _run([clip], out, _FailsOnceWritten(out))
    assert outcome.failed == 1
    assert (out / "clip.partial2.jsonl").read_text().count("\n") == 2  # the try's, kept
    _, outcome = _run([clip], out, _FailsOnceWritten(out))
    assert (out / "clip.partial4.jsonl").is_file()  # a second failed try's
    _, outcome = _run([clip], out, _Detector())
    assert outcome.summary["done"] == 1
    left = {p.name: p.read_bytes() for p in out.glob("clip.partial*")}
    assert left == users  # before: clip.partial.jsonl and clip.partial3.jsonl went too


def test_an_input_named_like_a_partial_file_keeps_its_outputs_when_another_is_redone(
        tmp_path):
    footage = tmp_path / "footage"
    footage.mkdir()
    for seed, name in enumerate(("clip.mp4", "clip.partial.mp4", "clip.partial2.mp4"), 1):
        write_clip(footage / name, 3, width=160, height=96, seed=seed)
    out = tmp_path / "det"
    _, outcome = _run([footage], out, _Detector())
    assert outcome.summary["done"] == 3  # each a footage file, found and run as an input
    os.utime(footage / "clip.mp4", ns=(1, 1))  # changed: redone by the next run
    _, outcome = _run([footage], out, _Detector())
    assert outcome.summary["done"] == 1 and outcome.summary["skipped"] == 2
    assert all((out / f"{n}.jsonl").is_file() for n in ("clip", "clip.partial", "clip.partial2"))
    plan, _ = _run([footage], out, _Detector())
    assert plan.todo == []  # before: the two others' outputs were removed, and redone here
