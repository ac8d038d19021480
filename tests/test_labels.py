"""Class names: the written-out COCO list is torchvision's, and using it costs no torch."""

import logging
import subprocess
import sys

import pytest

from drivevision.labels import COCO_NAMES, DRIVING_CLASSES, resolve_classes


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


CUSTOM = ("__background__", "car", "cone", "van")


def test_default_classes_are_the_driving_ones_for_coco_and_all_for_a_custom_model(caplog):
    driving = resolve_classes(None, COCO_NAMES)
    assert [COCO_NAMES[i] for i in driving] == list(DRIVING_CLASSES)
    assert resolve_classes("driving", COCO_NAMES) == driving
    assert resolve_classes(None, CUSTOM) is None
    assert resolve_classes("all", COCO_NAMES) is None
    assert caplog.records == []


@pytest.mark.parametrize("names, ids, message", [
    (CUSTOM, (1,), "the model has no person, bicycle, motorcycle, bus, truck, traffic light, "
                   "stop sign; keeping car"),
    (("__background__", "cone", "van"), None, "the model has no person, bicycle, car, "
     "motorcycle, bus, truck, traffic light, stop sign; keeping every class it has"),
])
def test_driving_asked_of_a_model_without_all_of_them_warns_which_it_lacks(caplog, names, ids,
                                                                         message):
    assert resolve_classes("driving", names) == ids
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"classes 'driving': {message}"
