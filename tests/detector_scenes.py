"""What the detector tests share: the trained fixture's path, a synthetic driving scene,
torchvision's own ``model(images)`` to compare with, and a detection-for-detection match."""

from pathlib import Path

import numpy as np
import torch
from torchvision.ops import box_iou

from drivevision.labels import COCO_NAMES

FIXTURE = Path(__file__).parents[1] / "assets" / "tiny-fpn-synthetic.pt"


def reference(model, frame_bgr: np.ndarray) -> dict:
    """torchvision's own ``model([image])``, without COCO's unused N/A slots, which
    ``classes="all"`` leaves out."""
    rgb = torch.from_numpy(frame_bgr[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
    with torch.inference_mode():
        out = model([rgb])[0]
    real = torch.tensor([COCO_NAMES[int(c)] not in ("N/A", "__background__")
                         for c in out["labels"]], dtype=torch.bool)
    return {k: v[real] for k, v in out.items()}


def scene(h: int, w: int, seed: int) -> np.ndarray:
    from drivevision.synthetic import SceneGenerator

    return SceneGenerator(width=w, height=h, seed=seed).frame(5).image


def assert_found_in(a, b, *, conf: float, min_iou: float) -> None:
    """Each detection of ``a`` scoring >= ``conf`` has one in ``b`` of the same class whose
    box overlaps it with IoU >= ``min_iou``."""
    iou = box_iou(torch.from_numpy(a.xyxy), torch.from_numpy(b.xyxy)).numpy()
    for i in np.flatnonzero(a.scores >= conf):
        same = (b.class_ids == a.class_ids[i]) & (iou[i] >= min_iou)
        assert same.any(), (f"detection {i} (class {a.class_ids[i]}, score {a.scores[i]:.3f}, "
                            f"box {a.xyxy[i].round(1).tolist()}) has no match")
