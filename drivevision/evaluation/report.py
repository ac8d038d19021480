"""Reports: ``metrics.json``, a Markdown summary, and precision-recall curves per class
(PNG, when matplotlib is installed: ``pip install drivevision[eval]``)."""

from __future__ import annotations

import json
import logging
import re
from functools import partial
from pathlib import Path

from drivevision.evaluation.coco import RECALLS
from drivevision.evaluation.score import Evaluation
from drivevision.labels import counted

_ROWS = (("AP", "AP@[.5:.95]"), ("AP50", "AP@.5"), ("AP75", "AP@.75"), ("APs", "AP small"),
         ("APm", "AP medium"), ("APl", "AP large"), ("AR100", "AR@100"), ("HOTA", "HOTA"),
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
    lines = [f"# {title}", "", f"{counted(m['frames'], 'frame')}, "
             f"{counted(m['gt_boxes'], 'ground-truth box', 'ground-truth boxes')}, "
             f"{counted(m['detections'], 'detection')} scored.", "", "| metric | value |",
             "|---|---:|"]
    lines += [f"| {label} | {fmt(m[key])} |" for key, label in _ROWS if key in m]
    lines += ["", "| class | AP@[.5:.95] |", "|---|---:|"]
    lines += [f"| {name} | {fmt(ap)} |" for name, ap in m["per_class"].items()]
    if result.notes:
        lines += ["", *(f"- {n}" for n in result.notes)]
    return "\n".join(lines) + "\n"


def write_report(out, result: Evaluation, title: str = "Evaluation", under: str = "") -> list[str]:
    """Write the report into the folder ``out.path`` through ``out.put_with(name, write)``,
    which calls ``write(path)`` to make the file ``name`` (``/``-separated, in the subfolder
    ``under`` when given), as ``io.recorded.RecordedTree`` does. Returns the names written."""
    prefix = f"{under}/" if under else ""
    texts = {"metrics.json": json.dumps({**result.metrics, "notes": result.notes}, indent=1)
             + "\n", "summary.md": summary_markdown(result, title)}
    for name, text in texts.items():
        out.put_with(prefix + name, lambda path, text=text: path.write_text(text))
    written = [prefix + name for name in texts]
    try:
        import matplotlib
    except ImportError:
        if result.curves:  # asked for a report, and it would have held curves: say why not
            _log.warning("%s: no precision-recall curves: they need matplotlib, which comes "
                         'with the eval extra: pip install -e ".[eval]" in the clone',
                         Path(out.path, under))
        return written
    matplotlib.use("Agg", force=False)
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
