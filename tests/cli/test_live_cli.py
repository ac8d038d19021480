"""``drivevision live`` as a user runs it: a real stream, --serve, a server restart, Ctrl-C."""

from __future__ import annotations

import contextlib
import io
import json
import re
import signal
import subprocess
import sys
import threading
import time
import types
import urllib.request

import cv2
import pytest
from mjpeg_server import read_parts, start_process

from drivevision.cli import main
from tests.standins import x264_options


class Lines:
    """Collects a pipe's lines on a thread; ``wait_for`` polls them."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s: {self.lines[-5:]}")


def start_live(port: int, checkpoint: str, *options: str):
    """``drivevision live`` on the test stream at ``port`` with the tiny model, as a user runs
    it; returns the process and its stderr and stdout lines."""
    cmd = [sys.executable, "-m", "drivevision", "live", f"http://127.0.0.1:{port}/stream",
           "--weights", checkpoint, "--model", "tiny-fpn", "--min-size", "96",
           "--max-size", "128", "--stall-timeout", "2", "--duration", "60", *options]
    run = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return run, Lines(run.stderr), Lines(run.stdout)


def kill(*processes) -> None:
    for process in processes:
        process.kill()
        process.wait()


def written_frames(path) -> int:
    """The frame lines a JSONL output has on disk now, in its part file while the run lasts
    (whole lines only)."""
    lines = 0
    for part in path.parent.glob(f".{path.stem}.part.*{path.suffix}"):
        with contextlib.suppress(OSError):  # moved into place meanwhile
            lines += sum('"frame"' in line for line in part.read_text().split("\n")[:-1])
    return lines


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_live_command_serves_reconnects_and_finishes_on_ctrl_c(tmp_path, tiny_checkpoint):
    server, port = start_process(fps=30)
    servers = [server]
    video, lines = tmp_path / "live.mp4", tmp_path / "live.jsonl"
    # a stall timeout far above the waits for LOST: the outage must be seen at the EOF
    run, err, out = start_live(port, tiny_checkpoint, "-o", str(video), "--jsonl", str(lines),
                               "--serve", "127.0.0.1:0", "--stall-timeout", "30")
    try:
        url = err.wait_for(r"serving (http://127\.0\.0\.1:\d+/stream/0)", 60).group(1)
        with urllib.request.urlopen(url, timeout=10) as response:
            frames = read_parts(response, 3)
        assert [f.shape for f in frames] == [(120, 160, 3)] * 3
        err.wait_for(r"det +\d", 10)
        kill(servers[0])
        err.wait_for(r"LOST \d+ s, reconnecting", 8)  # at once, not after the stall timeout
        time.sleep(1.0)
        servers.append(start_process(port, fps=30)[0])
        err.wait_for(r"reconnects 1 ", 20)
        time.sleep(1.5)
        deadline = time.monotonic() + 30  # a loaded machine's detector may be slower
        while written_frames(lines) <= 10 and time.monotonic() < deadline:
            time.sleep(0.1)
        run.send_signal(signal.SIGINT)
        assert run.wait(30) == 130
    finally:
        kill(run, *servers)
    summary = out.wait_for(r"(\d+) frames detected of (\d+) captured .* 1 reconnect \(", 5)
    records = [json.loads(x) for x in lines.read_text().splitlines()]
    detected = [r for r in records if "frame" in r]
    assert len(detected) == int(summary.group(1)) > 10
    assert [r for r in records if "gap" in r][0]["gap"]["reason"] == "the stream ended or failed"
    cap = cv2.VideoCapture(str(video))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == len(detected)


@pytest.mark.parametrize("args, message", [
    (["ftp://host/x.mp4"], "Unknown source scheme 'ftp://'"),
    (["/dev/video63"], "Cannot open /dev/video63: no such device"),
    (["http://127.0.0.1:9/stream"], "Cannot open http://127.0.0.1:9/stream"),
    (["clip.mp4", "--stall-timeout", "0"], "Expected --stall-timeout > 0"),
    (["clip.mp4", "--max-reconnects", "-1"], "Expected --max-reconnects >= 0"),
    (["clip.mp4", "-o", "out.webm"], "Expected a video file name ending in .mp4, .mkv"),
    (["http://127.0.0.1:9/x", "--input-width", "320", "--input-fps", "5"],
     "Expected --input-width, --input-fps only for a camera (0, /dev/videoN, csi://N), but "
     "http://127.0.0.1:9/x is not one"),
])
def test_live_command_fails_fast_with_one_line(args, message, capsys, tiny_checkpoint):
    # a long stall timeout (args may override it): waiting for it or retrying would take far
    # longer than the bound below, which leaves a loaded machine room to load the model
    start = time.monotonic()
    code = main(["live", "--stall-timeout", "60", *args, "--weights", tiny_checkpoint,
                 "--model", "tiny-fpn", "-q"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]
    assert time.monotonic() - start < 20.0


@pytest.mark.parametrize("args, message", [
    # `live --serve SOURCE` took the source for HOST:PORT, and argparse then said only that
    # SOURCE was missing
    (["--serve", "rtsp://cam.local:8554/front"], "expected HOST:PORT, but got "
     "'rtsp://cam.local:8554/front', a SOURCE: put the sources first (live SOURCE --serve)"),
    (["--serve", "/dev/video0", "-o", "out.mp4"], "expected HOST:PORT, but got '/dev/video0', "
     "a SOURCE"),
    (["--serve", "clip.mp4"], "expected HOST:PORT, but got 'clip.mp4', a SOURCE"),
    (["clip.mp4", "--serve", "here"], "Expected HOST:PORT for --serve (e.g. 127.0.0.1:8090), "
     "but got 'here'"),
])
def test_a_bad_serve_address_is_refused_as_it_is_parsed(args, message, capsys):
    with pytest.raises(SystemExit) as usage:
        main(["live", *args])
    err = capsys.readouterr().err.strip().splitlines()
    assert usage.value.code == 2 and len(err) == 1
    assert f"argument --serve: {message}" in err[0]


@pytest.mark.timeout(60)
def test_live_command_on_a_file_in_realtime(tmp_path, clip_path, tiny_checkpoint, capsys):
    video, lines = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    code = main(["live", clip_path, "--realtime", "--weights", tiny_checkpoint, "--model",
                 "tiny-fpn", "--min-size", "96", "-o", str(video), "--jsonl", str(lines),
                 "--video-preset", "ultrafast"])
    out = capsys.readouterr().out
    assert code == 0 and "frames detected of 12 captured" in out
    assert "reconnects" not in out and "lost" not in out  # a file cannot lose its input
    assert x264_options(video)["cabac"] == "0"  # the preset asked for
    indices = [json.loads(x)["frame"] for x in lines.read_text().splitlines()]
    assert indices == sorted(indices) and indices[0] == 0


@pytest.mark.timeout(60)
def test_live_on_a_truncated_file_warns_and_exits_3(tmp_path, tiny_checkpoint, capsys):
    from drivevision.cli.exits import EXIT_INPUT_DAMAGED
    from drivevision.synthetic import write_clip

    full, cut = tmp_path / "full.mp4", tmp_path / "cut.mp4"
    write_clip(full, 30, width=160, height=96, fps=10.0, seed=3)
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) * 6 // 10])
    lines = tmp_path / "out.jsonl"
    code = main(["live", str(cut), "--realtime", "--weights", tiny_checkpoint,
                 "--model", "tiny-fpn", "--min-size", "96", "--jsonl", str(lines), "-q"])
    err = capsys.readouterr().err
    kept = len(lines.read_text().splitlines())
    assert code == EXIT_INPUT_DAMAGED  # as detect on the same file (was 0)
    assert "truncated" in err and 0 < kept < 30


def test_live_says_once_which_of_two_video_streams_it_reads(tmp_path, tiny_checkpoint, capsys):
    from tests.io.written_media import write_two_streams

    write_two_streams(tmp_path / "two.mkv")
    code = main(["live", str(tmp_path / "two.mkv"), "--weights", tiny_checkpoint, "--model",
                 "tiny-fpn", "--min-size", "96"])
    said = [line for line in capsys.readouterr().err.splitlines() if "video streams" in line]
    assert code == 0  # a second stream is nothing wrong with the input: no warning, exit 0
    assert said == [f"{tmp_path / 'two.mkv'}: 2 video streams: reading the first, #0 160x120 "
                    "h264; not read: #1 320x240 h264"]


def test_fps_with_no_image_source_says_it_is_ignored(clip_path, tiny_checkpoint, capsys):
    code = main(["live", clip_path, "--fps", "5", "-q", "--weights", tiny_checkpoint,
                 "--min-size", "96"])
    warnings = [line for line in capsys.readouterr().err.splitlines() if "--fps" in line]
    assert code == 0
    assert warnings == ["drivevision: warning: --fps applies to image inputs and raw video "
                        "streams (.h264, .h265) only; a video or stream keeps its own frame rate"]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_outage_going_on_at_ctrl_c_is_in_the_summary_and_jsonl(tmp_path, tiny_checkpoint):
    server, port = start_process(fps=30)
    lines = tmp_path / "live.jsonl"
    run, err, out = start_live(port, tiny_checkpoint, "--jsonl", str(lines),
                               "--stall-timeout", "30")
    try:
        err.wait_for(r"det +\d", 60)
        kill(server)
        err.wait_for(r"LOST \d+ s, reconnecting", 8)
        time.sleep(1.5)
        run.send_signal(signal.SIGINT)
        assert run.wait(30) == 130
    finally:
        kill(run, server)
    lost = float(out.wait_for(r"0 reconnects \(([\d.]+) s lost\)", 5).group(1))
    [gap] = [json.loads(x)["gap"] for x in lines.read_text().splitlines() if '"gap"' in x]
    assert gap["next_frame"] is None and "run stopped" in gap["reason"]
    assert 1.4 < lost == pytest.approx(gap["seconds"], abs=0.1)


def test_busy_serve_port_fails_before_the_model_loads(clip_path, tiny_checkpoint, capsys,
                                                      monkeypatch):
    import socket

    from drivevision.detector import Detector

    loads = []
    monkeypatch.setattr(Detector, "from_config", lambda *a, **k: loads.append(a) or 1 / 0)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = main(["live", clip_path, "--serve", f"127.0.0.1:{port}", "--weights",
                     tiny_checkpoint, "--model", "tiny-fpn"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and loads == []
    assert len(err) == 1 and f"Cannot serve on 127.0.0.1:{port}" in err[0]


@pytest.mark.parametrize("source, message", [
    ("http://127.0.0.1:9/stream", "Cannot open http://127.0.0.1:9/stream"),
    ("missing.mp4", "No such file or directory: missing.mp4"),
])
def test_a_source_that_fails_without_outputs_says_only_that(source, message, tiny_checkpoint,
                                                            capsys):
    code = main(["live", source, "--weights", tiny_checkpoint, "--model", "tiny-fpn"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and message in err[0]


def test_live_without_outputs_says_nothing_is_saved(tmp_path, clip_path, tiny_checkpoint,
                                                     capsys):
    detector = ["--weights", tiny_checkpoint, "--model", "tiny-fpn", "--min-size", "96"]
    assert main(["live", clip_path, *detector]) == 0
    err = capsys.readouterr().err.splitlines()
    assert "nothing is saved: add -o VIDEO, --jsonl FILE or --serve" in err[0]
    assert main(["live", clip_path, *detector, "--jsonl", str(tmp_path / "x.jsonl")]) == 0
    assert "nothing is saved" not in capsys.readouterr().err


class _SilentCapture:
    """An opened capture that never decodes a frame, as OpenCV's FFmpeg does with a stream
    in a codec it lacks."""

    def isOpened(self) -> bool:  # noqa: N802 - OpenCV's name
        return True

    def read(self):
        time.sleep(0.05)
        return False, None

    def get(self, prop) -> float:
        return 0.0

    def release(self) -> None:
        pass


@pytest.mark.timeout(60)
def test_stream_that_opens_but_never_gives_a_frame_says_so(tmp_path, tiny_checkpoint, capsys,
                                                           monkeypatch):
    from drivevision.cli import status
    from drivevision.io import sources
    from drivevision.io.streams import StreamSource

    uri = "http://127.0.0.1:9/live.m3u8"
    monkeypatch.setattr(sources, "open_source",
                        lambda *a, reconnect, **k: StreamSource(uri, _SilentCapture, reconnect))
    states = []
    monkeypatch.setattr(status, "snapshot", lambda p, i, real=status.snapshot: states.append(
        p.sources[i].outage) or real(p, i))
    video, lines = tmp_path / "x.mp4", tmp_path / "x.jsonl"
    code = main(["live", uri, "-o", str(video), "--jsonl", str(lines), "--duration", "2.5",
                 "--weights", tiny_checkpoint, "--model", "tiny-fpn"])
    captured = capsys.readouterr()
    assert code == 0 and not video.exists() and lines.exists()
    assert f"wrote {lines}" in captured.out and f"wrote {video}" not in captured.out
    assert "0 reconnects (" in captured.out  # a stream's summary keeps them
    assert f"{video} was not written: no frame came from {uri}" in captured.err
    assert f"{uri}: opened, but no frame was ever decoded" in captured.err
    assert any(s.startswith("OPENED, no frame decoded in") for s in states)
    assert not any("LOST" in s for s in states)


@pytest.mark.parametrize("option, refusal", [
    (("--conf", "2"), "Expected --conf in [0, 1], but got 2"),
    (("--iou", "0"), "Expected --iou in (0, 1], but got 0.0"),
    (("--max-det", "0"), "Expected --max-det >= 1, but got 0"),
    (("--duration", "0"), "Expected --duration > 0, but got 0.0 s"),
    (("--stall-timeout", "0"), "Expected --stall-timeout > 0 s, but got 0.0"),
    (("-o", "out.txt"), "Expected a video file name ending in .mp4, .mkv, .mov, .avi, but got "
                        "out.txt"),
])
def test_a_bad_value_is_refused_before_torch_loads(option, refusal, tmp_path):
    """torch takes seconds to import: live refused --conf 2 only after it, as it does a
    device or class list, which need it. (An RTSP source: nothing is connected to first.)"""
    code = ("import sys; from drivevision.cli import main; code = main(sys.argv[1:]); "
            "print(code, sorted(m for m in ('torch', 'torchvision') if m in sys.modules))")
    run = subprocess.run([sys.executable, "-c", code, "live", "rtsp://127.0.0.1:9/front",
                          *option], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert run.stderr.splitlines() == [f"drivevision: error: {refusal}"]
    assert run.stdout.split() == ["2", "[]"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _screen(text: str, width: int) -> list[str]:
    """The rows a terminal ``width`` columns wide shows after ``text`` (printable characters
    wrapping at the last column, CR, LF, and the ANSI cursor up / erase line / erase below)."""
    rows, r, c = [[]], 0, 0
    for token in re.findall(r"\x1b\[(\d*)([AKJ])|(.)", text, re.DOTALL):
        count, code, char = token
        if code == "A":
            r = max(0, r - int(count or 1))
        elif code in "KJ" and code:
            del rows[r][c:]
            if code == "J":
                del rows[r + 1:]
        elif char == "\r":
            c = 0
        elif char == "\n":
            r, c = r + 1, 0
        else:
            if c >= width:
                r, c = r + 1, 0
            while len(rows) <= r:
                rows.append([])
            rows[r][c:c + 1] = [char] if c < len(rows[r]) else [" "] * (c - len(rows[r])) + [char]
            c += 1
        while len(rows) <= r:
            rows.append([])
    return ["".join(row).rstrip() for row in rows]


def test_status_line_in_a_file_is_a_line_of_its_own_each_time():
    from drivevision.cli.status import StatusLine
    from drivevision.io.frames import Source
    from drivevision.pipeline.stats import SourceStats

    pipeline = types.SimpleNamespace(sources=[Source("cam")], stats=[SourceStats()])
    status = StatusLine(pipeline, stream=io.StringIO())
    status.show()
    status.show()
    line = status.line()  # a log file or pipe: whole lines, no trailing blanks
    assert status.stream.getvalue() == f"{line}\n{line}\n" and line == line.rstrip()


@pytest.mark.parametrize("duration", [0.04, 1.3])
def test_duration_stops_the_run_at_its_end_not_at_the_next_status_line(duration):
    # the end was looked at only with the line, once a second: --duration 40ms ran 1 s
    from drivevision.cli.status import StatusLine
    from drivevision.io.frames import Source
    from drivevision.pipeline.stats import SourceStats

    stopped, shown = [], []
    out = io.StringIO()
    pipeline = types.SimpleNamespace(sources=[Source("cam", live=True)], stats=[SourceStats()],
                                     stop=lambda: stopped.append(time.monotonic()) or shown.append(
                                         out.getvalue().count("\n")))
    start = time.monotonic()
    with StatusLine(pipeline, duration=duration, stream=out):
        deadline = start + duration + 0.6  # the next line was 1 s after the start, or 2 s
        while not stopped and time.monotonic() < deadline:
            time.sleep(0.01)
    assert stopped, f"not stopped {duration + 0.6} s after the start"
    assert stopped[0] - start >= duration and len(stopped) == 1
    assert shown == [int(duration)]  # the line still came once a second before it


@pytest.mark.parametrize("sources, width", [(1, 80), (3, 80), (3, 120), (2, 400)])
def test_status_line_is_rewritten_in_place_on_a_terminal_of_any_width(sources, width,
                                                                       monkeypatch):
    # an 80-column terminal wrapped a longer line, and each refresh left a copy above it
    from drivevision.cli.status import StatusLine
    from drivevision.pipeline.stats import SourceStats

    monkeypatch.setenv("COLUMNS", str(width))
    down = [types.SimpleNamespace(reconnects=2, lost_seconds=7.6,
                                  outage="LOST 6 s, reconnecting") for _ in range(sources)]
    pipeline = types.SimpleNamespace(sources=down, stats=[SourceStats() for _ in down])
    status = StatusLine(pipeline, stream=_Terminal())
    for refresh in range(4):
        for source in down[:1] if refresh == 3 else ():  # back: the line gets shorter
            source.reconnects, source.lost_seconds, source.outage = 3, 9.1, ""
        status.show()
    screen = [row for row in _screen(status.stream.getvalue(), width) if row]
    wide = len(status.line()) >= width  # then a row (or more) per source
    shown = " ".join(status.parts()) if wide else status.line()
    assert all(len(row) < width for row in screen)
    assert " ".join(" ".join(screen).split()) == " ".join(shown.split())  # the last, once
    if sources > 1:
        starts = [row.split()[0] for row in screen if row.startswith("[")]
        assert starts == ([f"[{i}]" for i in range(sources)] if wide else ["[0]"])


@pytest.mark.timeout(90)
def test_two_sources_served_report_only_the_files_written(tmp_path, clip_path, tiny_checkpoint,
                                                          capsys):
    # the second source's --serve sink is stream 1: it is no file, and no "wrote None"
    code = main(["live", clip_path, clip_path, "--serve", "127.0.0.1:0", "-o",
                 str(tmp_path / "out.mp4"), "--weights", tiny_checkpoint, "--model",
                 "tiny-fpn", "--min-size", "96", "--video-preset", "ultrafast"])
    wrote = [line.split(" ", 1)[1] for line in capsys.readouterr().out.splitlines()
             if line.startswith("wrote ")]
    assert code == 0
    assert wrote == [str(tmp_path / "out.0.mp4"), str(tmp_path / "out.1.mp4")]
