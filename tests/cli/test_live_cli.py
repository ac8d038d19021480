"""``drivevision live`` as a user runs it: a real stream, --serve, a server restart, Ctrl-C;
a file in real time; what it says of its inputs and outputs."""

from __future__ import annotations

import contextlib
import json
import signal
import time
import urllib.request

import cv2
import pytest
from live_process import kill, start_live
from mjpeg_server import read_parts, start_process

from drivevision.cli import main
from tests.standins import x264_options


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
