"""``live`` killed with SIGKILL while it records: the part video holds every frame the part
JSONL holds but the last at most, and plays as it is (docs/live.md states the bound)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import av
import pytest
from faults import TINY, wait_for
from mjpeg_server import start_process

from drivevision.synthetic import write_clip


def part(folder: Path, suffix: str) -> Path | None:
    found = [p for p in folder.iterdir() if ".part." in p.name and p.suffix == suffix]
    return found[0] if found else None


def whole_lines(path: Path | None) -> list[dict]:
    if path is None:
        return []
    text = path.read_text()
    return [json.loads(line) for line in text.split("\n")[:-1]]  # the last may be torn


def killed_after(folder: Path, source: list[str], frames: int, weights: str,
                 suffix: str = ".mp4") -> tuple[list, list]:
    """``live SOURCE -o out.mp4 --jsonl out.jsonl`` (a video of ``suffix``) killed (SIGKILL)
    once its part JSONL holds ``frames`` frames; the frames of the part JSONL and the times
    of those its part video decodes (PyAV, H.264 as written)."""
    run = subprocess.Popen([sys.executable, "-m", "drivevision", "live", *source, "-o",
                            str(folder / f"out{suffix}"), "--jsonl", str(folder / "out.jsonl"),
                            "--weights", weights, *TINY, "--video-preset", "ultrafast"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: len(whole_lines(part(folder, ".jsonl"))) >= frames, 120,
                 f"{frames} JSONL lines")
    finally:
        run.kill()
        run.wait()
    lines = [x for x in whole_lines(part(folder, ".jsonl")) if "frame" in x]
    with av.open(str(part(folder, suffix))) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        shown = [float(f.time) for f in container.decode(stream)]
    return lines, shown


@pytest.mark.slow
@pytest.mark.timeout(180)
@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
def test_a_killed_live_run_on_a_file_loses_at_most_its_last_frame(tmp_path, tiny_checkpoint,
                                                                   suffix):
    # read whole, every frame: the video had x264's lookahead and a fragment a second (MP4:
    # a quarter of the frames of a run killed after 40 lost) or a cluster of up to 5 s
    # (Matroska: nothing but its header)
    clip = tmp_path / "long.mp4"
    write_clip(clip, 600, width=160, height=96, fps=30.0, seed=3)
    lines, shown = killed_after(tmp_path, [str(clip)], 40, tiny_checkpoint, suffix)
    assert len(lines) - 1 <= len(shown) <= len(lines), (len(lines), len(shown))
    assert shown == pytest.approx([x["timestamp_ms"] / 1000 for x in lines[:len(shown)]],
                                  abs=0.002)  # the frames the JSONL has, at their times


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_a_killed_live_run_on_a_stream_loses_at_most_its_last_frame(tmp_path, tiny_checkpoint):
    # a fragment a second lost up to a second of frames (about 2 s with the frame being
    # detected, on a CPU); now a fragment a frame
    server, port = start_process(fps=30)
    try:
        lines, shown = killed_after(tmp_path, [f"http://127.0.0.1:{port}/stream"], 25,
                                    tiny_checkpoint)
    finally:
        server.kill()
        server.wait()
    assert len(lines) - 1 <= len(shown) <= len(lines), (len(lines), len(shown))
