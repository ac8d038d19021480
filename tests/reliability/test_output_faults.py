"""What happens to a run's outputs when things go wrong: one row per case.

A row names the case, what the test does (``action``: a function of the ``Ctx`` that sets up
the fault and runs ``drivevision``), the exit code and a message the user must see, which
outputs must exist afterwards, which videos must play (PyAV, with at least N frames) and
how many lines each JSONL must hold. Add a row to add a case; docs/reliability.md lists
the same rows.
"""

from __future__ import annotations

import json
import os
import re
import resource
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import cv2
import faults
import pytest
from faults import Ctx, wait_for
from mjpeg_server import start_process

from drivevision.io.claims import PART_MARK
from drivevision.synthetic import write_clip


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


# -- actions ----------------------------------------------------------------------------------

# --yolo and --crops need boxes: the demo model finds the generated scenes' cars
DEMO = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")
DATASET = ("--conf", "0.3")


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


USERS_OWN = (".thesis.part.txt", ".video.part.final.mp4", ".notes.part.7b.md")
USERS_FOLDERS = (".photos.part.3", ".export-2026")  # hidden folders that only look like ours


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


OTHERS_LOCKS = {".tool.lock": f"{os.getpid()}\n", ".notes.lock": "do not touch\n"}


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


# -- the table --------------------------------------------------------------------------------

@dataclass
class Case(faults.Case):
    plays: dict[str, int] = field(default_factory=dict)  # video -> at least N frames
    lines: dict[str, int] = field(default_factory=dict)  # JSONL -> at least N lines
    exact_lines: bool = True
    stdout_lines: int | None = None
    slow: bool = True  # every row runs drivevision as a process: seconds each


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
    Case("disk full mid-video", full_disk, 1,
         r"warning: .*out\.jsonl: the run failed; what was written is kept in .*"
         r"out\.partial\.jsonl\ndrivevision: error: Cannot write .*out\.mp4: the file reached "
         r"its size limit, .*\(File too large\); what was written is kept in "
         r".*out\.partial\.mp4\n$",
         exist=("out.partial.mp4",), absent=("out.mp4", "out.jsonl"),
         plays={"out.partial.mp4": 10}, lines={"out.partial.jsonl": 10}, exact_lines=False,
         slow=True),
    Case("--jsonl /dev/full", jsonl_to("/dev/full"), 1,
         r"\ndrivevision: error: Cannot write /dev/full: the disk is full \(No space left on "
         r"device\)\n$"),
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
    Case("live --segment 1500ms", live_segments, 0, absent=("front.mp4", "front.jsonl"),
         slow=True),
]


@pytest.mark.parametrize("case", [pytest.param(c, id=c.name, marks=[pytest.mark.slow] * c.slow)
                                  for c in CASES])
@pytest.mark.timeout(180)
def test_output_fault(case: Case, tmp_path, clip_path, tiny_checkpoint):
    ctx = Ctx(tmp_path, clip_path, tiny_checkpoint)
    code = case.action(ctx)
    assert code == case.code, ctx.stderr[-2000:]
    if case.message:
        assert re.search(case.message, ctx.stderr), ctx.stderr[-2000:]
    for name in case.exist:
        assert (tmp_path / name).exists(), name
    for name in case.absent:
        assert not (tmp_path / name).exists(), name
    for name, frames in case.plays.items():
        assert playable_frames(tmp_path / name) >= frames
    for name, count in case.lines.items():
        lines = jsonl_lines(tmp_path / name)  # every line whole
        assert len(lines) == count if case.exact_lines else len(lines) >= count
        frames = [x["frame"] for x in lines if "frame" in x]
        assert frames == sorted(set(frames))  # in order, none twice (live runs drop some)
    if code == 0 and case.name not in ("part files of a killed run",
                                       "lock file of a killed --yolo run"):
        others = (*USERS_OWN, *USERS_FOLDERS, *OTHERS_LOCKS)
        assert not [p for p in tmp_path.rglob(".*") if (".part." in p.name or
                    p.name.endswith(".lock")) and p.name not in others]
    if case.stdout_lines is not None:  # JSONL alone: no summary or progress mixed in
        assert len([json.loads(line) for line in ctx.stdout.splitlines()]) == case.stdout_lines
