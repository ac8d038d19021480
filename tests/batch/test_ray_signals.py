"""``drivevision batch --ray`` starting its own local Ray instance: Ray's driver puts in a
SIGTERM handler of its own, and the batch must keep its stop request and leave the process's
handlers as they were (its own module: the other Ray tests share an instance started first)."""

import os
import signal

import pytest

from tests.batch.helpers import ROOT, new_plan

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


def test_sigterm_during_a_ray_batch_is_the_batch_s_stop_request(footage, tmp_path,
                                                                monkeypatch, caplog):
    """While the batch runs, SIGTERM belongs to the batch (stop, write the reports), not to
    the handler ``ray.init`` installs; afterwards the process's handlers are as before."""
    from drivevision.batch import run_batch
    from drivevision.batch.ray_workers import RayWorkers
    from drivevision.pipeline import signals

    assert not ray.is_initialized()
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])))  # the workers' drivevision
    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    out = tmp_path / "det"
    plan = new_plan(footage, out)
    during = []

    def look(event):
        if event.kind == "ready":
            during.append(signal.getsignal(signal.SIGTERM))

    caplog.set_level("INFO")
    previous = signals.install(lambda s: None)  # as the drivevision program does first
    try:
        outcome = run_batch(plan, RayWorkers(plan.settings, out, None, 1), on_event=look)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert outcome.summary["done"] == 3 and during
    assert all(getattr(h, "__module__", "") == "drivevision.pipeline.signals" for h in during)
    assert not ray.is_initialized()
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before
    said = "\n".join(caplog.messages)  # Ray's notices are kept off the batch's stderr
    assert "Started a local Ray instance" not in said
    assert "Token authentication is enabled" not in said
