"""Class names: the written-out COCO list is torchvision's, and using it costs no torch."""

import subprocess
import sys

import pytest

from drivevision.labels import COCO_NAMES


def test_coco_names_are_torchvisions_list():
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    from torchvision.models.detection.faster_rcnn import _COCO_CATEGORIES

    assert tuple(_COCO_CATEGORIES) == COCO_NAMES
    assert tuple(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]) == COCO_NAMES


@pytest.mark.parametrize("modules", ["drivevision.labels, drivevision.render",
                                     "drivevision.io.sinks"])
def test_drawing_and_writing_detections_do_not_import_torch(modules):
    code = f"import sys, {modules}; print(sorted(m for m in sys.modules if m.startswith('torch')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120)
    assert out.stdout.strip() == "[]"
