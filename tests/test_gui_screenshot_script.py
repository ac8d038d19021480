"""scripts/gui_screenshot.sh, run with stand-ins for the X server, the package query and
Python, so that what it would start can be read without a display."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "gui_screenshot.sh"


def stand_in(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return path


def run(tmp_path, source: str) -> list[str]:
    """The Python command lines the script runs for ``SOURCE=source``."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "python.log"
    # every package installed, an X server that only waits, a Python that notes its arguments
    stand_in(bin_dir, "dpkg-query", 'for p; do case "$p" in -*) ;; *) '
                                    'echo "$p install ok installed";; esac; done')
    stand_in(bin_dir, "Xvfb", "exec sleep 30")
    python = stand_in(bin_dir, "python", f'echo "$*" >> "{log}"')
    env = {**os.environ, "PATH": f"{bin_dir}:/usr/bin:/bin", "SOURCE": source,
           "PYTHON": str(python), "DELAY": "0"}
    done = subprocess.run([str(SCRIPT), str(tmp_path / "shot.png")], capture_output=True,
                          text=True, env=env, timeout=60)
    assert done.returncode == 0, done.stderr
    return log.read_text().splitlines()


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/video.mjpg", "rtsp://127.0.0.1:9/live"])
def test_a_stream_url_is_passed_to_the_viewer_untouched(tmp_path, url):
    runs = run(tmp_path, url)
    assert not [line for line in runs if "make_sample" in line], runs
    assert runs[0].startswith(f"-m gui {url} --play --device cpu"), runs


def test_a_missing_clip_is_generated_before_the_viewer_opens_it(tmp_path):
    clip = tmp_path / "clip.mp4"
    runs = run(tmp_path, str(clip))
    assert runs[0] == f"scripts/make_sample.py --out {clip}"
    assert runs[1].startswith(f"-m gui {clip} --play")
