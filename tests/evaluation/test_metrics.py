"""COCO box metrics on hand-made cases: the values a person can work out, and the same
numbers pycocotools gives when run by its documented path on the same boxes."""

from __future__ import annotations

import pytest

from drivevision.evaluation import evaluate, read_predictions, read_truth
from tests.evaluation.helpers import pycocotools_stats, write_preds, write_truth

KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl")
STAT = {"AP": 0, "AP50": 1, "AP75": 2, "APs": 3, "APm": 4, "APl": 5, "AR100": 8}
CAR, PERSON = [10, 10, 110, 110], [200, 20, 240, 120]


def score(tmp_path, truth, preds, **kw):
    gt = read_truth(write_truth(tmp_path / "gt.jsonl", truth))
    return evaluate(gt, read_predictions(write_preds(tmp_path / "pred.jsonl", preds)), **kw)


def assert_same_as_pycocotools(metrics, truth, preds):
    stats = pycocotools_stats(truth, preds)
    for key, i in STAT.items():
        expected = None if stats[i] < 0 else stats[i]
        assert metrics[key] == pytest.approx(expected, abs=1e-6), key


def shifted(box, dx):
    return [box[0] + dx, box[1], box[2] + dx, box[3]]


def test_perfect_predictions_score_one(tmp_path):
    truth = [[("car", CAR), ("person", PERSON)], [("car", shifted(CAR, 50))]]
    preds = {0: [("car", 0.9, CAR), ("person", 0.8, PERSON)], 1: [("car", 0.7, shifted(CAR, 50))]}
    m = score(tmp_path, truth, preds).metrics
    assert [m[k] for k in ("AP", "AP50", "AP75", "AR100")] == pytest.approx([1.0] * 4)
    assert m["per_class"] == pytest.approx({"car": 1.0, "person": 1.0})
    assert_same_as_pycocotools(m, truth, preds)


def test_a_printed_evaluation_shows_the_metrics_not_the_curves(tmp_path):
    truth = [[("car", CAR), ("person", PERSON)]]
    evaluation = score(tmp_path, truth, {0: [("car", 0.9, CAR)]})
    assert len(evaluation.curves["car"]["iou50"]) == 101  # kept, only not printed
    text = repr(evaluation)
    assert text.startswith("Evaluation(metrics={'AP': ") and "curves" not in text
    assert len(text) < 1000


def test_a_box_shifted_to_iou_two_thirds_passes_at_50_and_fails_at_75(tmp_path):
    # a 100 px square moved 20 px: overlap 80 x 100 over union 120 x 100, IoU 0.667, a hit
    # at the thresholds 0.5, 0.55, 0.6 and 0.65, a miss at the six above
    truth = [[("car", CAR)]]
    preds = {0: [("car", 0.9, shifted(CAR, 20))]}
    m = score(tmp_path, truth, preds).metrics
    assert (m["AP50"], m["AP75"]) == pytest.approx((1.0, 0.0))
    assert m["AP"] == pytest.approx(0.4)
    assert_same_as_pycocotools(m, truth, preds)


def test_a_class_never_predicted_scores_zero_and_halves_the_mean(tmp_path):
    truth = [[("car", CAR), ("person", PERSON)]]
    preds = {0: [("car", 0.9, CAR)]}
    m = score(tmp_path, truth, preds).metrics
    assert m["per_class"] == pytest.approx({"car": 1.0, "person": 0.0})
    assert m["AP"] == pytest.approx(0.5)
    assert_same_as_pycocotools(m, truth, preds)


def test_a_frame_missing_from_the_predictions_counts_as_missed(tmp_path):
    truth = [[("car", CAR)], [("car", CAR)]]
    preds = {0: [("car", 0.9, CAR)]}  # frame 1 absent: its car is missed
    m = score(tmp_path, truth, preds).metrics
    # precision 1 at COCO's recall points 0.00 .. 0.50 (51 of 101), none after
    assert m["AP50"] == pytest.approx(51 / 101)
    assert m["AR100"] == pytest.approx(0.5)
    assert_same_as_pycocotools(m, truth, preds)


def test_a_false_positive_on_an_empty_frame_costs_only_when_it_outscores(tmp_path):
    truth = [[("car", CAR)], []]
    low = score(tmp_path, truth, {0: [("car", 0.9, CAR)], 1: [("car", 0.5, CAR)]}).metrics
    assert low["AP"] == pytest.approx(1.0)
    preds = {0: [("car", 0.5, CAR)], 1: [("car", 0.9, CAR)]}
    high = score(tmp_path, truth, preds).metrics
    assert high["AP"] == pytest.approx(0.5)  # precision 1/2 at every recall point
    assert_same_as_pycocotools(high, truth, preds)


def test_a_duplicate_detection_is_a_false_positive(tmp_path):
    other = shifted(CAR, 150)
    truth = [[("car", CAR), ("car", other)]]
    preds = {0: [("car", 0.9, CAR), ("car", 0.8, shifted(CAR, 1)), ("car", 0.7, other)]}
    m = score(tmp_path, truth, preds).metrics
    # precision 1 up to recall 0.5 (51 points), then 2/3 (50 points)
    assert m["AP50"] == pytest.approx((51 + 50 * 2 / 3) / 101)
    assert_same_as_pycocotools(m, truth, preds)


def test_sizes_split_small_medium_large_as_coco_does(tmp_path):
    small, medium = [0, 0, 20, 20], [300, 300, 350, 350]  # 400 and 2,500 px^2
    truth = [[("car", small), ("car", medium), ("car", CAR)]]
    preds = {0: [("car", 0.9, small), ("car", 0.8, shifted(medium, 30)), ("car", 0.7, CAR)]}
    m = score(tmp_path, truth, preds).metrics
    assert (m["APs"], m["APm"], m["APl"]) == pytest.approx((1.0, 0.0, 1.0))
    assert_same_as_pycocotools(m, truth, preds)


def test_class_names_match_in_any_case_and_through_a_class_map(tmp_path):
    truth = [[("Vehicle", CAR), ("person", PERSON)]]
    preds = {0: [("CAR", 0.9, CAR), ("Person", 0.8, PERSON), ("dog", 0.99, CAR)]}
    result = score(tmp_path, truth, preds, class_map={"car": "vehicle"})
    assert result.metrics["per_class"] == pytest.approx({"vehicle": 1.0, "person": 1.0})
    assert any("dog" in note for note in result.notes)
    unmapped = score(tmp_path, truth, preds).metrics
    assert unmapped["per_class"] == pytest.approx({"vehicle": 0.0, "person": 1.0})


def test_ignored_ground_truth_is_neither_missed_nor_a_false_positive(tmp_path):
    (tmp_path / "gt.jsonl").write_text(
        '{"frame": 0, "boxes": [[10, 10, 110, 110], [200, 20, 240, 120]], '
        '"labels": ["car", "car"], "ignore": [false, true]}\n')
    gt = read_truth(tmp_path / "gt.jsonl")
    for dets in ([("car", 0.9, CAR)], [("car", 0.9, CAR), ("car", 0.95, PERSON)]):
        preds = read_predictions(write_preds(tmp_path / "p.jsonl", {0: dets}))
        assert evaluate(gt, preds).metrics["AP"] == pytest.approx(1.0)


def test_files_given_as_paths_or_the_two_swapped_are_refused_naming_the_fix(tmp_path):
    gt_path = write_truth(tmp_path / "gt.jsonl", [[("car", CAR)]])
    pred_path = write_preds(tmp_path / "pred.jsonl", {0: [("car", 0.9, CAR)]})
    gt, preds = read_truth(gt_path), read_predictions(pred_path)
    with pytest.raises(TypeError, match=r"found a path \('.*gt.jsonl'\); read it with "
                                        r"read_truth\(path\)"):
        evaluate(str(gt_path), preds)
    with pytest.raises(TypeError, match=r"found a path .*; read it with read_predictions"):
        evaluate(gt, pred_path)
    with pytest.raises(ValueError, match=r"gt.jsonl has boxes without scores, as ground truth "
                                         r"has: evaluate takes the ground truth first"):
        evaluate(preds, gt)
    assert evaluate(gt, preds).metrics["AP"] == pytest.approx(1.0)
