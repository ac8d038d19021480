"""The batch on a real local Ray cluster started here: the same outputs as local workers, one
dataset written by all actors, and an actor killed mid-file costs nothing but a retry."""

import os
import signal
import time

import pytest

from drivevision.batch import run_batch
from drivevision.cli import main
from tests.batch.helpers import (
    CLIPS,
    ROOT,
    WEIGHTS,
    assert_dataset_is_the_jsonl,
    assert_same_detections,
    hidden_or_partial,
    new_plan,
    outputs_of,
    stop_at_first_progress,
)

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow
# Two actors of one thread each against one local worker of two threads: another thread count
# may sum in another order (bf16, what --precision auto picks on a CPU with bf16 hardware, and
# fp32 on some CPUs), so boxes and scores are compared within rounding; fp32 keeps that small.
FP32 = ("--precision", "fp32")


@pytest.fixture(scope="module")
def cluster():
    """A local Ray instance of 2 CPUs for this module; its workers import this checkout."""
    before = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), before]))
    kept = signal.getsignal(signal.SIGTERM)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    signal.signal(signal.SIGTERM, kept)  # Ray's own handler would outlive this module
    try:
        yield
    finally:
        ray.shutdown()
        if before is None:
            os.environ.pop("PYTHONPATH")
        else:
            os.environ["PYTHONPATH"] = before


@pytest.fixture(scope="module")
def local_outputs(tmp_path_factory, footage):
    out = tmp_path_factory.mktemp("local") / "det"
    assert main(["batch", str(footage), "--out", str(out), "--weights", WEIGHTS, "-q",
                 *FP32]) == 0
    return outputs_of(out)


def test_the_batch_on_ray_writes_what_local_workers_write(cluster, local_outputs, footage,
                                                          tmp_path, capsys):
    out = tmp_path / "det"
    code = main(["batch", str(footage), "--out", str(out), "--weights", WEIGHTS, "--ray",
                 "--workers", "2", *FP32])
    assert code == 0, capsys.readouterr().err
    assert "3 inputs: 3 done" in capsys.readouterr().out
    assert_same_detections(outputs_of(out), local_outputs)
    assert main(["batch", str(footage), "--out", str(out), "--weights", WEIGHTS, "--ray",
                 *FP32]) == 0
    assert "3 skipped" in capsys.readouterr().out  # the same manifest as a local run


def test_an_actor_killed_mid_file_has_its_file_retried_on_another(cluster, local_outputs,
                                                                   footage, tmp_path):
    from drivevision.batch.ray_workers import RayWorkers

    out = tmp_path / "det"
    plan = new_plan(footage, out, precision="fp32")
    events, killed = [], []

    def kill_first_actor(event):
        events.append((event.kind, event.job and event.job.rel))
        if event.kind == "started" and not killed:
            time.sleep(0.5)  # into its file
            killed.append(event.job.rel)
            ray.kill(event.worker)

    outcome = run_batch(plan, RayWorkers(plan.settings, out, None, 2), on_event=kill_first_actor)
    assert ("retry", killed[0]) in events
    assert outcome.summary["done"] == 3 and outcome.failed == 0
    assert_same_detections(outputs_of(out), local_outputs)
    assert hidden_or_partial(out) == []


def test_ray_actors_write_one_dataset_as_local_workers_do(cluster, footage, tmp_path, capsys):
    args = ["batch", str(footage), "--out", str(tmp_path / "det"), "--yolo",
            str(tmp_path / "ds"), "--crops", str(tmp_path / "crops"), "--weights", WEIGHTS,
            "--ray", "--workers", "2", *FP32]
    assert main(args) == 0, capsys.readouterr().err
    assert_dataset_is_the_jsonl(tmp_path, [c.removesuffix(".mp4") for c in CLIPS])
    assert main(args) == 0
    assert "3 skipped" in capsys.readouterr().out  # the actors' records read as one


def test_ray_actors_report_progress_while_working(cluster, tmp_path):
    """Frames come in while an input runs (the progress's frames/s; an input stopped
    mid-file says how far it got), as on local workers: not only with its result."""
    from drivevision.batch.ray_workers import RayWorkers

    stop_at_first_progress(tmp_path, lambda settings, out: RayWorkers(settings, out, None, 1))
