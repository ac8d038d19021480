"""A CUDA detector call with fixed shapes (no wait for the GPU before the detections' copy)
against torchvision's data-dependent way (filters, NMS that copy to the host), interleaved.

    python scripts/bench_cuda_sync.py [--model r50-fpn] [--input-size 800x1344]
                                      [--batch 1,8] [--precision fp16] [--iters 20]

For each batch size and each way, per call: the wall time of ``Detector.infer``; the host's
time until it has queued everything before the copy (fixed shapes: only the launches; the
other way waits for the GPU on the way); and the synchronizing calls torch counts
(``torch.cuda.set_sync_debug_mode("warn")``). Random weights (speed does not depend on
them), one generated scene of the input size repeated. ``--device cpu`` runs the same on
the CPU (no sync counts): a check of the script, not a figure to quote.
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from drivevision.detector import Detector
from drivevision.labels import COCO_NAMES
from drivevision.model import LoadedModel, build_model
from drivevision.synthetic import SceneGenerator


def detector(args) -> Detector:
    torch.manual_seed(0)
    height, width = args.size
    model = build_model(args.model, num_classes=91, min_size=height, max_size=width)
    return Detector(LoadedModel(model, args.model, COCO_NAMES, "random"), engine=args.engine,
                    device=args.device, precision=args.precision, conf=0.05, classes="all")


def one_call(det: Detector, frames: list) -> tuple[float, float, int]:
    """Wall ms of one call, host ms until the detections' copy, synchronizing calls."""
    cuda = det.device.type == "cuda"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        if cuda:
            torch.cuda.set_sync_debug_mode("warn")
        try:
            start = time.perf_counter()
            with torch.inference_mode():
                images, sizes = det.preprocess(frames)
                features, objectness, deltas = det.engine.dense_a(images.tensors)
                rois = det._proposals(images, features, objectness, deltas)
                logits, box_deltas = det.engine.dense_b(rois.pooled)
                if rois.valid is not None:
                    rows = det.detection_rows(logits, box_deltas, rois, images.image_sizes,
                                              sizes)
                    queued = time.perf_counter()
                    rows.cpu()
                else:
                    det.postprocess(logits, box_deltas, rois, images.image_sizes, sizes)
                    queued = time.perf_counter()
            end = time.perf_counter()
        finally:
            if cuda:
                torch.cuda.set_sync_debug_mode("default")
    syncs = sum("synchroniz" in str(w.message) for w in caught)
    return (end - start) * 1000, (queued - start) * 1000, syncs


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="r50-fpn")
    parser.add_argument("--input-size", default="800x1344", help="HxW")
    parser.add_argument("--batch", default="1,8")
    parser.add_argument("--engine", default="torch")
    parser.add_argument("--precision", default="fp16")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--iters", type=int, default=20)
    args = parser.parse_args()
    args.size = tuple(int(v) for v in args.input_size.split("x"))
    det = detector(args)
    frame = SceneGenerator(width=args.size[1], height=args.size[0], seed=1).frame(3).image
    name = torch.cuda.get_device_name(det.device) if det.device.type == "cuda" else "CPU"
    print(f"{args.model} {args.engine} {det.precision} at {args.input_size} on {name}, "
          f"torch {torch.__version__}; ms per call, median of {args.iters} (interleaved)")
    print(f"{'batch':>5s} {'way':30s} {'call':>8s} {'host until copy':>16s} {'syncs':>6s}")
    for batch in (int(b) for b in args.batch.split(",")):
        frames = [frame] * batch
        runs: dict[bool, list] = {True: [], False: []}
        for i in range(args.iters + 2):  # two warm-up rounds (Triton compile, cuDNN plans)
            for fixed in (True, False):
                det.middle.fixed = fixed
                result = one_call(det, frames)
                if i >= 2:
                    runs[fixed].append(result)
        for fixed, rows in runs.items():
            way = "fixed shapes" if fixed else "torchvision's (data-dependent)"
            call, host, syncs = (statistics.median(col) for col in zip(*rows))
            print(f"{batch:5d} {way:30s} {call:8.1f} {host:16.1f} {syncs:6.0f}")


if __name__ == "__main__":
    main()
