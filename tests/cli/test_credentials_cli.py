"""A camera's URL holds its password (``rtsp://admin:s3cret@cam/live``, ``?token=...``):
``live`` and ``detect`` open it with them, and neither says nor writes them anywhere (the
source is named ``http://admin:***@...?token=***``)."""

from __future__ import annotations

import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from live_process import Lines, kill
from mjpeg_server import start_process

from drivevision.cli import main

SECRETS = ("s3cret", "t0ken")


def credentialed(port: int) -> tuple[str, str]:
    """The test stream's URL with a password and a token, and the same as shown."""
    return (f"http://admin:s3cret@127.0.0.1:{port}/stream?token=t0ken&channel=1",
            f"http://admin:***@127.0.0.1:{port}/stream?token=***&channel=1")


def run_command(command: str, url: str, checkpoint: str, *options: str):
    cmd = [sys.executable, "-m", "drivevision", command, url, "--weights", checkpoint,
           "--model", "tiny-fpn", "--min-size", "96", "--max-size", "128", *options]
    run = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return run, Lines(run.stderr), Lines(run.stdout)


def files_holding_secrets(*folders: Path) -> list[Path]:
    return [p for folder in folders for p in folder.rglob("*") if p.is_file()
            and any(s.encode() in p.read_bytes() for s in SECRETS)]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_live_on_a_credentialed_stream_that_is_lost_never_shows_or_writes_its_password(
        tmp_path, tiny_checkpoint):
    server, port = start_process(fps=30)
    url, shown = credentialed(port)
    run, err, out = run_command("live", url, tiny_checkpoint, "-o", str(tmp_path / "v.mp4"),
                                "--jsonl", str(tmp_path / "d.jsonl"), "--stall-timeout", "1",
                                "--max-reconnects", "1", "--duration", "60")
    try:
        err.wait_for(r"det +\d", 60)  # frames came: the credentials were sent
        kill(server)
        assert run.wait(60) == 3  # gave up: a warning naming the source, exit 3
    finally:
        kill(run, server)
    time.sleep(0.2)  # the pipes' last lines
    said = "\n".join(out.lines + err.lines)
    assert f"[0] {shown}: " in said  # the summary
    assert f"drivevision: warning: {shown}: " in said and "gave up after" in said
    assert not [s for s in SECRETS if s in said], said
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d.jsonl", "v.mp4"]
    assert files_holding_secrets(tmp_path) == []


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_detect_on_a_credentialed_stream_names_it_masked_and_writes_no_password(
        tiny_checkpoint):
    server, port = start_process(fps=30)
    url, shown = credentialed(port)
    run, err, out = run_command("detect", url, tiny_checkpoint)  # into runs/detect/stream
    try:
        err.wait_for(rf"^{re.escape(shown)}: engine torch", 60)
        time.sleep(1.0)
        run.send_signal(signal.SIGINT)
        assert run.wait(30) == 130
    finally:
        kill(run, server)
    time.sleep(0.2)
    said = "\n".join(out.lines + err.lines)
    assert "wrote runs/detect/stream/stream.jsonl" in said
    assert not [s for s in SECRETS if s in said], said
    assert files_holding_secrets(Path.cwd()) == []


@pytest.mark.parametrize("command, options", [("live", ["--duration", "5"]), ("detect", [])])
def test_a_credentialed_url_that_cannot_be_opened_is_one_line_without_the_password(
        command, options, capsys, tiny_checkpoint):
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        url, shown = credentialed(closed.getsockname()[1])
        code = main([command, url.replace("http://", "rtsp://"), "--weights", tiny_checkpoint,
                     "--model", "tiny-fpn", *options])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err == (f"drivevision: error: Cannot open "
                            f"{shown.replace('http://', 'rtsp://')}: no stream there "
                            "(connection refused or timed out, or an answer this OpenCV's "
                            "FFmpeg cannot decode)\n")
    assert not list(Path.cwd().iterdir())  # no runs/ folder left by detect


@pytest.mark.parametrize("command, options", [("live", ["--duration", "5"]), ("detect", [])])
def test_a_password_of_digits_then_a_bare_hash_is_refused_not_shown_nor_opened(
        command, options, capsys, tiny_checkpoint):
    with socket.socket() as closed:  # bound, not listening: what the user part reads as
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        code = main([command, f"rtsp://127.0.0.1:{port}#s3cret@cam/live", "--weights",
                     tiny_checkpoint, "--model", "tiny-fpn", *options])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.startswith(  # was: Cannot open rtsp://127.0.0.1:PORT#s3cret@cam/live
        "drivevision: error: Expected rtsp://USER:PASSWORD@HOST:PORT/PATH, but got "
        "'rtsp://127.0.0.1:***@cam/live': a /, ? or # in a password must be written "
        "percent-encoded (%2F, %3F, %23)")
    assert "s3cret" not in captured.err and not list(Path.cwd().iterdir())
