"""COCO ground truth of a folder of images, scored against ``detect --jsonl`` of a folder:
its lines name their images (``"file"``), and the frames are matched by those names."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from drivevision.cli import main
from tests.evaluation.helpers import CAR, PERSON

DEMO = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")


def coco(path, labelled: dict[str, tuple[str, list]]):
    """A COCO file labelling one box in each named image of a 320x240 folder."""
    cats = {"car": 1, "person": 2}
    images = [{"id": 50 + i, "file_name": f"images/{name}", "width": 320, "height": 240}
              for i, name in enumerate(labelled)]
    anns = [{"id": i + 1, "image_id": 50 + i, "category_id": cats[label], "iscrowd": 0,
             "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
             "area": (b[2] - b[0]) * (b[3] - b[1])}
            for i, (label, b) in enumerate(labelled.values())]
    path.write_text(json.dumps({"images": images, "annotations": anns, "categories": [
        {"id": i, "name": n} for n, i in cats.items()]}))
    return path


def folder_run(path, found: dict[str, list]):
    """``detect FOLDER --jsonl`` of a folder: a line per image in natural order, each
    naming its image."""
    with open(path, "w") as f:
        for frame, (name, dets) in enumerate(found.items()):
            f.write(json.dumps({"frame": frame, "file": name, "detections": [
                {"class_id": 0, "class_name": n, "score": 0.9, "box": b} for n, b in dets]})
                + "\n")
    return path


def score(capsys, gt, pred, *options):
    code = main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", *options])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


@pytest.fixture
def subset(tmp_path):
    """Ground truth of b.png and d.png only, and a run on the whole folder a-d, which found
    both objects exactly (and a person in c.png, which is not labelled)."""
    gt = coco(tmp_path / "gt.json", {"b.png": ("car", CAR), "d.png": ("person", PERSON)})
    pred = folder_run(tmp_path / "det.jsonl", {"a.png": [], "b.png": [("car", CAR)],
                                               "c.png": [("person", PERSON)],
                                               "d.png": [("person", PERSON)]})
    return gt, pred


def test_a_folder_run_is_scored_against_the_images_of_the_same_name(subset, capsys):
    gt, pred = subset
    code, metrics, err = score(capsys, *subset, "--allow-unlabelled")
    assert code == 0, err
    assert metrics["AP"] == pytest.approx(1.0) and metrics["frames"] == 2
    assert metrics["per_class"] == pytest.approx({"car": 1.0, "person": 1.0})
    assert "left out 2 predicted images without ground truth (a.png, c.png)" in err


def test_the_images_the_ground_truth_lacks_are_named(subset, capsys):
    gt, pred = subset
    code, _, err = score(capsys, gt, pred)
    assert code == 2 and err.strip().endswith(
        f"{pred} has 2 images that {gt} does not label (a.png, c.png); pass "
        "--allow-unlabelled to leave them out")


def test_a_run_on_another_folder_is_refused(tmp_path, capsys):
    gt = coco(tmp_path / "gt.json", {"b.png": ("car", CAR)})
    pred = folder_run(tmp_path / "det.jsonl", {"x.png": [("car", CAR)]})
    code, _, err = score(capsys, gt, pred, "--allow-unlabelled")
    assert code == 2 and err.strip().endswith(
        f"{pred} has no image of {gt} (it names x.png, the ground truth holds b.png): "
        "predictions are matched to its images by file name")


def _no_boxes_jsonl(tmp_path):
    path = tmp_path / "gt.jsonl"
    path.write_text("".join(json.dumps({"frame": f, "boxes": [], "labels": []}) + "\n"
                            for f in range(3)))
    return path, "3 frames, none with a box"


def _coco_changed(tmp_path, change):
    path = coco(tmp_path / "gt.json", {"b.png": ("car", CAR)})
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return path


def _no_annotations_coco(tmp_path):
    return _coco_changed(tmp_path, lambda d: d.update(annotations=[])), \
        "1 image, none with a box"


def _only_crowd_coco(tmp_path):
    return _coco_changed(tmp_path, lambda d: d["annotations"][0].update(iscrowd=1)), \
        "1 image, none with a box that is not ignored"


@pytest.mark.parametrize("make", [_no_boxes_jsonl, _no_annotations_coco, _only_crowd_coco])
def test_ground_truth_without_objects_is_refused_in_one_line(tmp_path, capsys, make):
    # nothing to find: AP, P and R are undefined (was: every metric "-" and the detections
    # in no row of the confusion matrix, or an error asking for a --class-map)
    gt, counts = make(tmp_path)
    pred = folder_run(tmp_path / "det.jsonl", {"b.png": [("car", CAR)]})
    code, _, err = score(capsys, gt, pred, "--allow-unlabelled")
    assert code == 2 and err.strip().splitlines() == [
        f"drivevision: error: {gt} labels no object ({counts}): AP, precision and recall "
        "measure the objects found, so there is nothing to score: the wrong file, or one "
        "exported before any box was drawn?"]


def test_a_coco_bbox_written_as_corners_is_refused_naming_the_annotation(tmp_path, capsys):
    # [x1, y1, x2, y2] where COCO has [x, y, width, height]: read as COCO's, the box of the
    # car at 200-300 reaches x 500, past the 320 px image (was: scored, AP near 0)
    gt = _coco_changed(tmp_path, lambda d: d["annotations"][0].update(bbox=[200, 20, 300, 120]))
    pred = folder_run(tmp_path / "det.jsonl", {"b.png": [("car", [200, 20, 300, 120])]})
    code, _, err = score(capsys, gt, pred)
    assert code == 2 and err.strip().splitlines() == [
        f"drivevision: error: {gt} annotation 1: bbox [200, 20, 300, 120] reaches (500, 140), "
        "past the 320x240 image b.png: is it [x1, y1, x2, y2]? COCO's bbox is [x, y, "
        "width, height]"]


def test_a_box_a_pixel_past_the_image_is_read(tmp_path, capsys):
    # exports round: a box ending at 320.6 in a 320 px image is the image's edge
    gt = _coco_changed(tmp_path, lambda d: d["annotations"][0].update(bbox=[220, 20, 100.6, 100]))
    pred = folder_run(tmp_path / "det.jsonl", {"b.png": [("car", [220, 20, 320, 120])]})
    code, metrics, err = score(capsys, gt, pred)
    assert code == 0 and metrics["AP"] == pytest.approx(1.0), err


def test_coco_results_are_scored_against_the_coco_file_whose_ids_they_name(tmp_path, capsys):
    # as pycocotools scores them (loadRes): the car found, the person's image without a
    # result, so a miss; category ids and image ids are the ground truth's
    gt = coco(tmp_path / "gt.json", {"b.png": ("car", CAR), "d.png": ("person", PERSON)})
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 50, "category_id": 1, "score": 0.9,
                                    "bbox": [CAR[0], CAR[1], CAR[2] - CAR[0], CAR[3] - CAR[1]]}]))
    code, metrics, err = score(capsys, gt, results)
    assert code == 0, err
    assert metrics["per_class"] == pytest.approx({"car": 1.0, "person": 0.0})
    assert metrics["frames"] == 2 and metrics["notes"] == []
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    truth = COCO(str(gt))
    ev = COCOeval(truth, truth.loadRes(str(results)), "bbox")
    ev.evaluate()
    ev.accumulate()
    ev.summarize()
    assert metrics["AP"] == pytest.approx(ev.stats[0])


def test_coco_results_against_other_ground_truth_are_refused(tmp_path, capsys, subset):
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": 1, "category_id": 1, "score": 0.9,
                                    "bbox": [1, 1, 5, 5]}]))
    jsonl = tmp_path / "gt.jsonl"
    jsonl.write_text('{"frame": 0, "boxes": [[1, 1, 6, 6]], "labels": ["car"]}\n')
    code, _, err = score(capsys, jsonl, results)
    assert code == 2 and err.strip().endswith(
        f"{results} holds COCO results (a list of image_id, category_id, bbox [x, y, w, h] "
        f"and score), whose ids are those of a COCO ground truth: give that .json as --gt "
        f"(not {jsonl})")
    code, _, err = score(capsys, subset[0], results)
    assert code == 2 and "result 0: expected an \"image_id\" of an image" in err


def test_an_input_folder_holding_more_images_than_were_labelled_scores_those(
        tmp_path, capsys):
    # as a --pred run on that folder scores: by name, the others left out with a note (was:
    # refused, the folder had to hold exactly the images of the ground truth)
    import cv2
    import numpy as np

    folder = tmp_path / "shots"
    folder.mkdir()
    for name in ("a.png", "b.png", "c.png"):
        cv2.imwrite(str(folder / name), np.full((240, 320, 3), 90, np.uint8))
    gt = coco(tmp_path / "gt.json", {"b.png": ("car", CAR)})
    run = ["eval", "--gt", str(gt), str(folder), "--weights", DEMO, "--device", "cpu",
           "--engines", "torch", "--precision", "fp32", "--warmup", "0", "--json"]
    assert main(run) == 2
    assert capsys.readouterr().err.strip().endswith(
        "has 2 images that " + str(gt) + " does not label (a.png, c.png); pass "
        "--allow-unlabelled to leave them out")
    assert main([*run, "--allow-unlabelled"]) == 0
    out, err = capsys.readouterr()
    [row] = json.loads(out)["results"]
    assert row["frames"] == 1 and row["gt_boxes"] == 1
    assert "left out 2 predicted images without ground truth (a.png, c.png)" in err
    (folder / "b.png").unlink()
    assert main(run) == 2
    assert capsys.readouterr().err.strip().endswith(
        f"{folder} lacks 1 image of {gt} (b.png): give the folder of its images")
