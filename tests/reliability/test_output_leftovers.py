"""Output faults, one row per case (columns: output_rows.py): what killed runs left
behind (part files, lock files, an export's staging folder), named to the next run
and removed by --clean; what only looks like them kept."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable

import pytest
from faults import Ctx, wait_for
from output_rows import OTHERS_LOCKS, USERS_FOLDERS, USERS_OWN, Case, check, params

from drivevision.io.claims import PART_MARK


def leftover_part_files(clean: bool) -> Callable[[Ctx], int]:
    def action(ctx: Ctx) -> int:
        (ctx.tmp / ".out.part.99999.mp4").write_bytes(b"killed")
        (ctx.tmp / ".export-abc").mkdir()
        (ctx.tmp / ".export-abc" / PART_MARK).touch()  # as the killed export marked it
        for name in USERS_OWN:  # hidden files that only look like part files
            (ctx.tmp / name).write_text("precious")
        for name in USERS_FOLDERS:
            (ctx.tmp / name).mkdir()
            (ctx.tmp / name / "a.jpg").write_text("precious")
        code = ctx.run("detect", ctx.clip, "--jsonl", str(ctx.tmp / "out.jsonl"),
                       *(["--clean"] if clean else []))
        return code
    return action


def killed_yolo_lock(clean: bool) -> Callable[[Ctx], int]:
    """A ``--yolo ds`` run killed (SIGKILL) once it holds ds: its lock file ``.ds.lock``
    stays; the next run into the folder names it (or removes it with --clean). Lock files
    of another program (a live pid, or other text) are never named nor removed."""
    def action(ctx: Ctx) -> int:
        run = subprocess.Popen(ctx.cmd("detect", ctx.clip, "--yolo", str(ctx.tmp / "ds")),
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        lock = ctx.tmp / ".ds.lock"
        try:
            wait_for(lambda: lock.exists() and lock.read_text().strip(), 60, ".ds.lock")
        finally:
            run.kill()
            run.wait()
        for name, text in OTHERS_LOCKS.items():
            (ctx.tmp / name).write_text(text)
        return ctx.run("detect", ctx.clip, "--jsonl", str(ctx.tmp / "out.jsonl"),
                       *(["--clean"] if clean else []))
    return action


def killed_export_staging(clean: bool) -> Callable[[Ctx], int]:
    """A killed export's staging folder, and one a running export holds, in ``engines/``."""
    def action(ctx: Ctx) -> int:
        engines = ctx.tmp / "engines"
        (engines / ".export-old").mkdir(parents=True)
        (engines / ".export-old" / "dense_a.onnx").write_bytes(b"half")
        (engines / ".export-live").mkdir()
        for staging in (".export-old", ".export-live"):  # as each export marked its own
            (engines / staging / PART_MARK).touch()
        holder = subprocess.Popen(
            [sys.executable, "-c", "import fcntl, os, sys, time; "  # as export holds its own
             "fcntl.flock(os.open(sys.argv[1], os.O_RDONLY), fcntl.LOCK_SH); "
             "print('held', flush=True); time.sleep(60)", str(engines / ".export-live")],
            stdout=subprocess.PIPE, text=True)
        try:
            assert holder.stdout.readline().strip() == "held"
            done = subprocess.run(
                [sys.executable, "-m", "drivevision", "export", "--model", "tiny-fpn",
                 "--weights", ctx.weights, "--input-size", "64x64", "--exporter", "legacy",
                 "-o", str(engines), *(["--clean"] if clean else [])],
                capture_output=True, text=True, timeout=120)
        finally:
            holder.kill()
            holder.wait()
        ctx.stdout, ctx.stderr = done.stdout, done.stderr
        assert ".export-live" not in ctx.stderr  # a running export's folder is not a leftover
        return done.returncode
    return action


CASES = [
    Case("part files of a killed run", leftover_part_files(clean=False), 0,
         r"2 unfinished outputs left by a killed run: .*\.export-abc, .*"
         r"\.out\.part\.99999\.mp4 .*--clean removes them",
         exist=(".out.part.99999.mp4", ".export-abc"), lines={"out.jsonl": 12}),
    Case("--clean", leftover_part_files(clean=True), 0,
         r"removed 2 unfinished outputs left by a killed run: .*\.export-abc, "
         r".*\.out\.part\.99999\.mp4\n",
         absent=(".out.part.99999.mp4", ".export-abc"), exist=USERS_OWN + USERS_FOLDERS,
         lines={"out.jsonl": 12}),
    Case("lock file of a killed --yolo run", killed_yolo_lock(clean=False), 0,
         r"1 lock file left by a killed run: .*/\.ds\.lock \(a lock file holds nothing; "
         r"--clean removes them\)", exist=(".ds.lock", *OTHERS_LOCKS), lines={"out.jsonl": 12},
         slow=True),
    Case("--clean, lock file of a killed --yolo run", killed_yolo_lock(clean=True), 0,
         r"removed 1 lock file left by a killed run: .*/\.ds\.lock\n", absent=(".ds.lock",),
         exist=tuple(OTHERS_LOCKS), lines={"out.jsonl": 12}, slow=True),
    Case("export: staging folder of a killed export", killed_export_staging(clean=False), 0,
         r"1 unfinished output left by a killed run: .*engines/\.export-old \(.*"
         r"--clean removes them", exist=("engines/.export-old", "engines/.export-live",
                                         "engines/dense_a.onnx")),
    Case("export --clean", killed_export_staging(clean=True), 0,
         absent=("engines/.export-old",), exist=("engines/.export-live", "engines/dense_a.onnx")),
]


@pytest.mark.parametrize("case", params(CASES))
@pytest.mark.timeout(180)
def test_output_fault(case: Case, tmp_path, clip_path, tiny_checkpoint):
    check(case, Ctx(tmp_path, clip_path, tiny_checkpoint))
