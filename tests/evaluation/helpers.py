"""Hand-made ground truth and predictions, written as the files the evaluation reads, and
pycocotools run on the same boxes by its documented path (``loadRes``), for comparison."""

from __future__ import annotations

import contextlib
import io
import json
from pathlib import Path

CAR, PERSON = [10, 10, 110, 110], [200, 20, 240, 120]  # boxes in a 320x240 frame


def write_truth(path: Path, frames: list[list[tuple]], **extra) -> Path:
    """``frames[i]``: (label, [x1, y1, x2, y2]) pairs of frame i."""
    with open(path, "w") as f:
        for i, boxes in enumerate(frames):
            f.write(json.dumps({"frame": i, "boxes": [b for _, b in boxes],
                                "labels": [n for n, _ in boxes], **extra}) + "\n")
    return path


def write_preds(path: Path, frames: dict[int, list[tuple]]) -> Path:
    """``frames[i]``: (label, score, [x1, y1, x2, y2]) triples of frame i."""
    with open(path, "w") as f:
        for i, dets in frames.items():
            f.write(json.dumps({"frame": i, "timestamp_ms": 100.0 * i, "detections": [
                {"class_id": 0, "class_name": n, "score": s, "box": b} for n, s, b in dets]})
                + "\n")
    return path


def folder_run(path: Path, found: dict[str, list]) -> Path:
    """``detect FOLDER --jsonl``: a line per image, naming it, in the folder's order;
    ``found[name]``: (label, score, [x1, y1, x2, y2]) triples of that image."""
    with open(path, "w") as f:
        for frame, (name, dets) in enumerate(found.items()):
            f.write(json.dumps({"frame": frame, "file": name, "detections": [
                {"class_name": n, "score": s, "box": b} for n, s, b in dets]}) + "\n")
    return path


def score(capsys, gt, pred, *options) -> tuple[int, dict | None, str]:
    """``drivevision eval --gt GT --pred PRED --json``: (exit code, the metrics when it
    succeeded, stderr)."""
    from drivevision.cli import main

    code = main(["eval", "--gt", str(gt), "--pred", str(pred), "--json", *options])
    out, err = capsys.readouterr()
    return code, json.loads(out) if code == 0 else None, err


def pycocotools_stats(truth: list[list[tuple]], preds: dict[int, list[tuple]]):
    """COCOeval's 12 stats and per-class precision arrays for the same boxes."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    names = sorted({n for boxes in truth for n, _ in boxes})
    cats = {n: i + 1 for i, n in enumerate(names)}
    anns = [{"id": k, "image_id": i + 1, "category_id": cats[n], "iscrowd": 0,
             "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])}
            for k, (i, (n, b)) in enumerate(((i, x) for i, boxes in enumerate(truth)
                                             for x in boxes), 1)]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {"images": [{"id": i + 1} for i in range(len(truth))],
                      "annotations": anns,
                      "categories": [{"id": c, "name": n} for n, c in cats.items()]}
        gt.createIndex()
        res = [{"image_id": i + 1, "category_id": cats[n], "score": s,
                "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]]}
               for i, dets in preds.items() for n, s, b in dets if n in cats]
        ev = COCOeval(gt, gt.loadRes(res), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats
