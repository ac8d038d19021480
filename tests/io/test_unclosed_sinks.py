"""A sink never closed (no ``with``, no ``close()``), dropped or still open at exit: what it
was given is finished where the user sees it, as a stopped run's output, with a
ResourceWarning naming it; a file of its name is left as it was."""

from __future__ import annotations

import errno
import gc
import json
import os
import subprocess
import sys
import threading
import warnings
import weakref
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from standins import count_frames

from drivevision.detections import Detections
from drivevision.io import video_sink
from drivevision.io.dataset_sinks import YoloSink
from drivevision.io.frames import Frame
from drivevision.io.image_sinks import ImageFolderSink, ImageSink
from drivevision.io.live_sinks import LiveVideoSink
from drivevision.io.mot import MotSink
from drivevision.io.sinks import CsvSink, JsonlSink
from drivevision.io.video_sink import VideoSink
from drivevision.labels import COCO_NAMES

ROOT = Path(__file__).parents[2]
BOX = Detections([[2.0, 3.0, 20.0, 30.0]], [0.9], [3], track_ids=[7])  # a car, tracked


def frame(i: int) -> Frame:
    image = np.random.default_rng(i).integers(0, 256, (48, 64, 3), np.uint8)
    return Frame(i, i * 100.0, image, captured_at=i * 0.1)


def lines(path: Path) -> int:
    return len(path.read_text().splitlines())


# name, the sink for a path, frames to write, what a reader finds of them in the output
KINDS = {
    "mp4": ("out.mp4", lambda p: VideoSink(p, 10.0), 5, count_frames),
    "mkv": ("out.mkv", lambda p: VideoSink(p, 10.0), 5, count_frames),
    "avi": ("out.avi", lambda p: VideoSink(p, 10.0), 5, count_frames),
    "live mp4": ("live.mp4", lambda p: LiveVideoSink(p, 10.0), 5, count_frames),
    "jsonl": ("d.jsonl", lambda p: JsonlSink(p, COCO_NAMES), 5, lines),
    "csv": ("d.csv", lambda p: CsvSink(p, COCO_NAMES), 5, lambda p: lines(p) - 1),  # header
    "mot": ("t.txt", MotSink, 5, lines),
    "image": ("one.png", ImageSink, 1, lambda p: int(cv2.imread(str(p)) is not None)),
    "image folder": ("frames", ImageFolderSink, 5, lambda p: len(list(p.glob("*.png")))),
    "yolo": ("ds", lambda p: YoloSink(p, COCO_NAMES, None), 5,
             lambda p: len(list((p / "labels").glob("*.txt")))),
}


@contextmanager
def no_cycle_collector():
    """Only reference counts free objects here: a sink its finalizer kept alive (a
    reference cycle) would not be finished when dropped."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def unclosed_warnings(caught) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)
            and str(w.message).startswith("unclosed ")]


def hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", KINDS)
def test_a_dropped_sink_finishes_what_it_was_given_under_its_name_and_warns(tmp_path, kind):
    name, make, n, found = KINDS[kind]
    out = tmp_path / name
    with no_cycle_collector(), warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink = make(out)
        for f in map(frame, range(n)):
            sink.write(f, BOX, f.image)
        alive = weakref.ref(sink)
        del sink
        assert alive() is None
        assert found(out) == n  # finished at once, not at some later collection
    assert hidden(tmp_path) == []  # no part file, no lock file
    [message] = unclosed_warnings(caught)
    assert f" {out}: finished as {out} (" in message
    assert message.endswith("call close() or use 'with' to finish an output")


@pytest.mark.parametrize("name, make, found", [
    ("out.mp4", lambda p: VideoSink(p, 10.0), count_frames),
    ("d.jsonl", lambda p: JsonlSink(p, COCO_NAMES), lines),
])
def test_a_dropped_sink_leaves_a_file_of_its_name_as_it_was(tmp_path, name, make, found):
    out = tmp_path / name
    earlier = out.with_name(out.stem + ".partial" + out.suffix)
    out.write_bytes(b"the user's own")
    earlier.write_bytes(b"an earlier run's")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink = make(out)
        for f in map(frame, range(4)):
            sink.write(f, BOX, f.image)
        del sink
        gc.collect()
    kept = out.with_name(out.stem + ".partial2" + out.suffix)
    assert out.read_bytes() == b"the user's own"
    assert earlier.read_bytes() == b"an earlier run's"
    assert found(kept) == 4
    [message] = unclosed_warnings(caught)
    assert f"{out} exists and was left as it was" in message and str(kept) in message


def test_a_dropped_sink_that_cannot_be_finished_warns_and_keeps_it_as_partial(tmp_path,
                                                                              monkeypatch):
    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(video_sink, "_defragment", full)
    unraised = []
    monkeypatch.setattr(sys, "unraisablehook", unraised.append)
    out = tmp_path / "out.mp4"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink = VideoSink(out, 10.0)
        for f in map(frame, range(3)):
            sink.write(f, BOX, f.image)
        del sink
        gc.collect()
    assert unraised == []  # nothing raised out of the finalizer
    [message] = unclosed_warnings(caught)
    assert "finishing it failed" in message and "out.partial.mp4" in message
    assert count_frames(tmp_path / "out.partial.mp4") == 3 and not out.exists()
    assert hidden(tmp_path) == []


def test_a_sink_closed_on_another_thread_warns_nothing_but_a_dropped_one_does(tmp_path):
    closed, dropped = tmp_path / "closed.jsonl", tmp_path / "dropped.jsonl"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        sink = JsonlSink(closed, COCO_NAMES)

        def write_and_close(made_here):
            for i in range(3):
                made_here.write(frame(i), BOX, None)
            made_here.close()

        writer = threading.Thread(target=write_and_close, args=(sink,))
        writer.start()
        writer.join()
        other = JsonlSink(dropped, COCO_NAMES)
        other.write(frame(0), BOX, None)
        del sink, other
        gc.collect()
    assert [json.loads(x)["frame"] for x in closed.read_text().splitlines()] == [0, 1, 2]
    assert lines(dropped) == 1
    assert [str(dropped) in m for m in unclosed_warnings(caught)] == [True]


SCRIPT = """
import sys
from pathlib import Path
import numpy as np
from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.io.sinks import CsvSink, JsonlSink
from drivevision.io.video_sink import VideoSink

folder = Path(sys.argv[1])
video = VideoSink(folder / "out.mp4", 10.0)
jsonl = JsonlSink(folder / "d.jsonl", ["background", "car"])
with CsvSink(folder / "d.csv", ["background", "car"]) as csv:
    for i in range(6):
        image = np.random.default_rng(i).integers(0, 256, (48, 64, 3), np.uint8)
        f = Frame(i, i * 100.0, image, captured_at=i * 0.1)
        for sink in (video, jsonl, csv):
            sink.write(f, Detections.empty(), image)
if sys.argv[2] == "raise":
    raise RuntimeError("the script failed after its frames")
"""


@pytest.mark.parametrize("ending, code", [("end", 0), ("raise", 1)])
def test_a_program_that_exits_with_sinks_open_leaves_their_files(tmp_path, ending, code):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-W", "always::ResourceWarning", "-c", SCRIPT,
                           str(tmp_path), ending], capture_output=True, text=True,
                          timeout=120, env=env)
    assert done.returncode == code, done.stderr
    assert count_frames(tmp_path / "out.mp4") == 6
    assert [json.loads(x)["frame"] for x in (tmp_path / "d.jsonl").read_text().splitlines()] \
        == list(range(6))
    assert hidden(tmp_path) == []
    assert f"unclosed VideoSink {tmp_path / 'out.mp4'}" in done.stderr
    assert f"unclosed JsonlSink {tmp_path / 'd.jsonl'}" in done.stderr
    assert "CsvSink" not in done.stderr  # closed by its with: nothing to say


CYCLE = """
import gc, sys
from pathlib import Path
import numpy as np
from drivevision.detections import Detections
from drivevision.io import sinks
from drivevision.io.claims import Claim
from drivevision.io.frames import Frame

folder = Path(sys.argv[1])
for name, lock in (("fsync", sinks._SYNCER._mutex), ("closing", sinks._CLOSING),
                   ("claims", Claim._mutex)):
    sink = sinks.JsonlSink(folder / f"{name}.jsonl", ["background", "car"])
    sink.write(Frame(0, 0.0, np.zeros((4, 4, 3), np.uint8), 0.0), Detections.empty(), None)
    trash = [sink]
    trash.append(trash)  # only the cycle collector frees the sink now
    del sink, trash
    with lock:  # as the fsync thread holds it when a collection starts there
        gc.collect()
print("collected")
"""


def test_a_sink_in_a_reference_cycle_is_finished_by_a_collection_under_any_lock_it_takes(
        tmp_path):
    """A collection may start in any thread at any allocation, one holding a lock that
    closing a sink takes too (the fsync thread's): the finalizer may not wait for it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    try:
        done = subprocess.run([sys.executable, "-c", CYCLE, str(tmp_path)],
                              capture_output=True, text=True, timeout=60, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("the finalizer of a collected sink waited for a lock its thread held")
    assert done.stdout == "collected\n", done.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["claims.jsonl", "closing.jsonl",
                                                          "fsync.jsonl"]


def test_a_dataset_sink_that_fails_as_it_starts_is_closed_and_never_said_unclosed(tmp_path):
    """The caller of a sink that raised while starting has no sink to close: it closes
    itself, so neither a warning nor the run's lock file is left."""
    ds = tmp_path / "ds"
    (ds / "data.yaml").mkdir(parents=True)  # in the way of the dataset's own file
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(OSError, match="data.yaml"):
            YoloSink(ds, COCO_NAMES, None)
        gc.collect()
    assert unclosed_warnings(caught) == []
    assert hidden(tmp_path) == []
