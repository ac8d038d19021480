"""The split detector (preprocess -> engine -> torchvision ops -> postprocess) equals
torchvision's own ``model(images)`` for the same weights and frame."""

import numpy as np
import pytest
import torch
from detector_scenes import reference, scene
from torchvision.ops import box_iou

from drivevision.config import AGNOSTIC_IOU
from drivevision.detections import Detections
from drivevision.detector import Detector
from drivevision.labels import COCO_NAMES
from drivevision.model import LoadedModel, build_model


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
