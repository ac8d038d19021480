"""How ``drivevision bench`` prints what ``drivevision.cli.timing`` measured: a header, then
one table per engine and precision, stage rows, median and p95 columns per batch size."""

from __future__ import annotations

from drivevision.cli.help import wrapped_lines
from drivevision.cli.timing import interrupted_line, weights_text
from drivevision.detector import STAGES
from drivevision.engines.hardware import feature_list
from drivevision.labels import counted


def format_tables(result: dict) -> str:
    """One table per engine and precision: stage rows, median/p95 columns per batch size."""
    h, w = result["input_size"]
    drift = ", ".join(f"b{b} {v['before_ms']:.1f} -> " + (
        "not timed again" if v["after_ms"] is None else f"{v['after_ms']:.1f} ms")
        for b, v in result["baseline"].items())
    header = [f"{result['model']} at {h}x{w} on {result['device']}, "
              f"{counted(result['threads'], 'thread')}, torch {result['torch']}; "
              f"{weights_text(result['weights'])}",
              f"{counted(result['iters'], 'timed call')} after "
              f"{counted(result['warmup'], 'warm-up call')}; ms per call",
              *([f"int8 calibrated on {result['calibration']}"] if "calibration" in result
                else []),
              f"torchvision eager fp32 timed before and after the engines ({drift}); speedups "
              "divide the mean of its medians; 'fastest calls' divides its fastest call by "
              "the engine's (steadier where the machine's speed swings)"]
    if not result["warmup"]:
        header.append("warning: no warm-up call, so the first timed call's one-off work "
                      "(compiling: a minute or more for compiled; first allocations) is in "
                      "the figures; --warmup 1 keeps it out")
    features = result.get("cpu_features")
    if features is not None:
        header.append(f"CPU features: {feature_list(features)}")
    lines = [part for line in header for part in wrapped_lines(line)]
    for entry in result["results"]:
        batches = list(entry["batches"])
        lines += ["", *wrapped_lines(f"{entry['engine']} {entry['precision']}"
                                + (f" (chosen by {entry['auto']})" if entry.get("auto") else "")),
                  f"{'stage':<22}" + "".join(f"{'b' + b + ' median':>14}{'p95':>9}"
                                             for b in batches)]
        rows = [(s, s) for s in STAGES] + [("total", None)]
        for label, stage in rows:
            cells = [entry["batches"][b]["stages"][stage] if stage else
                     entry["batches"][b]["total"] for b in batches]
            name = "proposals+RoIAlign" if label == "proposals" else label
            lines.append(f"{name:<22}" + "".join(f"{c['median']:>14.1f}{c['p95']:>9.1f}"
                                                 for c in cells))
        lines.append(f"{'frames/s':<22}" + "".join(f"{entry['batches'][b]['fps']:>14.2f}{'':>9}"
                                                   for b in batches))
        base = [result["baseline"][b]["total"]["median"] for b in batches]
        lines.append(f"{'torchvision eager ms':<22}" + "".join(f"{v:>14.1f}{'':>9}"
                                                               for v in base))
        lines.append(f"{'speedup':<22}" + "".join(
            f"{entry['batches'][b]['speedup']:>13.2f}x{'':>9}" for b in batches))
        lines.append(f"{'speedup, fastest calls':<22}" + "".join(
            f"{entry['batches'][b]['speedup_fastest']:>13.2f}x{'':>9}" for b in batches))
    for s in result["skipped"]:
        lines += wrapped_lines(f"skipped {s['engine']} {s['precision']}: {s['reason']}")
    if result.get("interrupted"):
        lines += wrapped_lines(interrupted_line(result))
    return "\n".join(lines)
