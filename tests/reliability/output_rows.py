"""What the tables of output faults share: a row's columns, the checks every row gets,
and what several rows use.

A row names the case, what the test does (``action``: a function of the ``Ctx`` that sets up
the fault and runs ``drivevision``), the exit code and a message the user must see, which
outputs must exist afterwards, which videos must play (PyAV, with at least N frames) and
how many lines each JSONL must hold. The rows are in test_output_destinations.py,
test_output_leftovers.py and test_output_interruptions.py: add a row to the table of its
kind to add a case; docs/reliability.md lists the same rows.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import faults
import pytest
from faults import Ctx


def parts(folder: Path, suffix: str) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".part." in p.name and p.suffix == suffix)


def jsonl_lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def playable_frames(path: Path) -> int:
    """Frames PyAV decodes from ``path`` (H.264 yuv420p asserted: the browser format)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        assert (stream.codec_context.name, stream.codec_context.pix_fmt) == ("h264", "yuv420p")
        return sum(1 for _ in container.decode(stream))


# --yolo and --crops need boxes: the demo model finds the generated scenes' cars
DEMO = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")
DATASET = ("--conf", "0.3")


def check_dataset(ds: Path, crops: Path) -> None:
    """Whatever became of the run: each image of the YOLO folder has its label file, every
    label and crop is whole, and each folder's record lists every file in it (so the next
    run may replace them)."""
    from drivevision.io.dataset_sinks import RECORD, earlier_files

    for image in (ds / "images").iterdir():
        if image.name.startswith("."):
            continue  # the one being written when the run was killed
        assert cv2.imread(str(image)) is not None, image
        label = (ds / "labels" / image.name).with_suffix(".txt")
        for line in label.read_text().splitlines():
            values = line.split()
            assert len(values) == 5 and all(0 <= float(v) <= 1 for v in values[1:]), line
    for crop in crops.rglob("[!.]*.jpg"):
        assert cv2.imread(str(crop)) is not None, crop
    for folder, top in ((ds, ("data.yaml", "classes.txt")), (crops, ())):
        assert (folder / RECORD).is_file()
        assert earlier_files(folder, top)[1] == [], folder  # none unlisted


USERS_OWN = (".thesis.part.txt", ".video.part.final.mp4", ".notes.part.7b.md")
USERS_FOLDERS = (".photos.part.3", ".export-2026")  # hidden folders that only look like ours
# lock files of other programs: a live pid, other text
OTHERS_LOCKS = {".tool.lock": f"{os.getpid()}\n", ".notes.lock": "do not touch\n"}


@dataclass
class Case(faults.Case):
    plays: dict[str, int] = field(default_factory=dict)  # video -> at least N frames
    lines: dict[str, int] = field(default_factory=dict)  # JSONL -> at least N lines
    exact_lines: bool = True
    stdout_lines: int | None = None
    slow: bool = True  # every row runs drivevision as a process: seconds each


def params(cases: list[Case]) -> list:
    """The rows as test parameters, named by their case, the slow ones marked."""
    return [pytest.param(c, id=c.name, marks=[pytest.mark.slow] * c.slow) for c in cases]


def check(case: Case, ctx: Ctx) -> None:
    """Run ``case`` and check what every row states."""
    code = case.action(ctx)
    assert code == case.code, ctx.stderr[-2000:]
    if case.message:
        assert re.search(case.message, ctx.stderr), ctx.stderr[-2000:]
    for name in case.exist:
        assert (ctx.tmp / name).exists(), name
    for name in case.absent:
        assert not (ctx.tmp / name).exists(), name
    for name, frames in case.plays.items():
        assert playable_frames(ctx.tmp / name) >= frames
    for name, count in case.lines.items():
        lines = jsonl_lines(ctx.tmp / name)  # every line whole
        assert len(lines) == count if case.exact_lines else len(lines) >= count
        frames = [x["frame"] for x in lines if "frame" in x]
        assert frames == sorted(set(frames))  # in order, none twice (live runs drop some)
    if code == 0 and case.name not in ("part files of a killed run",
                                       "lock file of a killed --yolo run"):
        others = (*USERS_OWN, *USERS_FOLDERS, *OTHERS_LOCKS)
        assert not [p for p in ctx.tmp.rglob(".*") if (".part." in p.name or
                    p.name.endswith(".lock")) and p.name not in others]
    if case.stdout_lines is not None:  # JSONL alone: no summary or progress mixed in
        assert len([json.loads(line) for line in ctx.stdout.splitlines()]) == case.stdout_lines
