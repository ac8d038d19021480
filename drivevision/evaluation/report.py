"""Reports: ``metrics.json``, a Markdown summary, and precision-recall curves per class
(PNG, when matplotlib is installed: ``pip install drivevision[eval]``)."""

from __future__ import annotations

import json
import logging
import re
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


def write_report(folder: str | Path, result: Evaluation, title: str = "Evaluation") -> list[Path]:
    """Write the report into ``folder`` (made if missing); returns the files written."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / "metrics.json", folder / "summary.md"]
    written[0].write_text(json.dumps({**result.metrics, "notes": result.notes}, indent=1) + "\n")
    written[1].write_text(summary_markdown(result, title))
    try:
        import matplotlib
    except ImportError:
        if result.curves:  # asked for a report, and it would have held curves: say why not
            _log.warning("%s: no precision-recall curves: they need matplotlib, which comes "
                         'with the eval extra: pip install -e ".[eval]" in the clone', folder)
        return written
    matplotlib.use("Agg", force=False)
    return written + [_curve(folder, name, c, result.metrics["per_class"].get(name))
                      for name, c in result.curves.items()]


def _curve(folder: Path, name: str, curve: dict, ap: float | None) -> Path:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4.5, 4), dpi=100)
    for key, label in (("iou50", "IoU 0.5"), ("iou75", "IoU 0.75")):
        precision = [max(p, 0.0) for p in curve[key]]  # -1: no ground truth of the class
        ax.plot(RECALLS, precision, label=label)
    ax.set(xlabel="recall", ylabel="precision", xlim=(0, 1), ylim=(0, 1.02),
           title=f"{name}: AP@[.5:.95] {fmt(ap)}")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower left")
    path = folder / f"pr-{re.sub(r'[^a-z0-9]+', '-', name.lower()).strip('-')}.png"
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
