"""Times the middle stage (anchors, top-k, decode, filters, NMS, RoIAlign) piece by piece:
torchvision's own functions against drivevision.proposals, interleaved in one run.

    python scripts/bench_proposals.py [--model r50-fpn] [--input-size 800x1344] [--repeat 7]
                                      [--threads N]

Random weights (torch.manual_seed(0)), one generated scene of exactly the input size, dense A
run once by the eager bf16 engine. drivevision pools its channels-last bf16 features as the
bf16 engines hand them over; torchvision gets them converted to fp32 (its CPU RoIAlign takes
no bf16), as the engines converted them before; that conversion, which was part of dense A,
is the row "features to fp32". Prints the median and the minimum ms of each piece.
``--threads 1`` gives steadier figures on a machine whose cores other jobs share: a
parallel op then never waits for a worker thread that was descheduled.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torchvision.models.detection.rpn import concat_box_prediction_layers
from torchvision.ops import boxes as box_ops

from drivevision.detector import Detector
from drivevision.labels import COCO_NAMES
from drivevision.model import LoadedModel, build_model
from drivevision.ops.boxes import clip_to_images
from drivevision.proposals import MiddleStage, top_k_per_level
from drivevision.synthetic import SceneGenerator


def inputs(model_name: str, height: int, width: int):
    """The detector and one frame's dense A outputs (images, features, objectness, deltas)."""
    torch.manual_seed(0)
    model = build_model(model_name, num_classes=91, min_size=height, max_size=width)
    det = Detector(LoadedModel(model, model_name, COCO_NAMES, "random"), device="cpu",
                   precision="bf16")
    frame = SceneGenerator(width=width, height=height, seed=1).frame(3).image
    images, _ = det.preprocess([frame])
    return det, images, det.engine.dense_a(images.tensors)


def reference_stage(model, images, features, objectness, deltas):
    """The stage as torchvision's modules compute it (the detector's code before
    drivevision.proposals): proposals per image and pooled RoI features."""
    rpn, pool = model.rpn, model.roi_heads.box_roi_pool
    anchors = rpn.anchor_generator(images, features)
    obj, codes = concat_box_prediction_layers(objectness, deltas)
    boxes = rpn.box_coder.decode(codes, anchors).view(len(anchors), -1, 4)
    per_level = [o[0].numel() for o in objectness]
    proposals, _ = rpn.filter_proposals(boxes, obj, images.image_sizes, per_level)
    pooled = pool(dict(zip(pool.featmap_names, features)), proposals, images.image_sizes)
    return proposals, pooled


def torchvision_pieces(det, images, features, objectness, deltas) -> dict:
    """The pieces of the current path (torchvision's functions), as zero-argument calls."""
    rpn, pool = det.model.rpn, det.model.roi_heads.box_roi_pool
    engine_features, features = features, [f.float() for f in features]
    per_level = [o[0].numel() for o in objectness]
    anchors = rpn.anchor_generator(images, features)
    obj, codes = concat_box_prediction_layers(objectness, deltas)
    boxes = rpn.box_coder.decode(codes, anchors).view(1, -1, 4)
    top = rpn._get_top_n_idx(obj.reshape(1, -1), per_level)[0]
    level = torch.cat([torch.full((n,), i) for i, n in enumerate(per_level)])[top]
    chosen, scores = boxes[0, top], torch.sigmoid(obj.reshape(1, -1)[0, top])
    proposals, _ = rpn.filter_proposals(boxes, obj, images.image_sizes, per_level)
    feature_map = dict(zip(pool.featmap_names, features))
    return {
        "anchors": lambda: rpn.anchor_generator(images, features),
        "decode": lambda: rpn.box_coder.decode(
            concat_box_prediction_layers(objectness, deltas)[1], anchors),
        "top-k": lambda: rpn._get_top_n_idx(obj.reshape(1, -1), per_level),
        "clip+filters": lambda: box_ops.remove_small_boxes(
            box_ops.clip_boxes_to_image(chosen, images.image_sizes[0]), rpn.min_size),
        "NMS": lambda: box_ops.batched_nms(chosen, scores, level, rpn.nms_thresh),
        "RoIAlign": lambda: pool(feature_map, proposals, images.image_sizes),
        "whole stage": lambda: reference_stage(det.model, images, features, objectness, deltas),
        "features to fp32": lambda: [f.float() for f in engine_features],
    }


def our_pieces(det, images, features, objectness, deltas) -> dict:
    """The same pieces in drivevision.proposals."""
    stage, rpn = MiddleStage(det.model), det.model.rpn
    anchors = stage.anchors(images, deltas)
    logits, codes, picked, level = top_k_per_level(objectness, deltas, anchors,
                                                   rpn.pre_nms_top_n())
    boxes = rpn.box_coder.decode_single(codes.reshape(-1, 4), picked.reshape(-1, 4))
    boxes = clip_to_images(boxes.view(1, -1, 4), images.image_sizes)
    scores = torch.sigmoid(logits)
    proposals = stage.proposals(anchors, objectness, deltas, images.image_sizes)
    return {
        "anchors": lambda: stage.anchors(images, deltas),
        "decode": lambda: rpn.box_coder.decode_single(codes.reshape(-1, 4),
                                                      picked.reshape(-1, 4)),
        "top-k": lambda: top_k_per_level(objectness, deltas, anchors, rpn.pre_nms_top_n()),
        "clip+filters": lambda: (clip_to_images(boxes, images.image_sizes)[..., 2:]
                                 >= rpn.min_size).all(-1) & (scores >= rpn.score_thresh),
        "NMS": lambda: box_ops.batched_nms(boxes[0], scores[0], level, rpn.nms_thresh),
        "RoIAlign": lambda: stage.roi_align(features, proposals, images.image_sizes),
        "whole stage": lambda: stage(images, features, objectness, deltas),
        "features to fp32": lambda: None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="r50-fpn")
    parser.add_argument("--input-size", default="800x1344", help="HxW")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    height, width = (int(v) for v in args.input_size.split("x"))
    with torch.inference_mode():
        det, images, dense_a = inputs(args.model, height, width)
        ours = our_pieces(det, images, *dense_a)
        theirs = torchvision_pieces(det, images, *dense_a)
        ms = {(side, k): [] for side in ("torchvision", "drivevision") for k in ours}
        for _ in range(args.repeat + 1):  # the first round warms up and is dropped
            for key in ours:
                for side, fn in (("torchvision", theirs[key]), ("drivevision", ours[key])):
                    start = time.perf_counter()
                    fn()
                    ms[side, key].append((time.perf_counter() - start) * 1000)
    print(f"{args.model} at {args.input_size}, batch 1, {torch.get_num_threads()} threads, "
          f"torch {torch.__version__}; ms per call, median (min) of {args.repeat}")
    print(f"{'piece':14s} {'torchvision':>18s} {'drivevision':>18s}")
    for key in ours:
        cells = [f"{statistics.median(v[1:]):8.1f} ({min(v[1:]):6.1f})"
                 for v in (ms["torchvision", key], ms["drivevision", key])]
        print(f"{key:14s} {cells[0]:>18s} {cells[1]:>18s}")


if __name__ == "__main__":
    main()
