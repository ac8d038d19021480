"""``detect --jsonl`` (and ``live``, ``batch``, the viewer's recording: the same writer)
states each frame's size on its line, the size its boxes are in."""

from __future__ import annotations

import json

import numpy as np

from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.io.sinks import JsonlSink


def test_each_jsonl_line_states_its_frame_size(tmp_path):
    with JsonlSink(tmp_path / "d.jsonl", ["car"]) as sink:
        for i, (h, w) in enumerate([(48, 64), (96, 160)]):
            sink.write(Frame(i, 100.0 * i, np.zeros((h, w, 3), np.uint8), 0.0),
                       Detections.empty(), None)
    lines = [json.loads(x) for x in (tmp_path / "d.jsonl").read_text().splitlines()]
    assert [(x["width"], x["height"]) for x in lines] == [(64, 48), (160, 96)]
