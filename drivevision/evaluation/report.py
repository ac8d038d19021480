"""Reports: ``metrics.json``, a Markdown summary, and precision-recall curves per class
(PNG, when matplotlib is installed: ``pip install drivevision[eval]``)."""

from __future__ import annotations

import json
import logging
import re
from functools import partial
from pathlib import Path

import numpy as np

from drivevision.evaluation.coco import RECALLS
from drivevision.evaluation.score import Evaluation
from drivevision.labels import counted

# COCO's object sizes, by the ground-truth box's area (w * h) in the frame's pixels
_ROWS = (("AP", "AP@[.5:.95]"), ("AP50", "AP@.5"), ("AP75", "AP@.75"),
         ("APs", "AP small (area < 32x32 px)"), ("APm", "AP medium (32x32 to 96x96 px)"),
         ("APl", "AP large (area > 96x96 px)"), ("AR100", "AR@100"), ("HOTA", "HOTA"),
         ("DetA", "DetA"), ("AssA", "AssA"), ("MOTA", "MOTA"), ("IDF1", "IDF1"),
         ("id_switches", "ID switches"), ("recall", "recall (tracks)"))
_log = logging.getLogger(__name__)


def fmt(value) -> str:
    """A metric for people: 3 decimals, "-" where undefined."""
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def summary_markdown(result: Evaluation, title: str) -> str:
    m = result.metrics
    ignored = m.get("ignored_boxes")
    aside = f" (and {counted(ignored, 'ignored box', 'ignored boxes')})" if ignored else ""
    lines = [f"# {title}", "", f"{counted(m['frames'], 'frame')}, "
             f"{counted(m['gt_boxes'], 'ground-truth box', 'ground-truth boxes')}{aside}, "
             f"{counted(m['detections'], 'detection')} scored.", "", "| metric | value |",
             "|---|---:|"]
    lines += [f"| {label} | {fmt(m[key])} |" for key, label in _ROWS if key in m]
    lines += ["", *_class_table(m), *_confusion_table(result)]
    if result.notes:
        lines += ["", *(f"- {n}" for n in result.notes)]
    return "\n".join(lines) + "\n"


def _class_table(m: dict) -> list[str]:
    """Per class, as Ultralytics' val prints it: ground-truth boxes, detections, precision
    and recall at the best-F1 score threshold (IoU 0.5), AP50 and AP."""
    conf = m.get("conf_best_f1")
    lines = [f"Precision P and recall R at IoU 0.5 for detections scoring {fmt(conf)} and up,",
             "the threshold of the best mean F1 over the classes.", "",
             "| class | boxes | detections | P | R | AP@.5 | AP@[.5:.95] |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    return lines + [f"| {name} | {r['gt_boxes']} | {r['detections']} | {fmt(r['precision'])} "
                    f"| {fmt(r['recall'])} | {fmt(r['AP50'])} | {fmt(r['AP'])} |"
                    for name, r in m["classes"].items()]


def _confusion_table(result: Evaluation) -> list[str]:
    cm = result.confusion
    if cm is None:
        return []
    names = list(result.confusion_labels)
    lines = ["", "Confusion matrix (IoU 0.5, same detections): rows the predicted class,",
             "columns the true one; background: a detection of nothing, a missed object.", "",
             "| predicted / true | " + " | ".join(names) + " |",
             "|---|" + "---:|" * len(names)]
    return lines + [f"| {name} | " + " | ".join(str(int(v)) for v in row) + " |"
                    for name, row in zip(names, cm)]


def write_report(out, result: Evaluation, title: str = "Evaluation", under: str = "") -> list[str]:
    """Write the report into the folder ``out.path`` through ``out.put_with(name, write)``,
    which calls ``write(path)`` to make the file ``name`` (``/``-separated, in the subfolder
    ``under`` when given), as ``io.recorded.RecordedTree`` does. Returns the names written."""
    prefix = f"{under}/" if under else ""
    confusion = {} if result.confusion is None else {"confusion_matrix": {
        "labels": list(result.confusion_labels), "rows": "predicted",
        "counts": result.confusion.tolist()}}
    texts = {"metrics.json": json.dumps({**result.metrics, **confusion, "notes": result.notes},
                                        indent=1) + "\n",
             "summary.md": summary_markdown(result, title)}
    for name, text in texts.items():
        out.put_with(prefix + name, lambda path, text=text: path.write_text(text))
    written = [prefix + name for name in texts]
    try:
        import matplotlib
    except ImportError:
        if result.curves:  # asked for a report, and it would have held curves: say why not
            _log.warning("%s: no precision-recall curves or confusion matrix (PNG): they "
                         "need matplotlib, which comes with the eval extra: "
                         'pip install -e ".[eval]" in the clone',
                         Path(out.path, under))
        return written
    matplotlib.use("Agg", force=False)
    if result.confusion is not None:
        out.put_with(prefix + "confusion-matrix.png", partial(
            _matrix, names=list(result.confusion_labels), cm=result.confusion))
        written.append(prefix + "confusion-matrix.png")
    for name, curve in result.curves.items():
        png = f"{prefix}pr-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
        out.put_with(png, partial(_curve, name=name, curve=curve,
                                  ap=result.metrics["per_class"].get(name)))
        written.append(png)
    return written


def _curve(path: Path, *, name: str, curve: dict, ap: float | None) -> None:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    for key, label in (("iou50", "IoU 0.5"), ("iou75", "IoU 0.75")):
        precision = [max(p, 0.0) for p in curve[key]]  # -1: no ground truth of the class
        ax.plot(RECALLS, precision, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"{name}: AP@[.5:.95] {fmt(ap)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)


def _matrix(path: Path, *, names: list[str], cm) -> None:
    import matplotlib.pyplot as plt

    size = 2.5 + 0.6 * len(names)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=100)
    image = ax.imshow(cm, cmap="Blues")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(len(names)), names, rotation=45, ha="right")
    ax.set_yticks(range(len(names)), names)
    ax.set(xlabel="true", ylabel="predicted", title="confusion matrix (IoU 0.5)")
    for (i, j), v in np.ndenumerate(cm):
        ax.text(j, i, str(int(v)), ha="center", va="center",
                color="white" if v > cm.max() / 2 else "black")
    fig.tight_layout()
    try:
        fig.savefig(path, format="png")
    finally:
        plt.close(fig)
