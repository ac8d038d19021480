"""The engine cache between processes: one builds an entry, another waiting for it uses
what the first built instead of building it again."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import threading
import time

from drivevision.engines import cache


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
