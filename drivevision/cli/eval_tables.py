"""How ``drivevision eval INPUT`` prints and reports what ``eval_run`` measured: the engines
table (AP in COCO points, ms/frame, the AP difference to torch fp32), with a tracker a
second table of its figures, and the report folder's top-level ``summary.md``."""

from __future__ import annotations

from drivevision.cli.eval_run import RunResult
from drivevision.cli.help import wrapped_lines
from drivevision.engines.hardware import feature_list
from drivevision.evaluation.report import write_report
from drivevision.labels import counted


def format_table(result: RunResult) -> str:
    """AP in COCO points (x100), as MMDeploy and papers print them; with a tracker, its
    HOTA, MOTA, IDF1, ID switches and recall in a second table (each fits 80 columns)."""
    t = result.table
    tracked = "track" in t
    lines = wrapped_lines(f"{t['input']} against {t['gt']} on {t.get('device', '?')}, "
                     f"{counted(t['threads'], 'thread')}, torch {t['torch']}, score threshold "
                     f"{t['conf']}")
    lines += wrapped_lines(f"CPU features: {feature_list(t.get('cpu_features', []))}")
    lines.append("AP in points (x100); ms/frame: median detector call; dAP: AP - torch fp32 AP")
    if tracked:
        k = t["frame_stride"]
        seen = "every frame" if k == 1 else f"frames 0, {k}, {2 * k}, ..."
        lines += wrapped_lines(f"tracker {t['track']} on {seen}; HOTA, MOTA, IDF1 and recall "
                          "(share of ground-truth boxes a track shows) in points; IDsw: ID "
                          "switches")
    lines += ["", f"{'engine':<10}{'precision':<11}{'AP':>7}{'AP50':>7}{'AP75':>7}{'ms/frame':>10}"
              f"{'dAP':>8}"]
    for r in t["results"]:
        diff = "-" if r["AP_diff"] is None else f"{100 * r['AP_diff']:+.2f}"
        lines.append(f"{r['engine']:<10}{r['precision']:<11}{_pts(r['AP'])}{_pts(r['AP50'])}"
                     f"{_pts(r['AP75'])}{r['ms_per_frame']:>10.1f}{diff:>8}")
    if tracked:
        lines += ["", f"{'engine':<10}{'precision':<11}" + "".join(f"{c:>7}"
                                                                 for c in _TRACK_COLUMNS)]
        lines += [f"{r['engine']:<10}{r['precision']:<11}" + "".join(
            _pts(r.get(key)) if key != "id_switches" else f"{r.get(key, '-'):>7}"
            for key in _TRACK_COLUMNS.values()) for r in t["results"]]
    lines += [f"skipped {s['engine']} {s['precision']}: {s['reason']}" for s in t["skipped"]]
    if t.get("not_scored"):
        lines.append(f"interrupted: not scored: {', '.join(t['not_scored'])}")
    lines += [f"note: {note}" for note in t["notes"]]
    return "\n".join(lines)


_TRACK_COLUMNS = {"HOTA": "HOTA", "MOTA": "MOTA", "IDF1": "IDF1", "IDsw": "id_switches",
                  "recall": "recall"}


def _pts(value) -> str:
    return f"{'-':>7}" if value is None else f"{100 * value:>7.2f}"


def write_reports(out, result: RunResult) -> None:
    """One report per engine and precision, each in a subfolder named for them (with its
    own ``summary.md``), and the table as ``summary.md``, linking to theirs, through ``out``
    (``report.write_report``)."""
    for r in result.runs:
        write_report(out, r.evaluation, title=f"{r.engine} {r.precision} on "
                     f"{result.info['input']}", under=f"{r.engine}-{r.precision}")
    links = [f"- [{r.engine} {r.precision}]({r.engine}-{r.precision}/summary.md)"
             for r in result.runs]
    text = ("```\n" + format_table(result) + "\n```\n\nEach run's metrics, precision, "
            "recall and AP per class, and confusion matrix:\n\n" + "\n".join(links) + "\n")
    out.put_with("summary.md", lambda path: path.write_text(text))
