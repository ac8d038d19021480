"""What a command checks of ``--weights`` before the model loads: a file that is no
checkpoint, its architecture against ``--model``, its class names against ``--classes``,
read without building the model and said with the options (the Python API names its
keywords)."""

from __future__ import annotations

import argparse
import sys


def check_weights(args: argparse.Namespace) -> None:
    """WeightsError, naming ``--weights`` and ``--engine``, for a ``--weights`` that is no
    checkpoint (nothing there, a folder, what ``export`` wrote); a warning naming ``--model``
    when it differs from the checkpoint's own architecture, which then takes its place in
    ``args`` (so the load, which would name the keyword, has nothing to warn of)."""
    from drivevision.config import weights_problem
    from drivevision.errors import WeightsError

    if not args.weights:
        return
    if weights_problem(args.weights):
        raise WeightsError(weights_problem(args.weights))
    if args.model:  # else the checkpoint's own, or the default: nothing to warn of
        from drivevision.model import checkpoint_architecture

        args.model = checkpoint_architecture(args.weights, args.model)


def check_classes(spec: str | None, weights: str | None) -> None:
    """ValueError, naming the unknown class and a close one, for a ``--classes`` list of
    names the model does not have: COCO's for torchvision's weights, else the checkpoint's
    own (read without building the model). Ids in the list are named in a note on stderr:
    torchvision counts COCO from 1 (person), Ultralytics from 0, so ``2`` is bicycle here
    and car there."""
    from drivevision.labels import COCO_NAMES, resolve_classes

    if spec is None or spec.strip().lower() in ("all", "driving"):
        return  # every model takes these ("driving" warns what a model lacks, once loaded)
    if weights is None:
        names = COCO_NAMES
    else:
        from drivevision.model import checkpoint_class_names

        names = checkpoint_class_names(weights)
    resolve_classes(spec, names)
    ids = [int(item) for item in spec.split(",") if item.strip().isdigit()]
    if ids:
        coco = " (torchvision's COCO ids, from 1 = person; Ultralytics' count from 0)" \
            if tuple(names) == COCO_NAMES else ""
        named = ", ".join(f"{i} {names[i]}" for i in ids)
        print(f"drivevision: note: --classes by id: {named}{coco}", file=sys.stderr)
