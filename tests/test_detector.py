"""The split detector (preprocess -> engine -> torchvision ops -> postprocess) equals
torchvision's own ``model(images)`` for the same weights and frame."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch._subclasses.fake_tensor import DynamicOutputShapeException, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode
from torchvision.ops import box_iou

from drivevision.config import AGNOSTIC_IOU, DetectorConfig
from drivevision.detections import Detections
from drivevision.detector import STAGES, Detector
from drivevision.labels import COCO_NAMES
from drivevision.model import LoadedModel, build_model, load_model
from drivevision.ops.frames import as_bgr

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


@pytest.mark.parametrize("name, size, box_tol, score_tol", [
    pytest.param("r50-fpn-v2", (200, 320), 1e-3, 1e-5, marks=pytest.mark.slow),
    pytest.param("r50-fpn", (359, 641), 1e-3, 1e-5, marks=pytest.mark.slow),
    ("tiny-fpn", (359, 641), 1e-4, 1e-6),
])
def test_fp32_cpu_detections_equal_torchvision(name, size, box_tol, score_tol):
    """Same detections as ``model(images)``, up to float rounding: the proposals are
    torchvision's bit for bit, but RoIAlign adds its 16 taps per bin in another order than
    torchvision's kernel (pooled features within 1e-7 relative, tests/test_proposals.py),
    which the random-weight ResNet-50 box heads amplify to about 2e-5 relative in boxes
    and 3e-6 in scores; the tiny head keeps the first tolerances."""
    torch.manual_seed(0)
    # 200 proposals: same code path as 1000, faster
    model = build_model(name, num_classes=91, min_size=size[0], max_size=size[1],
                        rpn_post_nms_top_n_test=200)
    model.roi_heads.score_thresh = 0.0  # random weights score ~1/91: keep the top 100
    detector = Detector(LoadedModel(model, name, COCO_NAMES, "random"), device="cpu",
                        conf=0.0, classes="all")
    frame = scene(*size, seed=3)
    ours, ref = detector(frame), reference(model, frame)
    assert len(ours) == len(ref["boxes"]) > 0
    np.testing.assert_allclose(ours.xyxy, ref["boxes"].numpy(), atol=box_tol)
    np.testing.assert_allclose(ours.scores, ref["scores"].numpy(), atol=score_tol)
    assert np.array_equal(ours.class_ids, ref["labels"].numpy())


@pytest.mark.slow
def test_batch_gives_the_same_as_one_frame_at_a_time(tiny_loaded):
    detector = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")
    frames = [scene(120, 200, seed=s) for s in range(3)]
    one_by_one = [detector(f) for f in frames]
    batched = detector.infer(frames)
    for a, b in zip(one_by_one, batched):
        assert len(a) == len(b) > 0
        np.testing.assert_allclose(a.xyxy, b.xyxy, atol=1e-3)
        np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
        assert np.array_equal(a.class_ids, b.class_ids)


@pytest.mark.slow
def test_conf_and_classes_filter_the_output(tiny_loaded):
    frame = scene(120, 200, seed=1)
    everything = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")(frame)
    cars = Detector(tiny_loaded, device="cpu", conf=0.0, classes="car")(frame)
    confident = Detector(tiny_loaded, device="cpu", conf=0.07, classes="all")(frame)
    assert len(everything) > 0
    assert set(cars.class_ids.tolist()) <= {3}
    assert len(cars) == int(np.sum(everything.class_ids == 3))
    assert len(confident) == int(np.sum(everything.scores >= 0.07))


def cross_class_overlaps(det: Detections, above: float) -> int:
    """Pairs of boxes of different classes overlapping by more than ``above`` (IoU)."""
    iou = box_iou(torch.from_numpy(det.xyxy), torch.from_numpy(det.xyxy)).numpy()
    other = det.class_ids[:, None] != det.class_ids[None, :]
    return int(np.triu((iou > above) & other, 1).sum())


def test_agnostic_nms_keeps_the_best_of_boxes_of_different_classes_on_one_object(tiny_loaded):
    frame = scene(120, 200, seed=1)
    plain = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")(frame)
    one = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all", agnostic_nms=True)(frame)
    assert cross_class_overlaps(plain, AGNOSTIC_IOU) > 0  # what the model's own NMS keeps
    assert cross_class_overlaps(one, AGNOSTIC_IOU) == 0
    assert 0 < len(one) < len(plain)
    rows = {tuple(r) for r in np.c_[plain.xyxy, plain.scores, plain.class_ids].tolist()}
    assert all(tuple(r) in rows for r in np.c_[one.xyxy, one.scores, one.class_ids].tolist())
    assert one.scores.max() == plain.scores.max()


def test_agnostic_nms_runs_after_classes_so_a_class_left_out_never_hides_one_kept(tiny_loaded):
    frame = scene(120, 200, seed=1)
    kept_ids = [3, 8, 22, 57]  # random weights: these overlap each other and class 40 a lot
    some = Detector(tiny_loaded, device="cpu", conf=0.0, classes=kept_ids)(frame)
    one = Detector(tiny_loaded, device="cpu", conf=0.0, classes=kept_ids,
                   agnostic_nms=True)(frame)
    assert cross_class_overlaps(some, AGNOSTIC_IOU) > 0
    assert one == some.with_nms(AGNOSTIC_IOU)
    every = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all", agnostic_nms=True)(frame)
    assert len(one) > int(np.isin(every.class_ids, kept_ids).sum())  # class 40 hid some there


def test_a_printed_detector_shows_what_it_runs_on_one_line(tiny_loaded):
    plain = repr(Detector(tiny_loaded, device="cpu"))
    assert plain == ("Detector(model='tiny-fpn', engine='torch', precision='fp32', device='cpu', "
                     "conf=0.5, classes='driving', proposals=100)")  # the fixture's 100
    tuned = Detector(tiny_loaded, device="cpu", conf=0.25, classes="Car, person", iou=0.6,
                     max_det=20, proposals=1000, agnostic_nms=True)
    assert repr(tuned) == str(tuned) == (
        "Detector(model='tiny-fpn', engine='torch', precision='fp32', device='cpu', conf=0.25, "
        "classes='person,car', agnostic_nms=True, iou=0.6, max_det=20)")
    assert "\n" not in repr(tuned)


@pytest.mark.parametrize("size", ["smaller", "the model's"])
def test_preprocessing_is_torchvisions_transform_bit_for_bit(tiny_loaded, size):
    """Normalized in place and not resized when the frame is already at the model's input
    size, the batch is still exactly what torchvision's own transform makes of the frame."""
    detector = Detector(tiny_loaded, device="cpu", precision="fp32")
    transform = detector.model.transform
    h, w = (120, 200) if size == "smaller" else (transform.min_size[-1], transform.max_size)
    frame = scene(h, w, seed=5)
    ours = detector.preprocess([frame])[0]
    rgb = torch.from_numpy(frame[:, :, ::-1].copy()).permute(2, 0, 1).float().div(255)
    theirs = transform([rgb])[0]
    assert ours.image_sizes == theirs.image_sizes
    assert torch.equal(ours.tensors, theirs.tensors)


def test_boxes_are_in_original_frame_pixels(tiny_loaded):
    frame = scene(359, 641, seed=2)
    det = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")(frame)
    assert len(det) > 0
    assert det.xyxy[:, [0, 2]].max() <= 641 and det.xyxy[:, [1, 3]].max() <= 359
    assert np.all(det.xyxy[:, 2] >= det.xyxy[:, 0]) and np.all(det.xyxy[:, 3] >= det.xyxy[:, 1])


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


def test_fp16_on_cpu_is_refused(tiny_loaded):
    with pytest.raises(ValueError, match="fp16"):
        Detector(tiny_loaded, device="cpu", precision="fp16")


def test_bf16_cpu_path_stays_close_to_fp32(tiny_loaded):
    frame = scene(120, 200, seed=4)
    fp32 = Detector(tiny_loaded, device="cpu", precision="fp32", conf=0.0, classes="all")
    bf16 = Detector(tiny_loaded, device="cpu", precision="bf16", conf=0.0, classes="all")
    images, _ = fp32.preprocess([frame])
    a, b = fp32.engine.dense_a(images.tensors), bf16.engine.dense_a(images.tensors)
    for kind, dtype, want, got in zip(("features", "objectness", "deltas"),
                                      (torch.bfloat16, torch.float32, torch.float32), a, b):
        for x, y in zip(want, got):  # features pooled in bf16, boxes decoded in fp32
            assert y.dtype == dtype, kind
            assert torch.linalg.norm(x - y.float()) / torch.linalg.norm(x) < 5e-2, kind


def test_fp32_weights_are_not_changed_by_a_bf16_detector(tiny_loaded):
    before = next(tiny_loaded.module.parameters()).dtype
    Detector(tiny_loaded, device="cpu", precision="bf16")
    assert next(tiny_loaded.module.parameters()).dtype == before == torch.float32


@pytest.mark.gpu
def test_fp16_cuda_detections_match_fp32():
    """With the trained fixture (confident, well separated scores), fp16 finds what fp32
    finds and nothing else: same classes, boxes matched at IoU >= 0.95. Detections within
    0.05 of the threshold may fall either side of it."""
    loaded = load_model("tiny-fpn", FIXTURE)
    frame = scene(216, 384, seed=99)
    fp32 = Detector(loaded, device="cuda", conf=0.45, classes="all")(frame)
    fp16 = Detector(loaded, device="cuda", precision="fp16", conf=0.45, classes="all")(frame)
    assert int(np.sum(fp32.scores >= 0.55)) >= 2  # it detects things: the match means something
    assert_found_in(fp32, fp16, conf=0.55, min_iou=0.95)
    assert_found_in(fp16, fp32, conf=0.55, min_iou=0.95)


def test_bf16_cpu_detections_match_fp32_as_fp16_on_cuda_must():
    """The comparison the CUDA fp16 test makes, run where a CPU can: bf16 finds what fp32
    finds, box for box (same class, IoU >= 0.9), and the check fails on a moved box."""
    loaded = load_model("tiny-fpn", FIXTURE)
    frame = scene(216, 384, seed=99)
    fp32 = Detector(loaded, device="cpu", conf=0.45, classes="all")(frame)
    bf16 = Detector(loaded, device="cpu", precision="bf16", conf=0.45, classes="all")(frame)
    assert int(np.sum(fp32.scores >= 0.55)) >= 2
    assert_found_in(fp32, bf16, conf=0.55, min_iou=0.9)
    assert_found_in(bf16, fp32, conf=0.55, min_iou=0.9)
    moved = Detections(bf16.xyxy + [30, 0, 30, 0], bf16.scores, bf16.class_ids)
    with pytest.raises(AssertionError, match="has no match"):
        assert_found_in(fp32, moved, conf=0.55, min_iou=0.9)


def assert_found_in(a, b, *, conf: float, min_iou: float) -> None:
    """Each detection of ``a`` scoring >= ``conf`` has one in ``b`` of the same class whose
    box overlaps it with IoU >= ``min_iou``."""
    iou = box_iou(torch.from_numpy(a.xyxy), torch.from_numpy(b.xyxy)).numpy()
    for i in np.flatnonzero(a.scores >= conf):
        same = (b.class_ids == a.class_ids[i]) & (iou[i] >= min_iou)
        assert same.any(), (f"detection {i} (class {a.class_ids[i]}, score {a.scores[i]:.3f}, "
                            f"box {a.xyxy[i].round(1).tolist()}) has no match")


@pytest.mark.slow
def test_fewer_proposals_equal_torchvision_built_with_that_many():
    torch.manual_seed(5)
    ours = build_model("tiny-fpn", num_classes=91)
    ref = build_model("tiny-fpn", num_classes=91, rpn_post_nms_top_n_test=20)
    ref.load_state_dict(ours.state_dict())
    for m in (ours, ref):
        m.roi_heads.score_thresh = 0.0
    frame = scene(120, 200, seed=6)
    detector = Detector(LoadedModel(ours, "tiny-fpn", COCO_NAMES, "x"), device="cpu",
                        conf=0.0, classes="all", proposals=20)
    got, want = detector(frame), reference(ref, frame)
    assert len(got) == len(want["boxes"]) > 0
    np.testing.assert_allclose(got.xyxy, want["boxes"].numpy(), atol=1e-4)
    assert detector.model.rpn.post_nms_top_n() == 20


def test_detectors_from_one_model_keep_their_own_proposals_and_leave_it_alone(tiny_loaded):
    module = tiny_loaded.module
    params = [(p, p.detach().clone()) for p in module.parameters()]
    counts = (module.rpn.pre_nms_top_n(), module.rpn.post_nms_top_n())
    few = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all", proposals=10)
    many = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all", proposals=60)
    frame = scene(120, 200, seed=6)
    results = []
    for detector, count in ((few, 10), (many, 60)):
        ref = build_model("tiny-fpn", num_classes=91, rpn_post_nms_top_n_test=count)
        ref.load_state_dict(module.state_dict())
        ref.roi_heads.score_thresh = 0.0
        got, want = detector(frame), reference(ref, frame)
        assert detector.model.rpn.post_nms_top_n() == count
        assert len(got) == len(want["boxes"]) > 0
        np.testing.assert_allclose(got.xyxy, want["boxes"].numpy(), atol=1e-4)
        assert np.array_equal(got.class_ids, want["labels"].numpy())
        results.append(got)
    assert results[0] != results[1]
    Detector(tiny_loaded, device="meta", conf=0.0, classes="all")  # another device, no GPU
    assert (module.rpn.pre_nms_top_n(), module.rpn.post_nms_top_n()) == counts == (1000, 100)
    assert not module.training
    assert [id(p) for p, _ in params] == [id(p) for p in module.parameters()]
    for p, before in params:
        assert p.device.type == "cpu" and torch.equal(p, before)


EPYC = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_bf16_on_a_cpu_without_bf16_says_it_is_emulated(tiny_loaded, caplog, monkeypatch):
    from drivevision.engines import hardware

    monkeypatch.setattr(hardware, "cpu_features", lambda: hardware.parse_cpuinfo(EPYC))
    Detector(tiny_loaded, device="cpu", precision="bf16")
    assert "emulated and slower than fp32" in caplog.text
    caplog.clear()
    Detector(tiny_loaded, device="cpu", precision="fp32")
    assert caplog.text == ""


class CountingCuda:
    """Stands in for torch.cuda's events and synchronize, counting each wait for the GPU."""

    def __init__(self):
        self.synchronized = self.event_waits = self.events = 0
        cuda = self

        class Event:
            def __init__(self, enable_timing: bool = False):
                assert enable_timing
                self.at = None

            def record(self):
                cuda.events += 1
                self.at = time.perf_counter()

            def synchronize(self):
                cuda.event_waits += 1

            def elapsed_time(self, end) -> float:
                return (end.at - self.at) * 1000.0

        self.Event = Event

    def synchronize(self, device=None):
        self.synchronized += 1


@pytest.mark.parametrize("sync", [False, True])
def test_stages_on_cuda_are_timed_without_waiting_for_the_gpu_unless_asked(
        tiny_loaded, monkeypatch, sync):
    from drivevision import detector as detector_module

    cuda = CountingCuda()
    monkeypatch.setattr(torch.cuda, "Event", cuda.Event)
    monkeypatch.setattr(torch.cuda, "synchronize", cuda.synchronize)
    clock = detector_module.StageClock  # the detector's clock, told it times a CUDA run
    monkeypatch.setattr(detector_module, "StageClock",
                        lambda device, sync: clock(torch.device("cuda"), sync=sync))
    detector = Detector(tiny_loaded, device="cpu", precision="fp32")
    _, ms = detector.infer_timed([scene(120, 200, 3)], sync=sync)
    assert list(ms) == list(STAGES) and all(v >= 0 for v in ms.values())
    if sync:  # bench: a wait after every stage, so each stage's time is its own
        assert (cuda.synchronized, cuda.events) == (len(STAGES) + 1, 0)
    else:  # a run: events only, and one wait on the last (already passed: the host copy)
        assert (cuda.synchronized, cuda.events, cuda.event_waits) == (0, len(STAGES) + 1, 1)


def test_bench_times_stages_with_a_wait_after_each_and_runs_do_not(tiny_loaded, monkeypatch):
    from drivevision.cli.timing import BenchSpec, time_engine

    detector = Detector(tiny_loaded, device="cpu", precision="fp32")
    asked = []
    timed = detector.infer_timed
    monkeypatch.setattr(detector, "infer_timed",
                        lambda frames, **kw: asked.append(kw) or timed(frames, **kw))
    time_engine(detector, [scene(96, 160, 1)], BenchSpec(iters=1, warmup=0), 1)
    assert asked == [{"sync": True}]
    asked.clear()
    detector.infer([scene(96, 160, 1)])
    assert len(asked) == 1 and not asked[0].get("sync")  # a run: no wait after each stage


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fixed_shapes_find_the_same_detections(precision):
    """The sync-free path a CUDA run takes (a fixed number of proposals and detection rows
    per frame), run on the CPU, finds what the data-dependent path finds, bit for bit."""
    loaded = load_model("tiny-fpn", FIXTURE)
    frames = [scene(216, 384, 99), scene(225, 300, 98), scene(360, 640, 7)]
    det = Detector(loaded, device="cpu", precision=precision, conf=0.0, classes="all")
    want = det.infer(frames)
    det.middle.fixed = True
    got = det.infer(frames)
    assert sum(len(w) for w in want) > 100
    for g, w in zip(got, want):
        assert np.array_equal(g.xyxy, w.xyxy) and np.array_equal(g.scores, w.scores)
        assert np.array_equal(g.class_ids, w.class_ids)


class HostWaits(TorchDispatchMode):
    """Records each operation that makes the host wait for a CUDA GPU: a copy to the host, a
    read of one value, a blocking copy to the GPU. (Ones whose output size depends on the
    data, nonzero or torchvision's NMS, already fail under FakeTensorMode.)"""

    def __init__(self):
        super().__init__()
        self.waits = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        given = dict(zip([a.name for a in func._schema.arguments], args), **(kwargs or {}))
        if name in ("aten::_local_scalar_dense", "aten::item"):
            self.waits.append(name)
        elif name in ("aten::to", "aten::_to_copy", "aten::copy_"):
            src = (given["src"] if name == "aten::copy_" else given["self"]).device
            dst = given["self"].device if name == "aten::copy_" else torch.device(
                given.get("device") or getattr(given.get("other"), "device", src))
            if (src.type, dst.type) == ("cuda", "cpu"):
                self.waits.append(f"copy to the host, {name}")
            elif (src.type, dst.type) == ("cpu", "cuda") and not given.get("non_blocking"):
                self.waits.append(f"blocking copy to the GPU, {name}")
        return func(*args, **(kwargs or {}))


def on_fake_cuda(det: Detector, mode: FakeTensorMode, half: bool = False) -> None:
    """Moves ``det``'s weights (and the anchor generator's cell anchors, uploaded once per
    detector) to a CUDA device that only tracks shapes: FakeTensorMode needs no GPU.
    ``half``: bf16 weights become fp16 (CUDA's half precision)."""
    with mode:
        for module in {id(m): m for m in (det.model, det.engine.dense)}.values():
            for part in module.modules():
                for store in (part._parameters, part._buffers):
                    for name, value in store.items():
                        if value is not None:
                            dtype = torch.float16 if half and value.dtype == torch.bfloat16 \
                                else value.dtype
                            store[name] = torch.empty_like(value, device="cuda", dtype=dtype)
        generator = det.model.rpn.anchor_generator
        generator.cell_anchors = [torch.empty_like(c, device="cuda")
                                  for c in generator.cell_anchors]
    det.device = torch.device("cuda")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_cuda_run_waits_for_the_gpu_only_to_copy_the_detections(precision):
    """From the frames on the GPU to the detection rows nothing waits for it (the issue's
    'no host synchronisation'); the one wait is the rows' copy to the host. The data-dependent path
    (torchvision's filters and NMS) is shown to be caught by the same check."""
    pytest.importorskip("triton")  # what the fixed path's NMS runs on a GPU
    det = Detector(load_model("tiny-fpn", FIXTURE), device="cpu",
                   precision="bf16" if precision == "fp16" else "fp32")
    frames = [scene(216, 384, 99), scene(225, 300, 98)]
    with torch.inference_mode():
        images, sizes = det.preprocess(frames)
        det.infer(frames)  # the RoI pooler's scales, set on its first call
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    on_fake_cuda(det, mode, half=precision == "fp16")
    det.engine.dtype = {"fp32": torch.float32, "fp16": torch.float16}[precision]
    watch = HostWaits()

    def device_part():
        fake = det.batch([torch.empty(f.shape, dtype=torch.uint8, device="cuda") for f in frames])
        assert fake.image_sizes == images.image_sizes
        features, objectness, deltas = det.engine.dense_a(fake.tensors)
        rois = det._proposals(fake, features, objectness, deltas)
        logits, box_deltas = det.engine.dense_b(rois.pooled)
        return det.detection_rows(logits, box_deltas, rois, fake.image_sizes, sizes)

    with mode, torch.inference_mode():
        with watch:
            rows = device_part()
            assert watch.waits == []
            rows.cpu()
        assert watch.waits == ["copy to the host, aten::to"]
        assert rows.device.type == "cuda" and rows.shape == (2, 100, 7)
        det.middle.fixed = False  # torchvision's way: a nonzero, then NMS, per image
        with pytest.raises(DynamicOutputShapeException):
            device_part()


@pytest.mark.gpu
def test_a_real_cuda_run_makes_no_synchronizing_call_before_the_copy():
    """On a GPU, torch's own sync check (an error on any synchronizing call) from the frames
    on the GPU to the detection rows; and the detections equal the CPU's data-dependent path's."""
    pytest.importorskip("triton")
    loaded = load_model("tiny-fpn", FIXTURE)
    frames = [scene(216, 384, 99), scene(225, 300, 98)]
    det = Detector(loaded, device="cuda", conf=0.0, classes="all")
    found = det.infer(frames)  # warm: anchors, pooler scales, the Triton kernel compiled
    uploaded = [torch.from_numpy(f).cuda() for f in frames]
    sizes = [f.shape[:2] for f in frames]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.inference_mode():
            images = det.batch(uploaded)
            features, objectness, deltas = det.engine.dense_a(images.tensors)
            rois = det._proposals(images, features, objectness, deltas)
            logits, box_deltas = det.engine.dense_b(rois.pooled)
            rows = det.detection_rows(logits, box_deltas, rois, images.image_sizes, sizes)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert rows.shape == (2, 100, 7) and rois.valid is not None
    cpu = Detector(loaded, device="cpu", conf=0.0, classes="all").infer(frames)
    for g, c in zip(found, cpu):
        assert len(g) > 10
        assert_found_in(c, g, conf=0.3, min_iou=0.99)
        assert_found_in(g, c, conf=0.3, min_iou=0.99)


def public_functions():
    """(name, function) for each function and public method among ``drivevision``'s names."""
    import inspect

    import drivevision

    for name in drivevision.__all__:
        public = getattr(drivevision, name)
        if inspect.isfunction(public):
            yield name, public
        elif inspect.isclass(public):
            for attr, function in {**vars(public), "__init__": public.__init__}.items():
                if inspect.isfunction(function) and (attr == "__init__" or attr[0] != "_"):
                    yield f"{name}.{attr}", function


def test_every_argument_of_the_public_api_has_a_type_hint():
    import inspect
    import typing

    for name, function in public_functions():
        hints = typing.get_type_hints(function)  # also: every hint names a real type
        bare = [p for p in inspect.signature(function).parameters
                if p not in ("self", "cls") and p not in hints]
        assert not bare, f"{name}: no type hint for {', '.join(bare)}"


def test_iou_and_max_det_equal_torchvision_built_with_them(tiny_loaded):
    ref = build_model("tiny-fpn", num_classes=91, rpn_post_nms_top_n_test=100,
                      box_nms_thresh=0.3, box_detections_per_img=7)
    ref.load_state_dict(tiny_loaded.module.state_dict())
    ref.roi_heads.score_thresh = 0.0
    frame = scene(120, 200, seed=1)
    detector = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all", iou=0.3, max_det=7)
    got, want = detector(frame), reference(ref, frame)
    assert len(got) == len(want["boxes"]) == 7
    np.testing.assert_allclose(got.xyxy, want["boxes"].numpy(), atol=1e-4)
    plain = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")(frame)
    assert len(plain) > 7  # the model's own 100 a frame, NMS at 0.5
    assert tiny_loaded.module.roi_heads.nms_thresh == 0.5  # the caller's model is left alone


@pytest.mark.parametrize("kwargs, message", [({"iou": 0.0}, r"iou in \(0, 1\], but got 0.0"),
                                             ({"max_det": 0}, "max_det to be an int >= 1")])
def test_an_iou_or_max_det_out_of_range_is_refused(tiny_loaded, kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detector(tiny_loaded, device="cpu", **kwargs)


def test_names_index_of_a_class_the_model_lacks_names_the_close_ones(tiny_loaded):
    names = Detector(tiny_loaded, device="cpu").names
    assert names.index("car") == 3 and names == COCO_NAMES and repr(names) == repr(COCO_NAMES)
    with pytest.raises(ValueError, match=r"^Unknown class 'cars'; did you mean car or "):
        names.index("cars")
    with pytest.raises(ValueError, match=r"^Unknown class 'zzz'; expected one of the model's "
                                         r"classes: person \(1\), bicycle \(2\), car \(3\)"):
        names.index("zzz")


def test_a_calls_conf_and_classes_replace_the_detectors_for_that_call_only(tiny_loaded):
    frame = scene(120, 200, seed=1)
    detector = Detector(tiny_loaded, device="cpu")  # 0.5, driving: random weights score ~0.01
    wide = detector.infer([frame], conf=0.0, classes="all")[0]
    conf, classes = float(np.median(wide.scores)), ["car", "truck", 1]  # 1: person
    some = detector(frame, conf=conf, classes=classes)
    assert some == Detector(tiny_loaded, device="cpu", conf=conf, classes=classes)(frame)
    assert 0 < len(some) < len(wide) and set(some.class_ids) <= {1, 3, 8}
    assert len(detector(frame)) == 0  # its own conf, 0.5, untouched
    detector.middle.fixed = True  # the sync-free path a CUDA run takes, here on the CPU
    assert detector(frame, conf=conf, classes=classes) == some


@pytest.mark.parametrize("options, message", [
    (dict(conf=1.5), r"Expected conf in \[0, 1\], but got 1.5"),
    (dict(conf=-0.1), r"Expected conf in \[0, 1\]"),
    (dict(classes="unicorn"), "Unknown class 'unicorn'"),
])
def test_a_bad_conf_or_class_for_one_call_says_what_was_expected(tiny_loaded, options, message):
    detector = Detector(tiny_loaded, device="cpu")
    with pytest.raises(ValueError, match=message):
        detector(scene(96, 160, seed=0), **options)
    with pytest.raises(ValueError, match=message):
        detector.infer([scene(96, 160, seed=0)], **options)


@pytest.mark.parametrize("given, name", [(torch.device("cpu"), "cpu"),
                                         (torch.device("cuda", 1), "cuda:1"), (0, "cuda:0"),
                                         (np.int64(2), "cuda:2"), ("cuda:1", "cuda:1")])
def test_a_torch_device_or_a_gpu_index_is_taken_as_its_name(given, name):
    # (was: AttributeError, 'torch.device' object has no attribute 'startswith')
    assert DetectorConfig(device=given).device == name


def test_a_detector_runs_on_the_torch_device_it_is_given(tiny_loaded):
    assert Detector(tiny_loaded, device=torch.device("cpu")).device == torch.device("cpu")


@pytest.mark.parametrize("given, found", [(1.5, r"1.5 \(float\)"), (True, r"True \(bool\)"),
                                          (None, r"None \(NoneType\)")])
def test_a_device_of_another_kind_is_a_type_error_saying_what_is_taken(tiny_loaded, given,
                                                                       found):
    expected = (r"^Expected device as a str \(auto, cpu, cuda, cuda:N\), a torch.device or a "
                r"GPU index, but got " + found + "$")
    with pytest.raises(TypeError, match=expected):
        DetectorConfig(device=given)
    with pytest.raises(TypeError, match=expected):
        Detector(tiny_loaded, device=given)


@pytest.mark.parametrize("conf, error, message", [
    (50, ValueError, r"^Expected conf in \[0, 1\], but got 50$"),
    (-0.1, ValueError, r"^Expected conf in \[0, 1\], but got -0.1$"),
    ("0.5", TypeError, r"^Expected conf as a number in \[0, 1\], but got '0.5' \(str\)$"),
])
def test_a_conf_outside_0_to_1_is_refused_by_the_constructor_as_by_the_config(tiny_loaded, conf,
                                                                            error, message):
    # (was: Detector(loaded, conf=50), a percentage, built and found nothing, silently)
    with pytest.raises(error, match=message):
        Detector(tiny_loaded, device="cpu", conf=conf)
    with pytest.raises(error, match=message):
        DetectorConfig(conf=conf)
    with pytest.raises(error, match=message):
        Detector(tiny_loaded, device="cpu")(scene(48, 64, seed=0), conf=conf)
