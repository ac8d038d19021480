"""What a command checks of ``--weights`` before the model loads: the checkpoint's class
names against ``--classes``, read without building the model."""

from __future__ import annotations

import sys


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
