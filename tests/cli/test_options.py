"""Options every command shares: durations with units, --debug, one-line errors."""

from __future__ import annotations

import argparse
import sys

import pytest

from drivevision.cli import main
from drivevision.cli.options import seconds


@pytest.mark.parametrize("text, expected", [
    ("5", 5.0), ("5s", 5.0), ("40ms", 0.04), ("0.5", 0.5), ("2m", 120.0), ("2min", 120.0),
    ("1h", 3600.0), (" 40 ms ", 0.04),
])
def test_durations_take_units_and_a_bare_number_is_seconds(text, expected):
    assert seconds(text) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["", "ms", "fast", "-1", "5 parsecs", "nan", "inf"])
def test_bad_durations_say_what_was_expected(text):
    with pytest.raises(argparse.ArgumentTypeError, match="duration"):
        seconds(text)


def test_old_millisecond_batch_timeout_is_refused_with_a_hint(capsys, clip_path):
    code = main(["live", clip_path, "--batch-timeout", "40", "--model", "tiny-fpn"])
    err = capsys.readouterr().err
    assert code == 2 and "write 40ms for milliseconds" in err and len(err.splitlines()) == 1


def test_a_bug_in_a_stage_shows_its_traceback_with_debug(capsys, monkeypatch, clip_path,
                                                          tiny_checkpoint):
    from drivevision import render

    def broken(*args, **kwargs):
        raise ZeroDivisionError("a bug in drawing")

    monkeypatch.setattr(render, "annotate", broken)
    monkeypatch.setattr("drivevision.pipeline.pipeline.annotate", broken)
    args = ["detect", clip_path, "-o", "out.mp4", "--weights", tiny_checkpoint,
            "--model", "tiny-fpn", "-q"]
    monkeypatch.chdir(clip_path.rsplit("/", 1)[0])
    assert main(args) == 1
    plain = capsys.readouterr().err
    assert "Traceback" not in plain and "render stage failed: ZeroDivisionError" in plain
    assert "--debug" in plain
    assert main(["--debug", *args]) == 1
    debug = capsys.readouterr().err
    assert "Traceback" in debug and "in broken" in debug
    assert debug.strip().splitlines()[-1].startswith("drivevision: error: render stage failed")
    assert main([*args, "--debug"]) == 1  # where the hint leads a user to add it
    assert "Traceback" in capsys.readouterr().err
    monkeypatch.setenv("DRIVEVISION_DEBUG", "1")
    assert main(args) == 1 and "Traceback" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["detect", "batch", "export", "bench", "eval", "view",
                                     "live", "cache"])
def test_every_command_takes_debug_after_its_name(capsys, command):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "--debug" in capsys.readouterr().out


def test_the_command_starts_without_loading_torch():
    """So Ctrl-C during start-up meets the command's own handler, and --help is instant."""
    import subprocess

    code = ("import sys; import drivevision.cli; "
            "print(sorted(m for m in ('torch', 'cv2', 'av', 'numpy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
