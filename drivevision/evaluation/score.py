"""Score predictions against ground truth: checks that they belong together, class names
matched, then COCO box metrics and, when both sides carry track ids, tracking scores."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

import numpy as np

from drivevision.evaluation.annotations import Annotations, FrameBoxes
from drivevision.evaluation.classes import confusion_matrix
from drivevision.evaluation.coco import coco_metrics
from drivevision.evaluation.coverage import covered_truth
from drivevision.evaluation.yolo import match_files
from drivevision.labels import counted

SIZE_SLACK = 1.0  # pixels a predicted box may reach past the frame (rounding)


@dataclass(frozen=True)
class Evaluation:
    """``metrics``: what ``--json`` prints (see ``evaluate``); ``curves``: class name ->
    precision at COCO's 101 recall points for IoU 0.5 and 0.75; ``notes``: what was left
    out and why, for the user to read; ``confusion``: int64 (K+1, K+1) counts [predicted,
    true] over ``confusion_labels``: ``metrics["classes"]``, then the predicted classes the
    ground truth does not label (AP leaves them out; the matrix shows what they were taken
    for), and the background, last (``evaluation.classes``)."""

    metrics: dict
    curves: dict = field(repr=False)  # 2 x 101 numbers a class: left out of print(evaluation)
    notes: list[str] = field(default_factory=list)
    confusion: np.ndarray | None = field(default=None, repr=False)
    confusion_labels: tuple[str, ...] = ()


def parse_class_map(text: str | None) -> dict[str, str]:
    """``gt=model,...`` as model name -> ground-truth name, lower case. A model class may be
    mapped once; several model classes may map to one ground-truth class."""
    mapping: dict[str, str] = {}
    for pair in (text or "").split(","):
        if not pair.strip():
            continue
        gt, sep, model = (p.strip().lower() for p in pair.partition("="))
        if not sep or not gt or not model:
            raise ValueError(f"Expected --class-map as gt=model pairs separated by commas, "
                             f"but got {pair.strip()!r}")
        if mapping.get(model, gt) != gt:
            raise ValueError(f"--class-map maps model class {model!r} twice "
                             f"({mapping[model]!r} and {gt!r})")
        mapping[model] = gt
    return mapping


def evaluate(truth: Annotations, preds: Annotations, *, class_map: dict[str, str] | None = None,
             allow_unlabelled: bool = False, covered_only: bool = False) -> Evaluation:
    """COCO metrics of ``preds`` against ``truth``, and MOTA/IDF1 when both carry tracks.

    ``metrics`` holds AP, AP50, AP75, APs, APm, APl, AR100 (0..1, None where undefined),
    ``per_class`` (name -> AP), ``conf_best_f1`` and ``classes`` (name -> counts, precision,
    recall at that threshold, AP50, AP: ``evaluation.classes``), ``frames`` (scored),
    ``gt_boxes`` (those scored), ``ignored_boxes`` (the ignored ground truth: ``_box_counts``),
    ``detections``, and with tracks MOTA, IDF1, id_switches and their
    counts. A frame of ``truth`` missing from ``preds`` counts as one with no detections,
    or, with ``covered_only`` (a file ``detect`` wrote, a line per frame it detected in),
    is left out with a note saying which and why
    (``coverage.covered_truth``; a ValueError when ``preds`` covers no frame of ``truth``).
    A predicted frame missing from ``truth`` is a ValueError unless ``allow_unlabelled``,
    when it is left out. Ground truth with ``match_files`` (a YOLO dataset) takes the
    predicted frames by file name first (``yolo.match_files``), and so does ground truth
    naming the image of every frame (COCO) when ``preds`` does too (a folder's detections).
    """
    _check_kinds(truth, preds)
    notes: list[str] = list(truth.notes)
    if truth.match_files or _named_alike(truth, preds):
        preds = match_files(truth, preds, allow_unlabelled, notes)
    _check_stated_sizes(truth, preds)
    if covered_only:
        truth, note = covered_truth(truth, preds)
        notes += [note] if note else []
    preds = _labelled_frames(truth, preds, allow_unlabelled, notes)
    _check_sizes(truth, preds)
    preds, unlabelled = _matched_classes(truth, preds, class_map or {}, notes)
    classes = truth.classes
    coco = coco_metrics(truth, preds, classes, unlabelled)
    curves, confusion = coco.pop("curves"), coco.pop("confusion")
    labels = (*classes, *unlabelled.classes, "background")
    if note := _class_map_hint(truth, unlabelled, coco["classes"]):
        notes.append(note)
    scored, ignored = _box_counts(truth)
    metrics = {**coco, "frames": len(truth.frames), "gt_boxes": scored,
               "ignored_boxes": ignored,
               "detections": sum(len(f) for f in preds.frames.values())}
    if truth.has_tracks and preds.has_tracks:
        from drivevision.evaluation.tracks import HOTA_INSTALL, track_metrics

        metrics.update(track_metrics(truth, preds))
        if metrics["HOTA"] is None:
            notes.append(HOTA_INSTALL)
    return Evaluation(metrics, curves, notes, confusion, labels)


def _box_counts(truth: Annotations) -> tuple[int, int]:
    """The ground-truth boxes scored (the sum of each class's) and those ignored (DontCare,
    crowd and flag-0 regions, distractors, objects outside a KITTI level), each object once:
    a second box standing in for one under another class (``stand_ins``) is not counted."""
    scored = sum(len(fb) if fb.ignore is None else int((~fb.ignore).sum())
                 for fb in truth.frames.values())
    boxes = sum(len(fb) - truth.stand_ins.get(f, 0) for f, fb in truth.frames.items())
    return scored, boxes - scored


def _named_alike(truth: Annotations, preds: Annotations) -> bool:
    """Both name the image of each of their frames (COCO ground truth of a folder, ``detect``
    run on a folder), uniquely: frames are then matched by those names, as frame numbers of
    a folder count its images, and a folder holding more images than were labelled, or other
    ones, numbers them otherwise."""
    return bool(preds.frames) and all(preds.file_names.get(f) for f in preds.frames) \
        and truth.named


def _check_kinds(truth: Annotations, preds: Annotations) -> None:
    """TypeError for files given as paths; ValueError for predictions without scores (ground
    truth given as the predictions: the two swapped)."""
    for given, reader in ((truth, "read_truth"), (preds, "read_predictions")):
        if not isinstance(given, Annotations):
            found = (f"a path ({str(given)!r}); read it with {reader}(path) "
                     f"(drivevision.evaluation)" if isinstance(given, (str, os.PathLike))
                     else type(given).__name__)
            raise TypeError(f"Expected Annotations, but found {found}")
    if any(f.scores is None for f in preds.frames.values() if len(f)):
        raise ValueError(f"{preds.path} has boxes without scores, as ground truth has: "
                         "evaluate takes the ground truth first, then the predictions "
                         "(evaluate(read_truth(gt), read_predictions(pred)))")


def _labelled_frames(truth: Annotations, preds: Annotations, allow: bool,
                     notes: list[str]) -> Annotations:
    extra = sorted(set(preds.frames) - set(truth.frames))
    if not extra:
        return preds
    shown = ", ".join(map(str, extra[:5])) + (", ..." if len(extra) > 5 else "")
    if not allow:
        raise ValueError(f"{preds.path} has {counted(len(extra), 'frame')} that {truth.path} "
                         f"does not label ({shown}); pass --allow-unlabelled to leave them out")
    notes.append(f"left out {counted(len(extra), 'predicted frame')} without ground truth "
                 f"({shown})")
    kept = {f: fb for f, fb in preds.frames.items() if f in truth.frames}
    return Annotations(preds.path, kept, preds.classes)


def _check_stated_sizes(truth: Annotations, preds: Annotations) -> None:
    """ValueError when both files state a frame's size and they differ: the boxes are in
    pixels of another size (detections of a resized copy), and would all score as misses,
    AP 0, though each may lie inside the labelled frame. Files without sizes pass."""
    for f in sorted(set(truth.sizes) & set(preds.sizes)):
        if truth.sizes[f] == preds.sizes[f]:
            continue
        (tw, th), (pw, ph) = truth.sizes[f], preds.sizes[f]
        which = f"image {truth.file_names[f]}" if f in truth.file_names else f"frame {f}"
        raise ValueError(f"{preds.path} was detected on {pw}x{ph} frames, but {truth.path} "
                         f"labels {tw}x{th} ones ({which}): boxes of one size cannot be "
                         "scored against the other; run drivevision detect on the "
                         f"{tw}x{th} frames the ground truth was labelled on")


def _check_sizes(truth: Annotations, preds: Annotations) -> None:
    """A predicted box past the labelled frame's edge: the two were made at other sizes."""
    for f, (w, h) in truth.sizes.items():
        fb = preds.frames.get(f)
        if fb is None or not len(fb):
            continue
        x2, y2 = fb.boxes[:, 2].max(), fb.boxes[:, 3].max()
        if x2 > w + SIZE_SLACK or y2 > h + SIZE_SLACK:
            raise ValueError(f"{preds.path} frame {f} has a box reaching ({x2:.0f}, {y2:.0f}), "
                             f"outside the {w}x{h} frame of {truth.path}: were they made from "
                             "frames of different sizes?")


def _matched_classes(truth: Annotations, preds: Annotations, class_map: dict[str, str],
                     notes: list[str]) -> tuple[Annotations, Annotations]:
    """Predictions renamed to ground-truth classes (by ``class_map``, else by name; all to
    the one class of a ground truth without names), and those of the other classes, which
    AP leaves out (a note says so) and the confusion matrix counts."""
    unknown = sorted(set(class_map.values()) - set(truth.classes))
    if unknown:
        raise ValueError(f"--class-map names {', '.join(unknown)}, which {truth.path} does not "
                         f"have (its classes: {', '.join(truth.classes)})")
    if truth.one_class and not class_map:
        [only] = truth.classes
        class_map = {name: only for name in preds.classes}
        if len(preds.classes) > 1:
            names = sorted(preds.classes)
            notes.append(f"{os.path.basename(truth.path)} names no class: every predicted "
                         f"class ({', '.join(names)}) counts as its one, {only}, "
                         f"a {names[0]} box as much as a {names[1]} box; "
                         f"--class-map {only}=NAME scores NAME's boxes alone")
    rename = {name: class_map.get(name, name) for name in preds.classes}
    dropped = sorted(n for n, to in rename.items() if to not in truth.classes)
    if preds.classes and len(dropped) == len(preds.classes):
        raise ValueError(f"No predicted class is a class of the ground truth: {truth.path} has "
                         f"{', '.join(truth.classes) or 'none'}, {preds.path} has "
                         f"{', '.join(preds.classes)}; map them with --class-map gt=model,...")
    if dropped:
        notes.append(f"left out of AP, P and R (the confusion matrix counts them) predictions "
                     f"of classes the ground truth does not label: {', '.join(dropped)}")
    kept = {f: _picked(fb, rename, lambda n: n in truth.classes) for f, fb in preds.frames.items()}
    other = {f: _picked(fb, rename, lambda n: n not in truth.classes)
             for f, fb in preds.frames.items()}
    return (Annotations(preds.path, kept, tuple(dict.fromkeys(
                rename[n] for n in preds.classes if n not in dropped))),
            Annotations(preds.path, other, tuple(dropped)))


def _class_map_hint(truth: Annotations, unlabelled: Annotations,
                    rows: dict[str, dict]) -> str | None:
    """A note for ground-truth classes no prediction is named as (``rows``: name -> counts;
    AP 0, as if never found), naming the predicted class of ``unlabelled`` (those the ground
    truth lacks) that is likely theirs: the one whose boxes, of any score, find most of their
    objects at IoU 0.5, else a name alike (``traffic light`` for ``traffic_light``), and the
    ``--class-map`` that scores them; None when there is none."""
    labels = (*truth.classes, *unlabelled.classes)
    index = {name: i for i, name in enumerate(labels)}
    confusion = confusion_matrix(truth, Annotations(unlabelled.path, {}, ()), truth.classes,
                                 0.0, set(), unlabelled)  # [predicted, true]
    spare = list(unlabelled.classes)
    pairs, why = [], []
    for gt in (n for n, r in rows.items() if r["gt_boxes"] and not r["detections"]):
        found = {p: int(confusion[index[p], index[gt]]) for p in spare}
        model = max(found, key=found.get, default=None)
        if model is not None and found[model]:
            why.append(f"{model} boxes find {found[model]} of the {rows[gt]['gt_boxes']} "
                       f"{gt} objects")
        else:
            model = next((p for p in spare if _alike(p, gt)), None)
            if model is None:
                continue
            why.append(f"{model} is {gt} written otherwise")
        spare.remove(model)
        pairs.append((gt, model))
    if not pairs:
        return None
    named = " or ".join(gt for gt, _ in pairs)
    their = "their AP is" if len(pairs) > 1 else "its AP is"
    return (f"no prediction is named {named}, so {their} 0, but {', and '.join(why)}: to "
            f"score them as those, --class-map \"{','.join(f'{g}={m}' for g, m in pairs)}\"")


def _alike(a: str, b: str) -> bool:
    """The same name but for case, spaces, ``_`` and ``-`` (``traffic_light``)."""
    return re.sub(r"[\s_-]+", "", a) == re.sub(r"[\s_-]+", "", b)


def _picked(fb: FrameBoxes, rename: dict[str, str], wanted) -> FrameBoxes:
    """The boxes of ``fb`` whose renamed class is ``wanted``, renamed."""
    keep = [i for i, n in enumerate(fb.labels) if wanted(rename[n])]
    return FrameBoxes(fb.boxes[keep], tuple(rename[fb.labels[i]] for i in keep),
                      fb.scores[keep], None if fb.track_ids is None else fb.track_ids[keep])
