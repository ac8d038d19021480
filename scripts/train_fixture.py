"""Train the small fixture detector the engine-parity tests use, on generated driving scenes.

Random weights give near-uniform scores whose ranking flips with rounding noise, so they
cannot show that two engines yield the *same detections*. This script trains a tiny-fpn
Faster R-CNN on ``drivevision.synthetic`` scenes for a few minutes on a CPU until it gives
confident, well-separated scores, then writes

* ``assets/tiny-fpn-synthetic.pt``: fp16 checkpoint (architecture, class names and
  resize rule inside; under 3 MB), loadable with ``drivevision.model.load_model``;
* ``assets/tiny-fpn-synthetic.json``: how it was trained and how it did on held-out scenes.

Usage::

    python scripts/train_fixture.py [--minutes 8] [--out assets/tiny-fpn-synthetic.pt]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch
import torchvision

from drivevision.detector import Detector
from drivevision.model import LoadedModel, build_model, load_model, save_checkpoint
from drivevision.synthetic import SceneGenerator

CLASSES = ("__background__", "person", "car", "truck", "bus", "traffic light")
WIDTH, HEIGHT = 384, 216
TRAIN_SEEDS, HELD_OUT_SEED = (11, 12, 13, 14), 99


def scenes(seed: int, n: int, step: int) -> list:
    """``n`` scenes of drive ``seed``, ``step`` frames apart (BGR images, xyxy boxes)."""
    gen = SceneGenerator(WIDTH, HEIGHT, seed=seed)
    return [gen.frame(i * step) for i in range(n)]


def to_sample(scene) -> tuple[torch.Tensor, dict]:
    """A scene as torchvision's training input: RGB float [3, H, W] in [0, 1] and targets."""
    image = torch.from_numpy(scene.image[:, :, ::-1].copy()).permute(2, 0, 1).float() / 255
    labels = torch.tensor([CLASSES.index(n) for n in scene.labels], dtype=torch.int64)
    boxes = torch.from_numpy(scene.boxes).reshape(-1, 4)
    return image, {"boxes": boxes, "labels": labels}


def train(model, samples, *, minutes: float, batch: int, lr: float, seed: int) -> dict:
    """AdamW over shuffled ``samples`` until ``minutes`` pass; returns loss history."""
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    rng = np.random.default_rng(seed)
    model.train()
    start, step, history = time.monotonic(), 0, []
    deadline = start + minutes * 60
    while time.monotonic() < deadline:
        idx = rng.choice(len(samples), batch, replace=False)
        images = [samples[i][0] for i in idx]
        targets = [samples[i][1] for i in idx]
        if rng.random() < 0.5:  # horizontal flip
            images = [im.flip(-1) for im in images]
            targets = [{"boxes": _flip(t["boxes"]), "labels": t["labels"]} for t in targets]
        losses = model(images, targets)
        loss = sum(losses.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        history.append(float(loss))
        if step % 25 == 0:
            print(f"step {step:5d}  {time.monotonic() - start:6.0f} s  "
                  f"loss {np.mean(history[-25:]):.3f}  "
                  + "  ".join(f"{k[5:]} {float(v):.3f}" for k, v in losses.items()), flush=True)
    model.eval()
    return {"steps": step, "seconds": round(time.monotonic() - start, 1),
            "final_loss_mean_last_50": round(float(np.mean(history[-50:])), 4)}


def _flip(boxes: torch.Tensor) -> torch.Tensor:
    out = boxes.clone()
    out[:, 0], out[:, 2] = WIDTH - boxes[:, 2], WIDTH - boxes[:, 0]
    return out


def evaluate(path: Path, held_out: list) -> dict:
    """Detections of the saved checkpoint on held-out scenes: counts, scores, recall@0.5."""
    det = Detector(load_model("tiny-fpn", path), device="cpu", conf=0.5, classes="all")
    found, matched, total, scores = 0, 0, 0, []
    for scene in held_out:
        d = det(scene.image)
        found += len(d)
        scores += d.scores.tolist()
        total += len(scene.labels)
        if len(d) and len(scene.labels):
            iou = torchvision.ops.box_iou(torch.from_numpy(scene.boxes),
                                          torch.from_numpy(d.xyxy))
            matched += int((iou.max(1).values >= 0.5).sum())
    return {"scenes": len(held_out), "ground_truth": total, "detections_at_0.5": found,
            "recall_iou_0.5": round(matched / max(total, 1), 3),
            "score_quantiles_10_50_90": [round(float(q), 3) for q in
                                         np.quantile(scores, [0.1, 0.5, 0.9])] if scores else []}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=8.0)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--frames", type=int, default=150, help="frames per training drive")
    parser.add_argument("--out", default="assets/tiny-fpn-synthetic.pt")
    args = parser.parse_args()
    torch.manual_seed(0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    samples = [to_sample(s) for seed in TRAIN_SEEDS for s in scenes(seed, args.frames, 5)]
    # Training-only sampling sizes (not saved): fewer RoIs per step, so more steps per minute.
    model = build_model("tiny-fpn", num_classes=len(CLASSES), min_size=HEIGHT, max_size=WIDTH,
                        rpn_pre_nms_top_n_train=1000, rpn_post_nms_top_n_train=500)
    model.roi_heads.fg_bg_sampler.batch_size_per_image = 128
    info = train(model, samples, minutes=args.minutes, batch=args.batch, lr=args.lr, seed=0)
    save_checkpoint(LoadedModel(model, "tiny-fpn", CLASSES, "training"), out, half=True)
    report = {
        "model": "tiny-fpn", "classes": CLASSES, "input": [HEIGHT, WIDTH],
        "train_scenes": {"seeds": TRAIN_SEEDS, "frames_per_seed": args.frames, "frame_step": 5,
                         "generator": "drivevision.synthetic.SceneGenerator", "hflip": 0.5},
        "optimizer": {"name": "AdamW", "lr": args.lr, "weight_decay": 1e-4, "batch": args.batch},
        "training": info, "saved_as": "fp16", "file_bytes": out.stat().st_size,
        "held_out": evaluate(out, scenes(HELD_OUT_SEED, 20, 13)),
        "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
