"""The frames a prediction file covers. ``detect`` writes a JSONL line for every frame it
detected in, also one with no detections, so a labelled frame without a line was not
detected in: ``detect --frame-stride K`` writes frames 0, K, 2K, ... only, a run cut short
stops early, and a frame ``detect`` could not read leaves no line. Such frames are left
out of the scores, with a note saying which and the likely reason."""

from __future__ import annotations

import math
from dataclasses import replace

from drivevision.evaluation.annotations import Annotations
from drivevision.labels import counted, ordinal

SHOWN = 5  # frame numbers a note lists before "..."


def covered_truth(truth: Annotations, preds: Annotations) -> tuple[Annotations, str | None]:
    """``truth`` cut to the frames ``preds`` has, and a note on the labelled frames left out
    (None when there are none); ValueError when ``preds`` has none of them."""
    kept = {f: fb for f, fb in truth.frames.items() if f in preds.frames}
    if not kept:
        raise ValueError(f"{preds.path} has no line for any frame {truth.path} labels (its "
                         f"frames {_span(preds.frames)}, the ground truth's "
                         f"{_span(truth.frames)}): nothing to score; were they made from the "
                         "same video?")
    note = coverage_note(sorted(truth.frames), sorted(kept), sorted(preds.frames))
    return replace(truth, frames=kept, sizes={f: s for f, s in truth.sizes.items() if f in kept},
                   file_names={f: n for f, n in truth.file_names.items() if f in kept}), note


def coverage_note(labelled: list[int], have: list[int], written: list[int]) -> str | None:
    """Why frames of ``labelled`` are not in ``have`` (a non-empty subset of it), as one
    line, or None when none is missing: a frame stride (every frame of the file, ``written``,
    is a multiple of one K > 1), a start after the ground truth's, a run that stopped early,
    and frames lacking in between. Lists sorted."""
    if len(have) == len(labelled):
        return None
    present = set(have)
    stride = math.gcd(*written) if len(written) > 1 else 1  # 1: no stride
    first, last = have[0], have[-1]
    lacking = [f for f in labelled if f not in present and f % stride == 0]
    parts = []
    if stride > 1:
        parts.append(f"have one for every {ordinal(stride)} frame only (written with "
                     f"--frame-stride {stride}?)")
    if lacking and lacking[0] < first:
        parts.append(f"start at frame {first}, the ground truth at {labelled[0]}")
    if lacking and lacking[-1] > last:
        parts.append(f"stop at frame {last}, the ground truth at {labelled[-1]} (a run cut "
                     "short?)")
    between = [f for f in lacking if first < f < last]
    if between:
        shown = ", ".join(map(str, between[:SHOWN])) + (", ..." if len(between) > SHOWN else "")
        parts.append(f"lack {counted(len(between), 'frame')} in between ({shown})")
    said = ", ".join(parts[:-1]) + (" and " if len(parts) > 1 else "") + parts[-1]
    return (f"scored {len(have)} of {len(labelled)} labelled frames, those the predictions "
            f"have a line for (the others are not counted as missed): they {said}")


def _span(frames) -> str:
    return f"{min(frames)}-{max(frames)}" if len(frames) > 1 else str(min(frames))
