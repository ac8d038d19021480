"""``--calib`` footage: checked (its container opened) once, before any slow work, and
refused in one line when it cannot be read."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from drivevision.cli import main
from drivevision.errors import SourceError
from drivevision.io import calibration, sources

FIXTURE = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"
SAMPLE = Path(__file__).parents[2] / "assets" / "sample.mp4"


@pytest.fixture
def opened(monkeypatch) -> list[str]:
    """The sources opened, by the name they were opened with."""
    names: list[str] = []
    real = sources.open_source

    def counting(uri, *args, **kwargs):
        names.append(str(uri))
        return real(uri, *args, **kwargs)

    monkeypatch.setattr(sources, "open_source", counting)
    return names


def test_checking_then_digesting_a_clip_opens_it_once(tmp_path, opened):
    clip = tmp_path / "drive.mp4"
    shutil.copy(SAMPLE, clip)
    calibration.check_calibration(str(clip))
    digest = calibration.calibration_digest(str(clip), 16)
    assert opened == [str(clip)] and len(digest) == 16


def test_a_clip_changed_since_its_check_is_opened_again(tmp_path, opened, clip_path):
    clip = tmp_path / "drive.mp4"
    shutil.copy(SAMPLE, clip)
    calibration.check_calibration(str(clip))
    shutil.copy(clip_path, clip)  # another clip under the same name
    calibration.check_calibration(str(clip))
    assert opened == [str(clip)] * 2


def test_a_clip_that_cannot_be_read_is_refused_every_time(tmp_path, opened):
    clip = tmp_path / "drive.mp4"
    clip.write_text("not a video")
    for _ in range(2):
        with pytest.raises(SourceError, match=f"^Expected --calib to be a video file or a "
                           f"folder of images from your own cameras, but cannot open {clip} "):
            calibration.check_calibration(str(clip))
    assert opened == [str(clip)] * 2  # a failure is not remembered


@pytest.mark.slow
def test_detect_int8_opens_the_calibration_clip_once_to_check_and_once_to_read(
        tmp_path, opened, capsys, monkeypatch):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path / "cache"))
    clip = tmp_path / "drive.mp4"
    shutil.copy(SAMPLE, clip)
    code = main(["detect", str(SAMPLE), "--jsonl", str(tmp_path / "d.jsonl"), "--weights",
                 str(FIXTURE), "--engine", "onnx", "--precision", "int8", "--calib",
                 str(clip), "--calib-frames", "2", "--min-size", "96", "--max-size", "160",
                 "--end", "0.2"])
    assert code == 0, capsys.readouterr().err
    assert opened.count(str(clip)) == 2
