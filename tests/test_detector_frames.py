"""What the detector takes as a frame and as a batch of frames, and how it refuses
the rest: each error says what was expected, what came and how to fix it."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from detector_scenes import FIXTURE, scene
from PIL import Image

from drivevision.config import DetectorConfig
from drivevision.detections import Detections
from drivevision.detector import Detector
from drivevision.ops.frames import as_bgr


def test_grayscale_and_bgra_frames_are_accepted(tiny_loaded):
    detector = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")
    bgr = scene(96, 160, seed=0)
    gray = bgr.mean(axis=2).astype(np.uint8)
    bgra = np.dstack([bgr, np.full(bgr.shape[:2], 255, np.uint8)])
    assert detector(bgra) == detector(bgr)
    assert np.array_equal(as_bgr(gray)[:, :, 1], gray)
    gray_bgr = np.repeat(gray[:, :, None], 3, axis=2)  # what a user would convert it to
    found = detector(gray_bgr)
    assert len(found) > 0 and found != detector(bgr)
    assert detector(gray) == found and detector(gray[:, :, None]) == found


@pytest.mark.parametrize("frame, error", [
    (np.zeros((10, 10, 3), np.float32), TypeError),
    (np.zeros((10, 10, 2), np.uint8), ValueError),
    ("not an image", TypeError),
])
def test_bad_frames_fail_with_a_clear_error(tiny_loaded, frame, error):
    with pytest.raises(error, match="Expected"):
        Detector(tiny_loaded, device="cpu")(frame)


def test_a_channels_first_frame_is_refused_saying_how_to_put_channels_last(tiny_loaded):
    with pytest.raises(ValueError, match=r"found shape \(3, 48, 64\); for a channels-first "
                                         r"\(C, H, W\) array give frame.transpose\(1, 2, 0\)$"):
        Detector(tiny_loaded, device="cpu")(np.zeros((3, 48, 64), np.uint8))
    with pytest.raises(ValueError, match=r"found shape \(48, 64, 2\)$"):
        Detector(tiny_loaded, device="cpu")(np.zeros((48, 64, 2), np.uint8))


@pytest.mark.parametrize("frame, fix", [
    ("frame.jpg", r"a path \('frame.jpg'\); read the image first, e.g. with cv2.imread"),
    (Path("frame.jpg"), r"a path \('frame.jpg'\)"),
    (None, r"found None \(cv2.imread gives None for a file it cannot read: check the path\)$"),
    (np.zeros((10, 10, 3), np.float32), r"float32; scale it to 0..255 .*astype\(np.uint8\)"),
    (np.zeros((10, 10, 3), np.uint16), r"found uint16 \(16 bits a channel, as cv2.imread"
     r"\(path, cv2.IMREAD_UNCHANGED\) reads a 16-bit PNG\); take its 8 high bits: "
     r"\(frame >> 8\).astype\(np.uint8\)$"),
    (np.zeros((10, 10, 3), np.int64), r"found int64; scale it to 0..255 and convert it with "
     r"np.clip\(frame, 0, 255\).astype\(np.uint8\)$"),
    ([np.zeros((10, 10, 3), np.uint8)] * 2, r"a batch \(a list of 2\); .*detector.infer"),
    (np.zeros((2, 10, 10, 3), np.uint8), r"a batch \(an array of shape \(2, 10, 10, 3\)\)"),
    (torch.zeros((10, 10, 3), dtype=torch.uint8),
     r"found Tensor; give it as a numpy \(H, W, 3\) uint8 array in BGR order: "
     r"frame.cpu\(\).numpy\(\) \(after .permute\(1, 2, 0\) for a \(3, H, W\) tensor\)$"),
    (Image.new("RGB", (10, 10)), r"found Image \(PIL\); convert it with "
     r"cv2.cvtColor\(np.asarray\(img.convert\('RGB'\)\), cv2.COLOR_RGB2BGR\)$"),
])
def test_a_frame_of_a_likely_wrong_kind_is_refused_with_the_fix(tiny_loaded, frame, fix):
    with pytest.raises(TypeError, match=fix):
        Detector(tiny_loaded, device="cpu")(frame)


@pytest.mark.parametrize("given, fix", [
    (str(FIXTURE), r"a path \('.*tiny-fpn-synthetic.pt'\); to load a checkpoint use "
                   r"Detector.from_config\(DetectorConfig\(weights=path\)\)$"),
    (DetectorConfig(), r"a DetectorConfig; build from it with "
                       r"Detector.from_config\(config\)$"),
    ("module", r"a FasterRCNN \(a torch module\); wrap it with its class names: "
               r"Detector\(LoadedModel\(model, NAME, class_names, WEIGHTS_ID\)\) "
               r"\(drivevision.model.LoadedModel\)$"),
], ids=["path", "config", "module"])
def test_a_detector_made_from_a_path_a_config_or_a_bare_model_says_how_to_make_it(
        tiny_loaded, given, fix):
    """As Ultralytics' ``YOLO("yolov8n.pt")``: the path was taken for the model and failed
    later, with an AttributeError naming ``module``."""
    given = tiny_loaded.module if given == "module" else given
    with pytest.raises(TypeError, match=r"^Expected a LoadedModel \(drivevision.load_model"
                                        r"\(name, weights\)\), but found " + fix):
        Detector(given, device="cpu")


def test_a_frame_from_a_source_is_refused_saying_to_give_its_image(tiny_loaded, clip_path):
    from drivevision.io.sources import open_source
    from drivevision.render import annotate

    detector = Detector(tiny_loaded, device="cpu")
    with open_source(clip_path) as source:
        frame = next(iter(source))
        with pytest.raises(TypeError, match=r"found Frame; give its image: frame.image$"):
            detector(frame)
        with pytest.raises(TypeError, match=r"found Frame; give its image: frame.image$"):
            annotate(frame, Detections.empty(), detector.names)
        # (was: every frame of the video read into memory first, then "found Frame")
        with pytest.raises(TypeError, match=r"a list \(or any iterable\) of frames, but found "
                                            r"a VideoFileSource: .*for frame in source: "
                                            r"detector\(frame.image\)"):
            detector.infer(source)


@pytest.mark.parametrize("bad, error, found", [
    (None, TypeError, r"found None \(cv2.imread gives None for a file it cannot read: check "
                      r"the path\)"),
    (np.zeros((3, 5000, 3), np.uint8), ValueError, r"5000x3 is too thin"),
])
def test_a_bad_frame_in_a_batch_is_named_by_its_position(tiny_loaded, bad, error, found):
    """``[cv2.imread(p) for p in paths]`` with one file unreadable: the error said what was
    wrong, not with which of the frames."""
    good = scene(48, 64, seed=0)
    with pytest.raises(error, match=found + r".* \(frames\[2\], of the 4 given\)$"):
        Detector(tiny_loaded, device="cpu").infer([good, good, bad, good])
    with pytest.raises(error, match=found) as single:
        Detector(tiny_loaded, device="cpu")(bad)
    assert "given)" not in str(single.value)  # one frame: no position to name


def test_one_frame_given_as_a_batch_is_refused_not_read_row_by_row(tiny_loaded):
    """An (H, W, 3) array is a sequence of H rows, each of which passed for a grayscale
    image: H detector runs on 1-pixel-high strips, silently."""
    with pytest.raises(ValueError, match=r"but found an array of shape \(96, 160, 3\); "
                                         r"for one frame use detector\(frame\)"):
        Detector(tiny_loaded, device="cpu").infer(scene(96, 160, seed=0))


def test_a_batch_is_a_list_or_an_array_of_frames(tiny_loaded):
    detector = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")
    frames = [scene(96, 160, seed=s) for s in range(2)]
    from_array = detector.infer(np.stack(frames))
    assert from_array == detector.infer(frames) and len(from_array) == 2


def test_a_batch_may_be_any_iterable_of_frames(tiny_loaded):
    detector = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")
    frames = [scene(96, 160, seed=s) for s in range(2)]
    assert detector.infer(f for f in frames) == detector.infer(frames)
    assert detector.infer(iter(tuple(frames))) == detector.infer(frames)


@pytest.mark.parametrize("frames, fix", [
    ("frame.jpg", r"a list \(or any iterable\) of frames, but found a path \('frame.jpg'\)"),
    (Path("frames"), r"but found a path \('frames'\)"),
    (7, r"a list \(or any iterable\) of frames, but found int$"),
])
def test_what_is_not_a_batch_of_frames_is_refused_by_infer(tiny_loaded, frames, fix):
    with pytest.raises(TypeError, match=fix):
        Detector(tiny_loaded, device="cpu").infer(frames)


@pytest.mark.parametrize("shape", [(3, 5000, 3), (5000, 3)])
def test_a_frame_too_thin_to_resize_is_refused_before_the_model(tiny_loaded, shape):
    """Resized to the model's input size its short side would round to 0 pixels: torch's
    own error from deep inside the resize said nothing of the frame."""
    detector = Detector(tiny_loaded, device="cpu")
    with pytest.raises(ValueError, match=r"Expected a frame the model can take, but "
                                         r"\d+x\d+ is too thin"):
        detector.infer([scene(96, 160, seed=0), np.zeros(shape, np.uint8)])


def test_a_read_only_frame_is_detected_without_a_warning():
    """A frame made with np.frombuffer (a ROS image message, a shared buffer) is read-only;
    torch warned "The given NumPy array is not writable ... undefined behavior" about it,
    once per process, so the test runs in a fresh one."""
    code = (
        "import numpy as np, torch\n"
        "from drivevision.detector import Detector\n"
        "from drivevision.labels import COCO_NAMES\n"
        "from drivevision.model import LoadedModel, build_model\n"
        "model = build_model('tiny-fpn', num_classes=91, rpn_post_nms_top_n_test=10)\n"
        "detector = Detector(LoadedModel(model, 'tiny-fpn', COCO_NAMES, 'x'), device='cpu')\n"
        "frame = np.frombuffer(bytes(range(256)) * 180, np.uint8).reshape(96, 160, 3)\n"
        "detector(frame)\n"
    )
    subprocess.run([sys.executable, "-W", "error:The given NumPy array", "-c", code],
                   check=True, timeout=300)
