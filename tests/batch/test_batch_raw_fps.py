"""``batch --fps`` on a raw ``.h264`` stream among the inputs (no container: no frame times)
times it at the rate given, as ``detect --fps`` does; without it each keeps its own rate."""

import json

import pytest

from drivevision.batch.work import BatchSettings
from drivevision.cli import main
from drivevision.config import DetectorConfig
from drivevision.synthetic import write_clip
from tests.batch.helpers import WEIGHTS
from tests.cli.test_raw_fps import write_untimed_h264


def _times(path) -> list[float]:
    return [json.loads(line)["timestamp_ms"] for line in path.read_text().splitlines()]


def test_fps_times_a_raw_stream_among_the_inputs_and_videos_keep_their_own(tmp_path, capsys):
    footage = tmp_path / "footage"
    footage.mkdir()
    write_untimed_h264(footage / "cam.h264")
    write_clip(footage / "clip.mp4", 3, width=160, height=96, fps=10, seed=1)
    out = tmp_path / "det"
    code = main(["batch", str(footage), "--out", str(out), "--fps", "30", "--weights", WEIGHTS,
                 "--min-size", "96", "--max-size", "128", "-q"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert _times(out / "cam.jsonl") == pytest.approx([i * 1000 / 30 for i in range(12)],
                                                      abs=0.001)  # before: 40 ms apart
    assert "warning" not in err  # before: --fps applies to image inputs only
    assert _times(out / "clip.jsonl") == pytest.approx([0, 100, 200], abs=0.5)  # its own 10


def test_a_rate_for_raw_streams_is_a_setting_only_when_given():
    config = DetectorConfig(device="cpu", engine="torch", precision="fp32")
    assert "raw_fps" not in BatchSettings(config).key()  # as older manifests: still done
    assert BatchSettings(config, raw_fps=30.0).key()["raw_fps"] == 30.0  # another redoes them
