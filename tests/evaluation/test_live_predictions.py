"""A ``live --jsonl`` file holds, beside a line per frame, a ``{"gap": {...}}`` line per
stream outage. ``eval --pred`` scores such a file on its frames (the outage lines name no
frame), where it stopped at the first outage line: 'expected an object with an integer
"frame"'."""

from __future__ import annotations

import json
import time

import numpy as np

from drivevision.cli import main
from drivevision.detections import Detections
from drivevision.io.frames import Frame, Gap
from drivevision.io.live_sinks import GapJsonlSink
from drivevision.labels import COCO_NAMES
from tests.evaluation.helpers import CAR, PERSON, write_truth

CAR_ID, PERSON_ID = COCO_NAMES.index("car"), COCO_NAMES.index("person")


def live_run(path, indices, gaps):
    """What ``live --jsonl`` writes for ``indices`` (each frame finding the car and the
    person), with the outages ``gaps``."""
    found = Detections(np.array([CAR, PERSON], np.float32), np.array([0.9, 0.8], np.float32),
                       np.array([CAR_ID, PERSON_ID], np.int32))
    with GapJsonlSink(path, COCO_NAMES, gaps) as sink:
        for i in indices:
            image = np.zeros((240, 320, 3), np.uint8)
            sink.write(Frame(i, i * 100.0, image, time.monotonic()), found, None)
    return path


def test_a_live_run_with_an_outage_is_scored_on_the_frames_it_has(tmp_path, capsys):
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", CAR), ("person", PERSON)]] * 6)
    outage = Gap(1, 4, 100.0, 400.0, "no frame for 5 s", 2)
    pred = live_run(tmp_path / "live.jsonl", [0, 1, 4, 5], [outage])
    lines = [json.loads(line) for line in pred.read_text().splitlines()]
    assert [next(iter(line)) for line in lines] == ["frame", "frame", "gap", "frame", "frame"]
    code = main(["eval", "--gt", str(gt), "--pred", str(pred), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert json.loads(out)["AP50"] == 1.0
    assert "scored 4 of 6 labelled frames" in err
