"""The crash-safety pieces on their own, in-process and fast: fsync once a second, segment
boundaries by capture time, temporary names that fit the file system, a read-only cache."""

from __future__ import annotations

import errno
import json
import os
import time
from pathlib import Path

import numpy as np
import pytest

from drivevision.detections import Detections
from drivevision.engines import cache
from drivevision.io import sinks
from drivevision.io.claims import NAME_MAX, part_name
from drivevision.io.frames import Frame
from drivevision.io.live_sinks import GapJsonlSink, Segmented
from drivevision.io.streams import Gap


def frame(i: int, t: float) -> Frame:
    return Frame(i, t * 1000.0, np.zeros((16, 16, 3), np.uint8), captured_at=t)


def test_jsonl_lines_are_on_disk_and_fsynced_within_a_second(tmp_path, monkeypatch):
    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd)))
    with sinks.JsonlSink(tmp_path / "d.jsonl", ["car"]) as sink:
        sink.write(frame(0, 0.0), Detections.empty(), None)
        assert sink.tmp.read_text().startswith('{"frame": 0')  # flushed at once
        deadline = time.monotonic() + 1.5
        while sink._hold not in synced and time.monotonic() < deadline:
            time.sleep(0.05)
        assert sink._hold in synced


def test_segments_split_by_capture_time_with_each_gap_in_the_piece_it_ends_in(tmp_path):
    gaps: list = []
    make = lambda path: GapJsonlSink(path, ["car"], gaps)  # noqa: E731
    make.needs_annotated = False
    times = [0.0, 0.4, 0.8, 1.2, 1.6, 3.3, 3.7]  # an outage from 1.6 s to 3.3 s
    with Segmented(tmp_path / "front.jsonl", make, 1.0) as segmented:
        for i, t in enumerate(times):
            if i == 5:
                gaps.append(Gap(last_index=4, start_ms=1600.0, next_index=5, end_ms=3300.0,
                                reason="lost", attempts=1))
            segmented.write(frame(i, t), Detections.empty(), None)
    pieces = {p.name: [json.loads(x) for x in p.read_text().splitlines()]
              for p in sorted(tmp_path.glob("front_*.jsonl"))}
    assert list(pieces) == ["front_0001.jsonl", "front_0002.jsonl", "front_0004.jsonl"]
    assert [x["frame"] for x in pieces["front_0001.jsonl"]] == [0, 1, 2]
    assert [x["frame"] for x in pieces["front_0002.jsonl"]] == [3, 4]
    assert [next(iter(x)) for x in pieces["front_0004.jsonl"]] == ["gap", "frame", "frame"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_part_name_of_the_longest_file_name_still_fits(tmp_path):
    target = tmp_path / ("é" * 124 + "x.jsonl")  # 255 bytes in UTF-8
    assert len(os.fsencode(target.name)) == NAME_MAX
    part = part_name(target)
    assert len(os.fsencode(part.name)) <= NAME_MAX and part.suffix == ".jsonl"
    with sinks.JsonlSink(target, ["car"]) as sink:
        sink.write(frame(0, 0.0), Detections.empty(), None)
    assert len(target.read_text().splitlines()) == 1


def test_valid_engine_cache_on_a_read_only_file_system_is_used_as_it_is(tmp_path,
                                                                        monkeypatch):
    fields = {"weights": "w", "shape": [1, 3, 64, 64]}
    path = cache.entry_path(tmp_path, "dense_a", fields, "onnx")
    cache.store(path, fields, b"engine bytes")

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(Path, "mkdir", read_only)
    monkeypatch.setattr(cache, "_locked", read_only)
    built = cache.get_or_build(path, fields, lambda tmp: pytest.fail("rebuilt"), what="A")
    assert built == path and path.read_bytes() == b"engine bytes"


def test_a_build_removes_what_a_killed_build_of_its_entry_left(tmp_path, caplog):
    """A build killed mid-way leaves its temporary file (and maybe its sidecar's); the next
    build of that entry, holding the lock, removes them. Other entries' files stay."""
    fields = {"weights": "w", "shape": [1, 3, 64, 64]}
    path = cache.entry_path(tmp_path, "dense_a", fields, "onnx")
    killed = [path.with_name(f".{path.name}.99999.tmp"),
              path.with_name(f".{path.with_suffix('.json').name}.99999.tmp")]
    for f in killed:
        f.write_bytes(b"x" * 1000)
    other = tmp_path / ".dense_b-abc.onnx.99999.tmp"
    other.write_bytes(b"y")
    with caplog.at_level("WARNING", logger="drivevision.engines.cache"):
        built = cache.get_or_build(path, fields, lambda tmp: tmp.write_bytes(b"new"), what="A")
    assert built.read_bytes() == b"new" and not any(f.exists() for f in killed)
    assert other.exists()
    assert "Removed 2 unfinished files of an interrupted build" in caplog.text
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")) == \
        [other.name]


class _FillingDisk:
    """A text file on a disk that is full once the file holds ``room`` characters: what fits
    is written, then ``OSError(code)``, as a file system does."""

    def __init__(self, path: Path, room: int, code: int):
        self._file, self.room, self.code = path.open("w", encoding="utf-8"), room, code

    def write(self, text: str) -> int:
        fits = text[:max(0, self.room)]
        self._file.write(fits)
        self.room -= len(fits)
        if len(fits) < len(text):
            self._file.flush()
            raise OSError(self.code, os.strerror(self.code))
        return len(text)

    def __getattr__(self, name):  # flush, close, closed
        return getattr(self._file, name)


@pytest.mark.parametrize("code, why", [(errno.ENOSPC, "the disk is full (No space left on "
                                                      "device)"),
                                       (errno.EDQUOT, "the disk quota is used up")])
def test_a_full_disk_names_the_output_and_keeps_whole_lines_beside_it(tmp_path, monkeypatch,
                                                                     code, why):
    """The error names the user's file (never the hidden part file) and why, in one line,
    and, once the output is closed, the .partial file that keeps every whole line."""
    monkeypatch.setattr(sinks, "open_text", lambda tmp, path: _FillingDisk(tmp, 300, code))
    out = tmp_path / "out.jsonl"
    sink = sinks.JsonlSink(out, ["car"])
    with pytest.raises(sinks.WriteError) as failed:
        for i in range(100):
            sink.write(frame(i, i / 10), Detections.empty(), None)
    sink.close(complete=False)
    monkeypatch.undo()
    message = str(failed.value)
    assert message.startswith(f"Cannot write {out}: {why}"), message
    assert message.endswith(f"; what was written is kept in {tmp_path / 'out.partial.jsonl'}")
    assert ".part." not in message and "\n" not in message
    lines = (tmp_path / "out.partial.jsonl").read_text().splitlines()
    assert [json.loads(x)["frame"] for x in lines] == list(range(len(lines))) and lines
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.partial.jsonl"]


def test_a_folder_that_refuses_the_finished_file_names_it_and_the_part_file_kept(
        tmp_path, monkeypatch):
    """Moving the finished output into place fails (the folder turned read-only): the error
    names the output and says where its only copy is, the hidden part file."""
    out = tmp_path / "out.csv"
    sink = sinks.CsvSink(out, ["car"])
    sink.write(frame(0, 0.0), Detections.empty(), None)

    def refused(src, dst):
        raise PermissionError(errno.EACCES, "Permission denied", str(src), None, str(dst))

    monkeypatch.setattr(os, "replace", refused)
    with pytest.raises(sinks.WriteError) as failed:
        sink.close()
    monkeypatch.undo()
    assert str(failed.value) == (f"Cannot write {out}: it is not writable (Permission "
                                 f"denied); what was written is kept in {sink.tmp}")
    assert sink.tmp.read_text().startswith("frame,")
