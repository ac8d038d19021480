"""Output faults, one row per case (columns: output_rows.py): runs that do not finish,
their outputs kept whole: the disk filling up, Ctrl-C over outputs of an earlier run,
detect and live killed."""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import time

import pytest
from faults import Ctx, wait_for
from mjpeg_server import start_process
from output_rows import DATASET, DEMO, Case, check, check_dataset, params, parts

from drivevision.synthetic import write_clip


def full_disk(ctx: Ctx) -> int:
    """The disk fills up after 12 kB of any file (RLIMIT_FSIZE: writes fail with EFBIG)."""
    clip = ctx.tmp / "long.mp4"
    write_clip(clip, 40, width=160, height=96, fps=10.0, seed=2)
    ctx.clip = str(clip)
    limit = lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (12000, 12000))  # noqa: E731
    code = ctx.run("detect", ctx.clip, "-o", str(ctx.tmp / "out.mp4"), "--jsonl",
                   str(ctx.tmp / "out.jsonl"), preexec_fn=limit)
    assert ".part." not in ctx.stderr and "Traceback" not in ctx.stderr, ctx.stderr
    return code


def killed_detect(ctx: Ctx) -> int:
    """SIGKILL once the JSONL part file holds 30 lines: the part files hold what was made."""
    clip = ctx.tmp / "long.mp4"
    write_clip(clip, 400, width=160, height=96, fps=10.0, seed=3)
    ctx.weights = DEMO
    run = subprocess.Popen(ctx.cmd("detect", str(clip), "-o", str(ctx.tmp / "out.mp4"),
                                   "--jsonl", str(ctx.tmp / "out.jsonl"), "--yolo",
                                   str(ctx.tmp / "ds"), "--crops", str(ctx.tmp / "crops"),
                                   *DATASET),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(len(p.read_bytes().splitlines()) >= 30
                             for p in parts(ctx.tmp, ".jsonl")), 90, "30 JSONL lines")
    finally:
        run.kill()
        run.wait()
    _recover(ctx)
    assert len(list((ctx.tmp / "ds" / "images").glob("frame_*.jpg"))) >= 25
    check_dataset(ctx.tmp / "ds", ctx.tmp / "crops")
    return run.returncode


def interrupted_over_earlier(ctx: Ctx) -> int:
    """Ctrl-C part way through a run whose outputs have names of existing files: those stay
    as they were; the run's outputs go beside them as NAME.partial.EXT, each line says so."""
    clip = ctx.tmp / "long.mp4"
    write_clip(clip, 400, width=160, height=96, fps=10.0, seed=3)
    earlier = {name: f"the user's {name}".encode() for name in ("out.mp4", "out.jsonl")}
    for name, data in earlier.items():
        (ctx.tmp / name).write_bytes(data)
    run = subprocess.Popen(ctx.cmd("detect", str(clip), "-o", str(ctx.tmp / "out.mp4"),
                                   "--jsonl", str(ctx.tmp / "out.jsonl")),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: any(len(p.read_bytes().splitlines()) >= 10
                             for p in parts(ctx.tmp, ".jsonl")), 90, "10 JSONL lines")
        run.send_signal(signal.SIGINT)
        ctx.stdout, ctx.stderr = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    for name, data in earlier.items():
        assert (ctx.tmp / name).read_bytes() == data, name
    assert "wrote " + str(ctx.tmp / "out.partial.mp4") in ctx.stdout
    return run.returncode


def interrupted_over_earlier_folders(ctx: Ctx) -> int:
    """The same with --yolo and --crops folders an earlier run filled: they stay whole; the
    stopped run's files are in ds.partial and crops.partial, each a whole dataset."""
    ctx.weights = DEMO
    folders = ("--yolo", str(ctx.tmp / "ds"), "--crops", str(ctx.tmp / "crops"), *DATASET)
    assert ctx.run("detect", ctx.clip, *folders) == 0
    before = {p: p.read_bytes() for p in ctx.tmp.rglob("*") if p.is_file()}
    clip = ctx.tmp / "long.mp4"
    write_clip(clip, 400, width=160, height=96, fps=10.0, seed=3)
    run = subprocess.Popen(ctx.cmd("detect", str(clip), *folders), stdout=subprocess.PIPE,
                           stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: len(list(ctx.tmp.glob(".ds.part.*/labels/*.txt"))) >= 10, 90,
                 "10 label files")
        run.send_signal(signal.SIGINT)
        ctx.stdout, ctx.stderr = run.communicate(timeout=60)
    finally:
        run.kill()
        run.wait()
    assert {p: p.read_bytes() for p in before} == before
    assert not [p for p in (ctx.tmp / "ds").rglob("*") if p.is_file() and p not in before]
    check_dataset(ctx.tmp / "ds.partial", ctx.tmp / "crops.partial")
    labels = {p.stem for p in (ctx.tmp / "ds.partial" / "labels").iterdir()}
    assert labels == {p.stem for p in (ctx.tmp / "ds.partial" / "images").iterdir()}
    return run.returncode


def killed_live(ctx: Ctx) -> int:
    """A live run, 5 s after its first detection, then SIGKILL: the JSONL is on disk."""
    server, port = start_process(fps=15)
    run = subprocess.Popen(ctx.cmd("live", f"http://127.0.0.1:{port}/stream", "--duration",
                                   "60", "-o", str(ctx.tmp / "out.mp4"), "--jsonl",
                                   str(ctx.tmp / "out.jsonl")),
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: any(p.stat().st_size for p in parts(ctx.tmp, ".jsonl")), 90,
                 "a first JSONL line")
        time.sleep(5)
        lines = len(parts(ctx.tmp, ".jsonl")[0].read_bytes().splitlines())
        assert lines >= 5, lines  # on disk while the run goes on, not at its end
    finally:
        run.kill()
        run.wait()
        server.kill()
        server.wait()
    _recover(ctx)
    return run.returncode


def _recover(ctx: Ctx) -> None:
    """What the warning tells a user to do: rename the part files."""
    for suffix in (".mp4", ".jsonl"):
        (part,) = parts(ctx.tmp, suffix)
        os.replace(part, ctx.tmp / f"recovered{suffix}")


CASES = [
    Case("disk full mid-video", full_disk, 1,
         r"warning: .*out\.jsonl: the run failed; what was written is kept in .*"
         r"out\.partial\.jsonl\ndrivevision: error: Cannot write .*out\.mp4: the file reached "
         r"its size limit, .*\(File too large\); what was written is kept in "
         r".*out\.partial\.mp4\n$",
         exist=("out.partial.mp4",), absent=("out.mp4", "out.jsonl"),
         plays={"out.partial.mp4": 10}, lines={"out.partial.jsonl": 10}, exact_lines=False,
         slow=True),
    Case("Ctrl-C part way, outputs of existing names", interrupted_over_earlier, 130,
         r"out\.mp4 was left as it was \(the run was interrupted\); this run's \d+ frames "
         r"are in .*out\.partial\.mp4", exist=("out.partial.jsonl",),
         plays={"out.partial.mp4": 10}, lines={"out.partial.jsonl": 10}, exact_lines=False),
    Case("Ctrl-C part way, --yolo and --crops folders of an earlier run",
         interrupted_over_earlier_folders, 130,
         r"ds was left as it was \(the run was interrupted\); this run's \d+ files are in "
         r".*ds\.partial\n.*crops was left as it was",
         exist=("ds.partial/data.yaml", "crops.partial"), absent=(".ds.lock",)),
    Case("detect killed (SIGKILL)", killed_detect, -signal.SIGKILL,
         plays={"recovered.mp4": 10}, lines={"recovered.jsonl": 30}, exact_lines=False,
         absent=("out.mp4", "out.jsonl"), slow=True),
    Case("live killed (SIGKILL)", killed_live, -signal.SIGKILL,
         plays={"recovered.mp4": 10}, lines={"recovered.jsonl": 5}, exact_lines=False,
         absent=("out.mp4", "out.jsonl"), slow=True),
]


@pytest.mark.parametrize("case", params(CASES))
@pytest.mark.timeout(180)
def test_output_fault(case: Case, tmp_path, clip_path, tiny_checkpoint):
    check(case, Ctx(tmp_path, clip_path, tiny_checkpoint))
