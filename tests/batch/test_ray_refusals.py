"""``drivevision batch --ray`` refused in one line, before any work: Ray not installed, an
address nothing answers at, ``auto`` with no cluster running; and Ray left alone when there
is nothing to run."""

import pytest

from drivevision.cli import main
from drivevision.cli.exits import EXIT_USAGE
from tests.batch.helpers import WEIGHTS


def batch(capsys, *args):
    code = main(["batch", *map(str, args), "--weights", WEIGHTS])
    out, err = capsys.readouterr()
    return code, out, err


def test_ray_without_ray_installed_says_how_to_install_it(tmp_path, capsys, footage,
                                                          monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "ray" else find_spec(name, *a))
    code, _, err = batch(capsys, footage, "--out", tmp_path / "det", "--ray")
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [
        "drivevision: error: --ray needs Ray, which is not installed: "
        "pip install 'drivevision[ray]'"]
    assert not (tmp_path / "det").exists()


@pytest.mark.timeout(60)
def test_a_ray_address_nothing_answers_at_is_one_line_at_once(tmp_path, capsys, footage):
    import socket
    import time

    pytest.importorskip("ray")
    with socket.socket() as closed:  # bound, not listening: the connection is refused
        closed.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{closed.getsockname()[1]}"
        start = time.monotonic()
        code, _, err = batch(capsys, footage, "--out", tmp_path / "det", "--ray", address)
    assert code != 0 and time.monotonic() - start < 20.0  # Ray alone retries for minutes
    [line] = err.strip().splitlines()
    assert line.startswith(f"drivevision: error: Cannot reach a Ray cluster at {address} (")
    assert not (tmp_path / "det").exists()


@pytest.mark.timeout(60)
def test_ray_auto_with_no_cluster_running_says_how_to_start_one(tmp_path, capsys, footage,
                                                                monkeypatch):
    pytest.importorskip("ray")
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    monkeypatch.setenv("RAY_TMPDIR", str(tmp_path / "ray"))  # no cluster recorded there
    code, _, err = batch(capsys, footage, "--out", tmp_path / "det", "--ray", "auto")
    assert code == 2
    assert err.strip().splitlines()[-1] == (
        "drivevision: error: --ray auto found no running Ray cluster: start one with `ray "
        "start --head` (or set RAY_ADDRESS), give its address, or use --ray alone for a Ray "
        "instance here")
    assert not (tmp_path / "det").exists()  # was: made, a report of every input pending


def test_a_rerun_with_nothing_left_to_run_starts_no_ray(tmp_path, monkeypatch):
    from drivevision.batch import BatchSettings
    from drivevision.batch.ray_workers import RayWorkers

    ray = pytest.importorskip("ray")
    started = []  # was: a local Ray instance (some 10 s) and an actor loading the model
    monkeypatch.setattr(ray, "init", lambda *args, **kwargs: started.append("init"))
    monkeypatch.setattr(ray, "is_initialized", lambda: bool(started))
    workers = RayWorkers(BatchSettings(), tmp_path / "det", None, None)
    assert list(workers.run([], lambda: False)) == []
    assert started == []


def test_a_cluster_named_but_not_there_leaves_no_output_folder(tmp_path, capsys, footage,
                                                               monkeypatch):
    ray = pytest.importorskip("ray")

    def no_cluster(*args, **kwargs):  # what ray.init says where no cluster runs
        raise ConnectionError("Could not find any running Ray instance. Please specify the "
                              "one to connect to by setting `--address` flag")

    monkeypatch.setattr(ray, "init", no_cluster)
    code, stdout, err = batch(capsys, footage, "--out", tmp_path / "det", "--ray", "auto")
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [  # was: "N inputs: N to run on Ray" before it
        "drivevision: error: --ray auto found no running Ray cluster: start one with `ray "
        "start --head` (or set RAY_ADDRESS), give its address, or use --ray alone for a Ray "
        "instance here"]
    assert not (tmp_path / "det").exists()  # was: made, a report of every input pending
