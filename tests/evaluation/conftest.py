"""The scoring tests' shared files: one labelled frame with a car and a person, one empty."""

import pytest

from tests.evaluation.helpers import CAR, PERSON, write_preds, write_truth


@pytest.fixture
def files(tmp_path):
    """(ground truth, predictions): the car found at 0.9, the person missed."""
    gt = write_truth(tmp_path / "gt.jsonl", [[("car", CAR), ("person", PERSON)], []],
                     width=320, height=240)
    pred = write_preds(tmp_path / "pred.jsonl", {0: [("car", 0.9, CAR)], 1: []})
    return gt, pred
