"""``drivevision live`` refusing what it cannot do: one line, exit 2, before the model
loads (or torch, for a bad value) where it can."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from drivevision.cli import main


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
