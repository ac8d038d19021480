"""Two batches into one output folder at once: the second is refused before any work,
naming the folder and the first's pid; the first completes each input once, and a rerun
finds them all done."""

import subprocess
import sys
import time

import pytest

from drivevision.cli import main
from drivevision.cli.exits import EXIT_USAGE
from tests.batch.helpers import WEIGHTS, make_footage, outputs_of


@pytest.mark.slow
def test_a_second_batch_into_the_same_out_is_refused_while_the_first_runs(tmp_path, capsys):
    footage = make_footage(tmp_path / "footage", frames=15)
    out = tmp_path / "det"
    first = subprocess.Popen([sys.executable, "-m", "drivevision", "batch", str(footage),
                              "--out", str(out), "--weights", WEIGHTS, "-q"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (out / ".batch.json.lock").exists() and first.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the first batch ended before the second started"
        code = main(["batch", str(footage), "--out", str(out), "--weights", WEIGHTS])
        _, err = capsys.readouterr()
        assert first.poll() is None, "the first batch ended before the second was refused"
    finally:
        _, first_err = first.communicate(timeout=300)
    assert code == EXIT_USAGE  # before: named batch.json, a file the user never gave
    assert err == (f"drivevision: error: --out {out} is being written by another run "
                   f"(pid {first.pid}); wait for it to end or choose another name\n")
    assert first.returncode == 0, first_err
    done = outputs_of(out)
    assert len(done) == 3
    code = main(["batch", str(footage), "--out", str(out), "--weights", WEIGHTS])
    stdout, _ = capsys.readouterr()
    assert code == 0 and "3 inputs: 3 skipped" in stdout
    assert outputs_of(out) == done
