"""Class names: the written-out COCO list is torchvision's, and using it costs no torch."""

import logging
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from drivevision.labels import COCO_NAMES, DRIVING_CLASSES, classes_text, resolve_classes


def test_coco_names_are_torchvisions_list():
    from torchvision.models.detection import FasterRCNN_ResNet50_FPN_Weights
    from torchvision.models.detection.faster_rcnn import _COCO_CATEGORIES

    assert tuple(_COCO_CATEGORIES) == COCO_NAMES
    assert tuple(FasterRCNN_ResNet50_FPN_Weights.COCO_V1.meta["categories"]) == COCO_NAMES


@pytest.mark.parametrize("modules", ["drivevision.labels, drivevision.render",
                                     "drivevision.io.sinks, drivevision.io.video_sink"])
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
    assert caplog.records == []


@pytest.mark.parametrize("names, spec, text", [
    (COCO_NAMES, None, "driving"), (COCO_NAMES, "driving", "driving"), (COCO_NAMES, "all", "all"),
    (COCO_NAMES, "truck,3", "car,truck"), (CUSTOM, None, "all"), (CUSTOM, "all", "all"),
    (CUSTOM, "van", "van"), (CUSTOM, "driving", "car"),
])
def test_kept_classes_are_told_as_they_would_be_asked_for(names, spec, text):
    ids = resolve_classes(spec, names)
    assert classes_text(ids, names) == text
    assert resolve_classes(text, names) == ids


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


@pytest.mark.parametrize("spec, expected", [
    ("Car", ("car",)), ("CAR,Person", ("person", "car")), ("traffic LIGHT", ("traffic light",)),
    ("All", None), (" Driving ", DRIVING_CLASSES),
])
def test_class_names_match_whatever_their_case(spec, expected):
    ids = resolve_classes(spec, COCO_NAMES)
    if expected is None:
        assert "N/A" not in {COCO_NAMES[i] for i in ids}
    else:
        assert tuple(COCO_NAMES[i] for i in ids) == expected


@pytest.mark.parametrize("spec, message", [
    ("cra", "Unknown class 'cra'; did you mean cat or car?"),
    ("persn", "Unknown class 'persn'; did you mean person?"),
    ("car,trucks", "Unknown class 'trucks'; did you mean truck?"),
    ("ca r", "Unknown class 'ca r'; did you mean car or"),
    ("N/A", "Unknown class 'N/A'; expected 'driving', 'all', or names or ids of the model's "
            "classes: person (1), bicycle (2), car (3),"),
    ("12", "Unknown class '12'"),  # an id of one of COCO's unused slots
])
def test_a_typo_in_a_class_name_is_one_line_naming_close_matches(spec, message):
    with pytest.raises(ValueError) as error:
        resolve_classes(spec, COCO_NAMES)
    assert str(error.value).startswith(message)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize("spec", ["0", "99", "unicorn"])
def test_an_unknown_class_names_the_first_ten_of_cocos_and_where_to_find_the_rest(spec):
    with pytest.raises(ValueError) as error:
        resolve_classes(spec, COCO_NAMES)
    message = str(error.value)
    assert message.endswith("traffic light (10), ... (80 in all; docs/detect.md#coco-class-ids "
                            "lists them all)")
    assert "toothbrush" not in message


def test_an_unknown_class_of_a_small_model_lists_its_every_class():
    with pytest.raises(ValueError) as error:
        resolve_classes("0", CUSTOM)
    listed = ", ".join(f"{n} ({i})" for i, n in enumerate(CUSTOM) if i)
    assert str(error.value).endswith(f"classes: {listed}")


def test_the_docs_list_cocos_class_ids_as_the_models_have_them():
    text = (Path(__file__).parents[1] / "docs" / "detect.md").read_text()
    section = text.split("## COCO class ids", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"(\d+) ([a-z ]+?)[,.]", " ".join(section.split("\n\n", 2)[2].split()))
    assert [(int(i), n) for i, n in listed] == [
        (i, n) for i, n in enumerate(COCO_NAMES) if n not in ("N/A", "__background__")]


def test_all_classes_leave_out_cocos_unused_slots_and_keep_a_custom_models_every_class():
    ids = resolve_classes("all", COCO_NAMES)
    assert [COCO_NAMES[i] for i in ids] == [n for n in COCO_NAMES
                                            if n not in ("N/A", "__background__")]
    assert len(ids) == 80
    assert resolve_classes("all", CUSTOM) is None


def test_detections_with_all_classes_never_name_an_unused_coco_slot(tiny_loaded):
    from drivevision.detector import Detector

    # random weights score every class alike, so the unused slots come up unless filtered
    detections = Detector(tiny_loaded, classes="all", conf=0.0)(
        np.random.default_rng(0).integers(0, 256, (96, 160, 3), dtype=np.uint8))
    names = {COCO_NAMES[c] for c in detections.class_ids}
    assert len(detections) > 20 and "N/A" not in names


def message_texts(path):
    """Every string the module at ``path`` writes, f-strings' literal parts included."""
    import ast

    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_no_message_counts_with_an_s_in_brackets():
    """"1 frame(s)" reads as a form filled in: messages count with ``labels.counted``."""
    from pathlib import Path

    root = Path(__file__).parents[1]
    found = [f"{path.relative_to(root)}:{line}: {text.strip()[:60]}"
             for folder in ("drivevision", "gui") for path in sorted((root / folder).rglob("*.py"))
             for line, text in message_texts(path)
             if re.search(r"[a-z]\(s\)", text.replace("http(s)", ""))]
    assert found == []


def test_one_is_counted_in_the_singular():
    from pathlib import Path

    from drivevision.io import limits
    from drivevision.io.leftovers import leftover_names

    assert leftover_names([Path("a.mp4.part")]) == ("1 unfinished output left by a killed "
                                                    "run: a.mp4.part")
    with pytest.raises(ValueError, match="1 frame of up to 800x800 per detector call needs"):
        limits.check_detector_call(1, (800, 800), 1000, "--min-size 800", available=10**6)


@pytest.mark.parametrize("spec", [3, np.int64(3), [np.int64(3)], "3", "car"])
def test_one_class_id_may_be_given_alone_as_ultralytics_takes_it(spec):
    # (classes=3 was "TypeError: 'int' object is not iterable")
    assert resolve_classes(spec, COCO_NAMES) == (3,)


@pytest.mark.parametrize("spec, found", [(True, r"True \(bool\)$"), (2.0, r"2.0 \(float\)$"),
                                         (object(), r"<object .*> \(object\)$")])
def test_classes_of_another_kind_are_a_type_error_saying_what_is_taken(spec, found):
    with pytest.raises(TypeError, match=r"^Expected classes as 'driving', 'all', a class name or "
                                        r"id, or a comma list or sequence of them, but got "
                                        + found):
        resolve_classes(spec, COCO_NAMES)
