"""Output faults, one row per case (columns: output_rows.py): where the outputs go, a
finished run, another run on the same name, JSONL into stdout, a pipe closed early, a
FIFO, a symlink, /dev/null and /dev/full, a name of 255 bytes, live segments."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import av
import pytest
from faults import Ctx
from mjpeg_server import start_process
from output_rows import (
    DATASET,
    DEMO,
    Case,
    check,
    check_dataset,
    jsonl_lines,
    params,
    playable_frames,
)

from drivevision.synthetic import write_clip


def finished_run(ctx: Ctx) -> int:
    return ctx.run("detect", ctx.clip, "-o", str(ctx.tmp / "out.mp4"),
                   "--jsonl", str(ctx.tmp / "out.jsonl"))


def finished_run_with_dataset(ctx: Ctx) -> int:
    ctx.weights = DEMO
    code = ctx.run("detect", ctx.clip, "--jsonl", str(ctx.tmp / "out.jsonl"), "--yolo",
                   str(ctx.tmp / "ds"), "--crops", str(ctx.tmp / "crops"), *DATASET)
    assert len(list((ctx.tmp / "ds" / "labels").iterdir())) == 12
    check_dataset(ctx.tmp / "ds", ctx.tmp / "crops")
    return code


def second_run_same_output(ctx: Ctx) -> int:
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from pathlib import Path; "
         "from drivevision.io.claims import Claim; c = Claim(Path(sys.argv[1])); "
         "print('held', flush=True); time.sleep(60)", str(ctx.tmp / "out.mp4")],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code = finished_run(ctx)
        assert f"(pid {holder.pid})" in ctx.stderr
        return code
    finally:
        holder.kill()
        holder.wait()


def jsonl_to(name: str) -> Callable[[Ctx], int]:
    def action(ctx: Ctx) -> int:
        code = ctx.run("detect", ctx.clip, "--jsonl", name)
        assert name == "-" or Path(name).is_char_device()  # written through, not replaced
        return code
    return action


def jsonl_to_head(ctx: Ctx) -> int:
    """``drivevision detect CLIP --jsonl - -o out.mp4 | head -n 2``: the reader leaves (a
    clip long enough that the run cannot end before it does)."""
    clip = ctx.tmp / "long.mp4"
    write_clip(clip, 200, width=160, height=96, fps=10.0, seed=4)
    run = subprocess.Popen(ctx.cmd("detect", str(clip), "--jsonl", "-", "-o",
                                   str(ctx.tmp / "out.mp4"), "-q"),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    got = [run.stdout.readline() for _ in range(2)]
    run.stdout.close()
    ctx.stderr = run.stderr.read()
    run.wait(60)
    assert all(json.loads(line)["frame"] == i for i, line in enumerate(got))
    assert ctx.stderr == "", ctx.stderr  # quiet, as a command killed by SIGPIPE
    return run.returncode


def jsonl_to_fifo(ctx: Ctx) -> int:
    fifo = ctx.tmp / "lines.fifo"
    os.mkfifo(fifo)
    got: list[str] = []

    def read() -> None:
        with open(fifo) as lines:
            got.extend(lines.read().splitlines())

    reader = threading.Thread(target=read)
    reader.start()
    code = ctx.run("detect", ctx.clip, "--jsonl", str(fifo))
    reader.join(30)
    (ctx.tmp / "from-fifo.jsonl").write_text("".join(f"{line}\n" for line in got))
    assert fifo.is_fifo()
    return code


def jsonl_to_symlink(ctx: Ctx) -> int:
    (ctx.tmp / "real").mkdir()
    (ctx.tmp / "link.jsonl").symlink_to(ctx.tmp / "real" / "target.jsonl")
    code = ctx.run("detect", ctx.clip, "--jsonl", str(ctx.tmp / "link.jsonl"))
    assert (ctx.tmp / "link.jsonl").is_symlink()
    assert [p.name for p in (ctx.tmp / "real").iterdir()] == ["target.jsonl"]
    return code


def long_output_name(ctx: Ctx) -> int:
    name = "x" * (255 - len(".jsonl")) + ".jsonl"  # the longest name the file system takes
    code = ctx.run("detect", ctx.clip, "--jsonl", str(ctx.tmp / name))
    os.replace(ctx.tmp / name, ctx.tmp / "long.jsonl")
    return code


def live_segments(ctx: Ctx) -> int:
    server, port = start_process(fps=15)
    try:
        code = ctx.run("live", f"http://127.0.0.1:{port}/stream", "--duration", "5",
                       "--segment", "1500ms", "-o", str(ctx.tmp / "front.mp4"),
                       "--jsonl", str(ctx.tmp / "front.jsonl"))
    finally:
        server.kill()
        server.wait()
    videos = sorted(ctx.tmp.glob("front_*.mp4"))
    assert len(videos) >= 3, videos
    frames = []
    for video in videos:  # each piece closed and complete, with exactly its own frames
        lines = [x["frame"] for x in jsonl_lines(video.with_suffix(".jsonl")) if "frame" in x]
        with av.open(str(video)) as container:
            assert container.streams.video[0].frames == len(lines) == playable_frames(video)
        frames += lines
    assert frames == sorted(set(frames))  # no frame twice, none out of order
    return code


CASES = [
    Case("finished run", finished_run, 0, exist=("out.mp4", "out.jsonl"),
         plays={"out.mp4": 12}, lines={"out.jsonl": 12}),
    Case("finished run with --yolo and --crops", finished_run_with_dataset, 0,
         exist=("ds/data.yaml", "ds/classes.txt", "crops/car"), lines={"out.jsonl": 12}),
    Case("second run writing the same output", second_run_same_output, 2,
         r"out\.mp4 is being written by another run \(pid \d+\)", absent=("out.mp4",)),
    Case("--jsonl /dev/null", jsonl_to("/dev/null"), 0),
    Case("--jsonl - (stdout)", jsonl_to("-"), 0, r"wrote -", stdout_lines=12),
    Case("--jsonl - read by head", jsonl_to_head, 141, exist=("out.partial.mp4",),
         absent=("out.mp4",), plays={"out.partial.mp4": 1}),
    Case("--jsonl to a FIFO", jsonl_to_fifo, 0, lines={"from-fifo.jsonl": 12}),
    Case("--jsonl to a symlink", jsonl_to_symlink, 0, lines={"real/target.jsonl": 12}),
    Case("output name of 255 bytes", long_output_name, 0, lines={"long.jsonl": 12}),
    Case("--jsonl /dev/full", jsonl_to("/dev/full"), 1,
         r"\ndrivevision: error: Cannot write /dev/full: the disk is full \(No space left on "
         r"device\)\n$"),
    Case("live --segment 1500ms", live_segments, 0, absent=("front.mp4", "front.jsonl"),
         slow=True),
]


@pytest.mark.parametrize("case", params(CASES))
@pytest.mark.timeout(180)
def test_output_fault(case: Case, tmp_path, clip_path, tiny_checkpoint):
    check(case, Ctx(tmp_path, clip_path, tiny_checkpoint))
