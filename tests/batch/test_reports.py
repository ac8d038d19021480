"""The batch's own files (batch.json, batch.csv, the manifest rewritten) are written under
part names like its outputs: held while written, named and removed once a killed run left
them, never one a live run holds; a write that fails leaves none."""

import signal
import subprocess
import sys
import time

import pytest

from drivevision.batch import BatchSettings, plan_batch
from drivevision.batch.manifest import write_reports
from drivevision.config import DetectorConfig
from drivevision.io.leftovers import leftovers
from tests.batch.helpers import WEIGHTS

# a batch writing its reports, stopped in the fsync of batch.json until it is killed
WRITER = """
import os, sys, time
from pathlib import Path
from drivevision.batch.manifest import write_reports
os.fsync = lambda fd: time.sleep(60)
write_reports(Path(sys.argv[1]), [], {"inputs": 0})
"""


def _hidden(out):
    return sorted(p.name for p in out.iterdir() if p.name.startswith("."))


def test_a_report_being_written_is_held_and_once_killed_named_and_removed_by_the_next_run(
        tmp_path):
    out = tmp_path / "det"
    out.mkdir()
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(out)])
    try:
        deadline = time.monotonic() + 60
        while not _hidden(out) and time.monotonic() < deadline:
            time.sleep(0.05)
        [part] = _hidden(out)
        assert leftovers([out]) == []  # a live run's: another run's --clean leaves it alone
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    assert leftovers([out]) == [out / part]  # before: .batch.json.PID.tmp, named by nothing
    assert part == f".batch.part.{writer.pid}.json"  # a part file's name, as an output's
    plan_batch([], out, BatchSettings(DetectorConfig(weights=WEIGHTS)))
    assert _hidden(out) == []  # before: kept forever


@pytest.mark.parametrize("report", ["batch.json", "batch.csv"])
def test_a_report_that_cannot_be_moved_into_place_leaves_no_part_file(tmp_path, report):
    (tmp_path / report).mkdir()  # a folder in its place: the write fails
    with pytest.raises(OSError):
        write_reports(tmp_path, [], {"inputs": 0})
    assert _hidden(tmp_path) == []
