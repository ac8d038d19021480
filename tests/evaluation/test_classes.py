"""Per-class precision, recall and counts and the confusion matrix on hand-made cases whose
every number is worked out below, through ``evaluate`` and through ``eval --report``."""

from __future__ import annotations

import json

import pytest

from drivevision.cli import main
from drivevision.evaluation import evaluate, read_predictions, read_truth
from tests.evaluation.helpers import write_preds, write_truth

A, B, P, Q = [0, 0, 100, 100], [200, 0, 300, 100], [0, 200, 50, 300], [0, 0, 50, 100]
EMPTY, EMPTY2 = [400, 0, 450, 100], [400, 200, 450, 300]
TRUTH = [[("car", A), ("car", B), ("person", P)], [("person", Q)]]
PREDS = {0: [("car", 0.9, A),           # car found
             ("car", 0.8, P),           # the person taken for a car
             ("person", 0.7, EMPTY),    # a person where there is nothing
             ("car", 0.3, B)],          # the second car, found with a low score
         1: [("person", 0.6, Q),        # person found
             ("car", 0.2, EMPTY2)]}     # below the best-F1 threshold: in no P, R or matrix
# Mean F1 over car and person (F1 = 2 TP / (detections + ground truth)) by threshold:
#   0.9: (2/3 + 0)/2 = .33   0.8: (2/4 + 0)/2 = .25   0.7: (.5 + 0)/2 = .25
#   0.6: (.5 + 2/4)/2 = .5   0.3: (4/5 + .5)/2 = .65  0.2: (4/6 + .5)/2 = .58   -> 0.3
# At 0.3: car TP 2 of 3 detections, 2 cars; person TP 1 of 2 detections, 2 people.


def score(tmp_path, truth, preds):
    gt = read_truth(write_truth(tmp_path / "gt.jsonl", truth, width=500, height=400))
    return evaluate(gt, read_predictions(write_preds(tmp_path / "pred.jsonl", preds)))


def test_precision_and_recall_per_class_at_the_best_f1_threshold(tmp_path):
    m = score(tmp_path, TRUTH, PREDS).metrics
    assert m["conf_best_f1"] == pytest.approx(0.3)
    car, person = m["classes"]["car"], m["classes"]["person"]
    assert (car["gt_boxes"], car["detections"]) == (2, 4)  # every detection is counted
    assert (person["gt_boxes"], person["detections"]) == (2, 2)
    assert [car["precision"], car["recall"]] == pytest.approx([2 / 3, 1.0])
    assert [person["precision"], person["recall"]] == pytest.approx([1 / 2, 1 / 2])
    assert car["AP"] == pytest.approx(m["per_class"]["car"])  # the same AP as before


def test_the_confusion_matrix_counts_each_box_once_at_iou_50(tmp_path):
    cm = score(tmp_path, TRUTH, PREDS).confusion
    # rows predicted car, person, background; columns true car, person, background
    assert cm.tolist() == [[2, 1, 0],   # 2 cars found, the person taken for a car
                           [0, 1, 1],   # 1 person found, 1 where there is nothing
                           [0, 0, 0]]   # nothing missed at 0.3 (0.2's box left out)


def test_matching_is_one_to_one_and_greedy_by_iou(tmp_path):
    truck, c = [0, 0, 100, 120], [200, 0, 300, 100]
    truth = [[("car", A), ("truck", truck), ("car", c)]]
    # the truck box overlaps car A by IoU 100/118 = .85 and the truck by 118/120 = .98, the
    # second box on A (IoU .99) the truck by .83: taken highest IoU first, A goes to the car
    # box on it (1.0), the truck to the truck box, and the second box finds both taken
    preds = {0: [("truck", 0.9, [0, 0, 100, 118]), ("car", 0.85, A),
                 ("car", 0.8, [0, 0, 100, 99]), ("car", 0.7, c)]}
    # mean F1: 0.9 (0 + 1)/2, 0.85 (2/3 + 1)/2, 0.8 (2/4 + 1)/2, 0.7 (4/5 + 1)/2 -> 0.7
    ev = score(tmp_path, truth, preds)
    assert ev.metrics["conf_best_f1"] == pytest.approx(0.7)
    assert ev.confusion.tolist() == [[2, 0, 1], [0, 1, 0], [0, 0, 0]]
    assert ev.metrics["classes"]["car"]["precision"] == pytest.approx(2 / 3)


def test_no_detection_at_all_leaves_precision_undefined_and_everything_missed(tmp_path):
    ev = score(tmp_path, TRUTH, {0: [], 1: []})
    assert ev.metrics["conf_best_f1"] is None
    assert ev.metrics["classes"]["car"] == {"gt_boxes": 2, "detections": 0, "precision": None,
                                            "recall": 0.0, "AP50": 0.0, "AP": 0.0}
    assert ev.confusion[2].tolist() == [2, 2, 0] and not ev.confusion[:2].any()


def test_the_report_tables_them_and_metrics_json_holds_them(tmp_path, capsys):
    gt = write_truth(tmp_path / "gt.jsonl", TRUTH, width=500, height=400)
    pred = write_preds(tmp_path / "pred.jsonl", PREDS)
    report = tmp_path / "rep"
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--report", str(report)]) == 0
    summary = (report / "summary.md").read_text()
    assert summary == capsys.readouterr().out.rsplit("wrote ", 1)[0]  # what was printed
    assert "detections scoring 0.300 and up" in summary
    prose = [line for line in summary.splitlines() if not line.startswith(("|", "# "))]
    assert max(map(len, prose)) <= 80  # an 80-column terminal shows it as it is written
    assert "| car | 2 | 4 | 0.667 | 1.000 |" in summary
    assert "| person | 2 | 2 | 0.500 | 0.500 |" in summary
    assert "| predicted / true | car | person | background |" in summary
    assert "| car | 2 | 1 | 0 |\n| person | 0 | 1 | 1 |\n| background | 0 | 0 | 0 |" in summary
    saved = json.loads((report / "metrics.json").read_text())
    assert saved["confusion_matrix"] == {"labels": ["car", "person", "background"],
                                         "rows": "predicted",
                                         "counts": [[2, 1, 0], [0, 1, 1], [0, 0, 0]]}
    assert saved["classes"]["person"]["recall"] == pytest.approx(0.5)
    assert (report / "confusion-matrix.png").read_bytes()[:4] == b"\x89PNG"


def test_a_box_of_the_wrong_class_is_one_cross_class_cell_not_a_miss_and_a_false_positive(
        tmp_path):
    truck = [200, 0, 300, 120]
    truth = [[("car", A), ("truck", truck)]]
    ev = score(tmp_path, truth, {0: [("truck", 0.9, A), ("truck", 0.8, truck)]})
    # rows predicted car, truck, background; columns true car, truck, background
    assert ev.confusion.tolist() == [[0, 0, 0], [1, 1, 0], [0, 0, 0]]


def test_a_box_of_a_class_the_ground_truth_lacks_still_shows_what_it_was_taken_for(tmp_path):
    # the ground truth labels no bus: AP leaves bus out, but the matrix shows the car taken
    # for a bus (row bus, column car) and the bus box on nothing, not the car as just missed
    truth = [[("car", A), ("car", B)]]
    ev = score(tmp_path, truth, {0: [("bus", 0.9, A), ("car", 0.8, B), ("bus", 0.85, EMPTY)]})
    # the threshold comes from car alone: its one detection, 0.8; both bus boxes score more
    assert ev.metrics["classes"]["car"]["recall"] == pytest.approx(0.5)  # AP, P, R: car only
    assert "bus" not in ev.metrics["classes"]
    assert ev.notes == ["left out of AP, P and R (the confusion matrix counts them) "
                        "predictions of classes the ground truth does not label: bus"]
    assert ev.confusion_labels == ("car", "bus", "background")
    assert ev.confusion.tolist() == [[1, 0, 0],   # the second car found
                                     [1, 0, 1],   # the first car taken for a bus; a bus on nothing
                                     [0, 0, 0]]   # no car missed
    from drivevision.evaluation.report import summary_markdown

    summary = summary_markdown(ev, "bus")
    assert "| predicted / true | car | bus | background |" in summary
    assert "| bus | 1 | 0 | 1 |" in summary


def test_a_ground_truth_class_no_prediction_is_named_gets_the_class_map_that_scores_it(
        tmp_path, capsys):
    # the ground truth says pedestrian where the model says person, traffic_light where it
    # says traffic light: both score AP 0 unless mapped (the traffic light box is on nothing,
    # so only its name tells), and the note gives the --class-map that scores them
    truth = [[("car", A), ("pedestrian", P), ("pedestrian", Q), ("traffic_light", EMPTY)]]
    preds = {0: [("car", 0.9, A), ("person", 0.8, P), ("person", 0.7, Q),
                 ("traffic light", 0.6, EMPTY2)]}
    ev = score(tmp_path, truth, preds)
    assert ev.metrics["per_class"] == pytest.approx(
        {"car": 1.0, "pedestrian": 0.0, "traffic_light": 0.0})
    assert ev.notes[1:] == [
        "no prediction is named pedestrian or traffic_light, so their AP is 0, but person "
        "boxes find 2 of the 2 pedestrian objects, and traffic light is traffic_light written "
        "otherwise: to score them as those, --class-map "
        "\"pedestrian=person,traffic_light=traffic light\""]
    gt, pred = tmp_path / "gt.jsonl", write_preds(tmp_path / "pred.jsonl", preds)
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", "--class-map",
                 "pedestrian=person,traffic_light=traffic light"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["per_class"] == pytest.approx({"car": 1.0, "pedestrian": 1.0,
                                              "traffic_light": 0.0})
    assert not [n for n in out["notes"] if "no prediction is named" in n]
