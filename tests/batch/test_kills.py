"""A batch that loses a worker, or is killed or stopped itself, loses at most the inputs in
progress, and the next run completes them: nothing lost, nothing twice."""

import json
import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

from drivevision.batch import (
    BatchSettings,
    Event,
    JobResult,
    find_jobs,
    local_workers,
    plan_batch,
    run_batch,
)
from drivevision.cli import main
from drivevision.config import DetectorConfig
from drivevision.synthetic import write_clip
from tests.batch.helpers import (
    CLIPS,
    WEIGHTS,
    hidden_or_partial,
    make_footage,
    new_plan,
    outputs_of,
    stop_at_first_progress,
)


@pytest.mark.slow
def test_a_worker_killed_mid_file_costs_only_that_file_which_is_retried(tmp_path):
    # clips long enough (a second or more each) that the first progress report of the second
    # one comes well before its end: the kill must land mid-file, not after its result
    footage = make_footage(tmp_path / "footage", frames=80)
    clean = tmp_path / "clean"
    assert main(["batch", str(footage), "--out", str(clean), "--weights", WEIGHTS, "-q"]) == 0
    out = tmp_path / "det"
    plan = new_plan(footage, out)
    events, killed = [], []

    def kill_in_second_file(event):
        events.append((event.kind, event.job and event.job.rel))
        if event.kind == "frames" and event.job.rel == "2026-11-28/front_0002" and not killed:
            killed.append(event.worker)
            os.kill(event.worker, signal.SIGKILL)

    outcome = run_batch(plan, local_workers(plan.settings, out, 1), on_event=kill_in_second_file)
    assert killed, "the worker was never seen working on the second file"
    assert ("retry", "2026-11-28/front_0002") in events
    assert outcome.summary["done"] == 3 and outcome.failed == 0
    assert outputs_of(out) == outputs_of(clean)
    assert hidden_or_partial(out) == []


@pytest.mark.slow
def test_an_input_stopped_mid_file_reports_the_frames_and_seconds_it_had_done(tmp_path):
    outcome, stopped = stop_at_first_progress(
        tmp_path, lambda settings, out: local_workers(settings, out, 1))
    assert outcome.summary["this_run"]["frames"] == stopped["frames"]


class _StoppedWhileFinishing:
    """Workers whose one worker had moved its input's .jsonl into place, but not yet its
    .mp4, when the batch stopped it."""

    def __init__(self, out):
        self.out = out

    def run(self, jobs, stopping):
        job = jobs[0]
        yield Event("started", job, worker=1)
        yield Event("frames", job, worker=1, frames=120)
        (self.out / f"{job.rel}.jsonl").write_text('{"frame": 0, "detections": []}\n')
        result = JobResult(job.rel, job.source, "interrupted", error="interrupted")
        yield Event("result", job, worker=1, result=result)


def test_an_input_stopped_while_finishing_keeps_none_of_its_outputs(tmp_path):
    footage = make_footage(tmp_path / "footage", frames=1)
    out = tmp_path / "det"
    settings = BatchSettings(DetectorConfig(weights=WEIGHTS), video=True)
    jobs = find_jobs([str(footage / CLIPS[2])], out)
    plan = plan_batch(jobs, out, settings)
    out.mkdir()
    outcome = run_batch(plan, _StoppedWhileFinishing(out))
    [row] = outcome.rows
    assert row["status"] == "interrupted" and row["outputs"] == []
    assert row["frames"] == 120
    assert outputs_of(out) == {}  # none in place: the next run redoes the input whole
    assert "removed rear_0001.jsonl" in row["notes"][0]


def _start_batch(footage, out):
    return subprocess.Popen([sys.executable, "-m", "drivevision", "batch", str(footage),
                             "--out", str(out), "--weights", WEIGHTS],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_first_done(out, process, timeout=120):
    manifest = out / "batch-manifest.jsonl"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if manifest.exists() and manifest.read_text().count("\n") >= 1:
            return
        time.sleep(0.05)
    pytest.fail("the batch finished no input in time")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGKILL, -9), (signal.SIGINT, 130)])
def test_a_batch_killed_or_stopped_mid_way_resumes_and_completes(tmp_path, signum, code):
    footage = make_footage(tmp_path / "footage", frames=30)
    out = tmp_path / "det"
    process = _start_batch(footage, out)
    try:
        _wait_for_first_done(out, process)
        workers = psutil.Process(process.pid).children(recursive=True)
        process.send_signal(signum)
        assert process.wait(timeout=60) == code
    finally:
        process.kill()
        process.wait()
    _, left = psutil.wait_procs(workers, timeout=10)
    assert left == [], "worker processes outlived the batch"
    if signum == signal.SIGINT:
        seen = json.loads((out / "batch.json").read_text())["summary"]
        assert seen["done"] >= 1 and seen["interrupted"] + seen["pending"] >= 1
        left = seen["interrupted"] + seen["pending"]
        assert (f"stopped with {left} of {len(CLIPS)} inputs left: run the same command "
                "again to resume") in process.stdout.read().splitlines()
    done_before = (out / "batch-manifest.jsonl").read_text().count("\n")
    assert 1 <= done_before < len(CLIPS)

    rerun = subprocess.run([sys.executable, "-m", "drivevision", "batch", str(footage),
                            "--out", str(out), "--weights", WEIGHTS],
                           capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    rows = json.loads((out / "batch.json").read_text())["inputs"]
    assert sorted(r["status"] for r in rows).count("skipped") == done_before
    assert all(r["status"] in ("done", "skipped") for r in rows)
    for rel in CLIPS:
        lines = (out / rel.replace(".mp4", ".jsonl")).read_text().splitlines()
        assert [json.loads(ln)["frame"] for ln in lines] == list(range(30))
    assert hidden_or_partial(out) == []
    assert len((out / "batch-manifest.jsonl").read_text().splitlines()) == len(CLIPS)


def test_a_rerun_that_skips_an_input_removes_the_part_files_a_killed_redo_left(tmp_path):
    from drivevision.io.claims import part_name

    footage = tmp_path / "footage"
    (footage / "cam").mkdir(parents=True)
    write_clip(footage / "cam" / "a.mp4", 3, width=160, height=96, seed=1)
    out = tmp_path / "det"
    assert main(["batch", str(footage), "--out", str(out), "--weights", WEIGHTS, "-q"]) == 0
    done = outputs_of(out)
    # what a `--force` rerun killed mid-input leaves beside the done output: its part file
    killed = part_name(out / "cam" / "a.jsonl")
    killed.write_text('{"frame": 0}\n')
    assert hidden_or_partial(out) == [killed.name]
    assert main(["batch", str(footage), "--out", str(out), "--weights", WEIGHTS, "-q"]) == 0
    assert json.loads((out / "batch.json").read_text())["inputs"][0]["status"] == "skipped"
    assert hidden_or_partial(out) == []  # before: kept, named by nothing, forever
    assert outputs_of(out) == done
