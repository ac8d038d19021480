"""The fast middle stage computes what torchvision's own RPN and MultiScaleRoIAlign compute:
the same anchors and proposals (bit for bit) and RoI features within 1e-5 (fp32)."""

from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models.detection.rpn import concat_box_prediction_layers

from drivevision.detector import Detector
from drivevision.model import build_model, load_model
from drivevision.proposals import MiddleStage
from drivevision.synthetic import SceneGenerator

FIXTURE = Path(__file__).parents[1] / "assets" / "tiny-fpn-synthetic.pt"


def reference(model, images, features, objectness, deltas):
    """torchvision's way: the model's anchor generator, decode of every anchor,
    ``filter_proposals``, then ``box_roi_pool``."""
    rpn, pool = model.rpn, model.roi_heads.box_roi_pool
    anchors = rpn.anchor_generator(images, features)
    obj, codes = concat_box_prediction_layers(objectness, deltas)
    boxes = rpn.box_coder.decode(codes, anchors).view(len(anchors), -1, 4)
    per_level = [o[0].numel() for o in objectness]
    proposals, _ = rpn.filter_proposals(boxes, obj, images.image_sizes, per_level)
    pooled = pool(dict(zip(pool.featmap_names, features)), proposals, images.image_sizes)
    return proposals, pooled


@pytest.fixture(scope="module")
def trained():
    """The trained fixture's detector and dense A on two scenes of different sizes, batched
    (the smaller one padded, as the transform pads it)."""
    det = Detector(load_model("tiny-fpn", FIXTURE), device="cpu")
    frames = [SceneGenerator(384, 216, seed=99).frame(5).image,
              SceneGenerator(300, 225, seed=98).frame(9).image]
    with torch.inference_mode():
        images, _ = det.preprocess(frames)
        return det, images, det.engine.dense_a(images.tensors)


def random_dense_a(model, images, seed: int):
    """Random objectness/deltas (and features) of the shapes dense A gives for ``images``."""
    g = torch.Generator().manual_seed(seed)
    with torch.inference_mode():
        features = list(model.backbone(images.tensors).values())
    objectness = [torch.randn(f.shape[0], 3, *f.shape[-2:], generator=g) * 3 for f in features]
    deltas = [torch.randn(f.shape[0], 12, *f.shape[-2:], generator=g) for f in features]
    return features, objectness, deltas


def assert_same_stage(got, want, atol: float = 1e-5) -> None:
    (props, pooled), (want_props, want_pooled) = got[:2], want
    assert [len(p) for p in props] == [len(p) for p in want_props]
    for p, w in zip(props, want_props):
        assert torch.equal(p, w)
    assert pooled.shape == want_pooled.shape and pooled.dtype == want_pooled.dtype
    torch.testing.assert_close(pooled, want_pooled, atol=atol, rtol=1e-5)


def test_anchors_are_the_models_own_and_made_once_per_size(trained):
    det, images, (features, _, deltas) = trained
    stage = MiddleStage(det.model)
    want = det.model.rpn.anchor_generator(images, features)
    got = stage.anchors(images, deltas)
    assert all(torch.equal(torch.cat(got), w) for w in want)
    assert stage.anchors(images, deltas) is got
    assert len(got) == len(features)
    as_double = [d.double() for d in deltas]
    assert stage.anchors(images, as_double)[0].dtype == torch.float64
    assert len(stage._anchors) == 2


@pytest.mark.parametrize("one_table", [False, True])
def test_trained_batch_of_two_sizes_equals_torchvision(trained, one_table):
    det, images, dense_a = trained
    assert images.image_sizes[0] != images.image_sizes[1]
    with torch.inference_mode():
        got = MiddleStage(det.model, one_table=one_table)(images, *dense_a)
        want = reference(det.model, images, *dense_a)
    assert min(len(p) for p in got[0]) > 100  # the fixture proposes plenty
    assert_same_stage(got, want)


def random_case(seed: int, proposals: int):
    """A random tiny model (300 boxes per level before NMS, ``proposals`` after), a batch of
    two random images of different sizes, and random dense A outputs for them."""
    torch.manual_seed(seed)
    model = build_model("tiny-fpn", num_classes=5, min_size=160, max_size=256,
                        rpn_pre_nms_top_n_test=300, rpn_post_nms_top_n_test=proposals)
    images, _ = model.transform([torch.rand(3, 150, 250), torch.rand(3, 120, 200)])
    return model, images, random_dense_a(model, images, seed)


@pytest.mark.parametrize("seed", [0, 1])
def test_random_inputs_equal_torchvision(seed):
    model, images, dense_a = random_case(seed, 200)
    with torch.inference_mode():
        got = MiddleStage(model)(images, *dense_a)
        want = reference(model, images, *dense_a)
    assert_same_stage(got, want)


@pytest.mark.parametrize("one_table", [False, True])
def test_roi_align_equals_torchvision_on_channels_last_and_plain_features(trained, one_table):
    det, images, (features, _, _) = trained
    pool = det.model.roi_heads.box_roi_pool
    g = torch.Generator().manual_seed(3)
    boxes = []
    for h, w in images.image_sizes:  # tiny, huge, at the edges, and out of the image
        xy = torch.rand(300, 2, generator=g) * torch.tensor([w, h]) - 8
        wh = torch.rand(300, 2, generator=g) ** 3 * torch.tensor([w, h]) + 0.1
        boxes.append(torch.cat([xy, xy + wh], 1))
    stage = MiddleStage(det.model, one_table=one_table)
    with torch.inference_mode():
        want = pool(dict(zip(pool.featmap_names, features)), boxes, images.image_sizes)
        for layout in (torch.channels_last, torch.contiguous_format):
            feats = [f.contiguous(memory_format=layout) for f in features]
            got = stage.roi_align(feats, boxes, images.image_sizes)
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_bf16_roi_align_stays_within_1e_2_of_fp32(trained):
    det, images, dense_a = trained
    stage = MiddleStage(det.model)
    with torch.inference_mode():
        props, want, _ = stage(images, *dense_a)
        got = stage.roi_align([f.bfloat16() for f in dense_a[0]], props, images.image_sizes)
    assert got.dtype == torch.bfloat16
    assert float((got.float() - want).norm() / want.norm()) < 1e-2


def test_zero_proposals_give_empty_boxes_and_pooled_features(trained):
    det, images, dense_a = trained
    stage = MiddleStage(det.model, fixed=False)
    rpn = det.model.rpn
    old, rpn.score_thresh = rpn.score_thresh, 1.1  # sigmoid scores never reach it
    try:
        with torch.inference_mode():
            got = stage(images, *dense_a)
            want = reference(det.model, images, *dense_a)
    finally:
        rpn.score_thresh = old
    assert [len(p) for p in got[0]] == [0, 0]
    assert got[1].shape == (0, 64, 7, 7)
    assert_same_stage(got, want)


def by_corners(boxes):
    """The order that sorts float[R, 4] boxes by x1, then y1, x2, y2."""
    return torch.from_numpy(np.lexsort(boxes.numpy().T[::-1]).copy())


def assert_padded(got, want):
    """``got``, fixed shapes, holds ``want``'s proposals first, then zero boxes marked not
    real, and the real ones' pooled features equal ``want``'s. Boxes of equal score may
    come in either order (torchvision's sort does not say), so they are matched by place."""
    (boxes, pooled, valid), (want_boxes, want_pooled) = got, want
    count = boxes[0].shape[0]
    assert all(len(b) == count for b in boxes) and valid.shape == (len(boxes), count)
    pooled = pooled.view(len(boxes), count, *pooled.shape[1:])
    for b, v, w, p, wp in zip(boxes, valid, want_boxes, pooled,
                              want_pooled.split([len(w) for w in want_boxes])):
        assert v[: len(w)].all() and not v[len(w):].any() and not b[len(w):].any()
        mine, theirs = by_corners(b[: len(w)]), by_corners(w)
        assert torch.equal(b[mine], w[theirs])
        torch.testing.assert_close(p[mine], wp[theirs], atol=1e-5, rtol=1e-5)


def test_fixed_shapes_hold_torchvisions_proposals_then_padding(trained):
    det, images, dense_a = trained
    with torch.inference_mode():
        got = MiddleStage(det.model, fixed=True)(images, *dense_a)
        want = reference(det.model, images, *dense_a)
    assert got.boxes[0].shape[0] == det.model.rpn.post_nms_top_n()
    assert min(len(p) for p in want[0]) > 100
    assert_padded(got, want)


@pytest.mark.parametrize("seed", [0, 1])
def test_fixed_shapes_on_random_inputs_with_few_anchors(seed):
    model, images, dense_a = random_case(seed, 2000)
    model.rpn.score_thresh = 0.3  # some boxes fail the score filter between kept ones
    with torch.inference_mode():
        got = MiddleStage(model, fixed=True)(images, *dense_a)
        want = reference(model, images, *dense_a)
    # fewer candidates than 2000 proposals: as many rows as the levels' top-k hold
    assert got.boxes[0].shape[0] == sum(min(300, o[0].numel()) for o in dense_a[1]) < 2000
    assert_padded(got, want)


def test_zero_proposals_in_fixed_shapes_are_all_padding_and_find_nothing(trained):
    det, images, dense_a = trained
    rpn = det.model.rpn
    old, rpn.score_thresh = rpn.score_thresh, 1.1  # sigmoid scores never reach it
    try:
        with torch.inference_mode():
            got = MiddleStage(det.model, fixed=True)(images, *dense_a)
            logits, deltas = det.engine.dense_b(got.pooled)
            rows = det.detection_rows(logits, deltas, got, images.image_sizes,
                                      images.image_sizes)
    finally:
        rpn.score_thresh = old
    assert not got.valid.any() and all(not b.any() for b in got.boxes)
    assert rows.shape == (2, det.model.roi_heads.detections_per_img, 7)
    assert not rows.any()  # no detection, and padding rows are zero
