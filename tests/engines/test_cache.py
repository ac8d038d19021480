"""The engine cache between processes: one builds an entry, another waiting for it uses
what the first built instead of building it again."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from drivevision.engines import cache

FIXTURE = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"
SAMPLE = Path(__file__).parents[2] / "assets" / "sample.mp4"


def start_waiting_build(path, fields, builds: list, got: list, caplog) -> threading.Thread:
    """A thread running ``get_or_build`` for ``path`` (its builds into ``builds``, its result
    into ``got``), returned once it says it waits for another process's lock."""
    waiter = threading.Thread(target=lambda: got.append(cache.get_or_build(
        path, fields, builds.append, what="dense_a")))
    with caplog.at_level(logging.WARNING, logger="drivevision.engines.cache"):
        waiter.start()
        deadline = time.monotonic() + 10
        while "Waiting for another process" not in caplog.text:
            assert time.monotonic() < deadline, "the run did not say it waits for the lock"
            time.sleep(0.01)
    return waiter


def test_a_run_waiting_for_another_build_uses_its_result(tmp_path, caplog):
    path = cache.entry_path(tmp_path, "tiny-fpn-dense_a", {"piece": "dense_a"}, "onnx")
    fields = {"piece": "dense_a"}
    builds, got = [], []
    lock = path.with_name(path.name + ".lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another process is building it
        waiter = start_waiting_build(path, fields, builds, got, caplog)
        assert waiter.is_alive()  # it waits
        cache.store(path, fields, b"built by the other process")
    waiter.join(10)
    assert not waiter.is_alive() and got == [path]
    assert builds == [] and path.read_bytes() == b"built by the other process"
    assert "Waiting for another process to finish building dense_a" in caplog.text


def test_an_entry_cleared_while_a_run_checks_it_is_built_again(tmp_path, monkeypatch):
    """``drivevision cache --clear`` removing an entry while a run hashes it: the run builds
    it again instead of failing."""
    fields = {"piece": "dense_b"}
    path = cache.store(cache.entry_path(tmp_path, "tiny-fpn-dense_b", fields, "onnx"), fields,
                       b"old")
    real_hash = cache.file_sha256
    cleared = []

    def hash_while_cleared(p):
        if not cleared:
            cleared.append(p)
            p.unlink()  # removed mid-way, as by the clear
            raise FileNotFoundError(p)
        return real_hash(p)

    monkeypatch.setattr(cache, "file_sha256", hash_while_cleared)
    got = cache.get_or_build(path, fields, lambda target: target.write_bytes(b"new"),
                             what="dense_b")
    assert cleared and got == path and path.read_bytes() == b"new"


def test_a_build_waiting_on_a_lock_that_a_clear_removes_waits_for_the_new_one(tmp_path,
                                                                            caplog):
    """``drivevision cache --clear`` removes an entry's lock file while holding it; a run that
    was waiting on the removed file must not build beside one that locked the new file."""
    fields = {"piece": "dense_a"}
    path = cache.entry_path(tmp_path, "tiny-fpn-dense_a", fields, "onnx")
    lock = path.with_name(path.name + ".lock")
    builds, got = [], []
    with contextlib.ExitStack() as third:
        with open(lock, "a") as cleared:
            fcntl.flock(cleared, fcntl.LOCK_EX)  # the clear holds the lock
            waiter = start_waiting_build(path, fields, builds, got, caplog)  # on the old file
            lock.unlink()  # the clear removes the lock file, then lets go
            newer = third.enter_context(open(lock, "a"))  # a third run locks the new file
            fcntl.flock(newer, fcntl.LOCK_EX)
        waiter.join(1)
        assert waiter.is_alive() and builds == []  # it waits for the third run
        cache.store(path, fields, b"built by the third run")
    waiter.join(10)
    assert not waiter.is_alive() and got == [path] and builds == []


def _files(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("failure", [RuntimeError("export failed"), KeyboardInterrupt()])
def test_a_failed_or_interrupted_build_leaves_no_lock_or_partial_file(tmp_path, failure):
    fields = {"piece": "dense_a"}
    path = cache.entry_path(tmp_path, "tiny-fpn-dense_a", fields, "onnx")

    def build(target):
        target.write_bytes(b"half an export")
        raise failure

    with pytest.raises(type(failure)):
        cache.get_or_build(path, fields, build, what="dense_a")
    assert _files(tmp_path) == []
    # and the next run builds it without waiting for anyone
    assert cache.get_or_build(path, fields, lambda t: t.write_bytes(b"whole"),
                              what="dense_a") == path
    assert _files(tmp_path) == sorted([path.name, path.with_suffix(".json").name])


def test_a_lock_a_killed_build_left_neither_blocks_nor_stays(tmp_path, caplog):
    """A process killed while building leaves its lock file, which nobody holds any more:
    the next run takes it at once (no waiting), builds, and removes it."""
    fields = {"piece": "dense_a"}
    path = cache.entry_path(tmp_path, "tiny-fpn-dense_a", fields, "onnx")
    path.with_name(path.name + ".lock").touch()  # what the killed process left
    staging = tmp_path / f".{path.name}.4242.tmp.export"  # its ONNX export's staging folder
    staging.mkdir()
    (staging / "dense_a.onnx").write_bytes(b"x" * 1000)
    with caplog.at_level(logging.WARNING, logger="drivevision.engines.cache"):
        cache.get_or_build(path, fields, lambda t: t.write_bytes(b"whole"), what="dense_a")
    assert "Waiting" not in caplog.text
    assert "Removed 1 unfinished file of an interrupted build" in caplog.text
    assert _files(tmp_path) == sorted([path.name, path.with_suffix(".json").name])


@pytest.mark.slow
def test_ctrl_c_during_an_export_leaves_nothing_in_the_cache(tmp_path):
    """Ctrl-C while a command starts quits at once (no ``finally`` runs): the export's lock
    file and half-written staging folder go too."""
    script = f"""
import os, signal, sys, time
from pathlib import Path
from drivevision.engines import export

def interrupted(loaded, folder, spec, pieces):
    Path(folder).mkdir(parents=True)
    (Path(folder) / "dense_a.onnx").write_bytes(b"half an export")
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)

export.export_onnx = interrupted
from drivevision.cli import main
sys.exit(main(["detect", {str(SAMPLE)!r}, "--jsonl", {str(tmp_path / "d.jsonl")!r},
               "--weights", {str(FIXTURE)!r}, "--engine", "onnx"]))
"""
    root = tmp_path / "cache"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "DRIVEVISION_CACHE": str(root)}, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert "Exporting" in proc.stderr and "interrupted" in proc.stderr
    assert [p.name for p in root.rglob("*")] == ["onnx"]


def test_the_cache_variable_takes_a_home_relative_or_relative_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DRIVEVISION_CACHE", "~/engines")  # quoted in a unit file: unexpanded
    assert cache.cache_root() == tmp_path / "home" / "engines"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DRIVEVISION_CACHE", "engines")
    assert cache.cache_root() == tmp_path / "engines"  # messages name where it is


def test_a_cache_that_cannot_be_written_is_one_line_naming_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path / "shared"))
    (tmp_path / "shared").mkdir()
    monkeypatch.setattr(cache.os, "access", lambda path, mode: False)  # as a read-only mount
    path = cache.entry_path(cache.cache_root() / "onnx", "tiny-fpn-dense_a", {}, "onnx")
    with pytest.raises(PermissionError, match="^Expected DRIVEVISION_CACHE to be a folder this "
                       f"user can write, but {path.parent} is read-only$"):
        cache.get_or_build(path, {}, lambda t: t.write_bytes(b"x"), what="dense_a")


@pytest.mark.slow
def test_ctrl_c_during_an_int8_calibration_leaves_nothing_behind(tmp_path):
    """The calibration's intermediate files live beside its entry, not in the system's
    temporary folder, so a Ctrl-C that quits at once takes them too."""
    script = f"""
import os, signal, sys, time
from pathlib import Path
from drivevision.engines import int8

fp32 = Path({str(tmp_path / "fp32.onnx")!r})
fp32.write_bytes(b"an exported piece")
int8.cached_onnx = lambda loaded, precision, **kwargs: {{"dense_a": fp32, "dense_b": fp32}}
int8._prepared = lambda src, folder: src

def interrupted(src, dst, table, scheme, reader=None):
    Path(dst).write_bytes(b"half a quantized piece")
    Path(table).write_bytes(b"half a table")
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)

int8._quantize = interrupted
from drivevision.cli import main
sys.exit(main(["detect", {str(SAMPLE)!r}, "--jsonl", {str(tmp_path / "d.jsonl")!r},
               "--weights", {str(FIXTURE)!r}, "--engine", "onnx", "--precision", "int8",
               "--calib", {str(SAMPLE)!r}, "--calib-frames", "2"]))
"""
    root, temp = tmp_path / "cache", tmp_path / "tmp"
    temp.mkdir()
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={**os.environ, "DRIVEVISION_CACHE": str(root),
                               "TMPDIR": str(temp)}, timeout=120)
    assert proc.returncode == 130, proc.stderr
    assert "Calibrating tiny-fpn dense_a" in proc.stderr
    assert [p.name for p in root.rglob("*")] == ["int8"]
    assert [p.name for p in temp.iterdir() if "drivevision" in p.name] == []
