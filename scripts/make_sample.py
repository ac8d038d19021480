"""Generate the bundled sample clip (H.264 MP4) and, optionally, its ground truth as JSONL.

    python scripts/make_sample.py --out assets/sample.mp4 --gt assets/sample_gt.jsonl

Each ground-truth line is ``{"frame": i, "width": W, "height": H, "boxes": [[x1, y1, x2,
y2], ...], "labels": [...], "track_ids": [...]}`` with xyxy pixel boxes, COCO class names and
each object's identity (as ``drivevision eval`` reads it, tracks included). The same
arguments always give the same ground truth and the same video bytes.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from drivevision.synthetic import Scene, write_clip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("assets/sample.mp4"), help="MP4 to write")
    p.add_argument("--frames", type=int, default=40)
    p.add_argument("--width", type=int, default=640)
    p.add_argument("--height", type=int, default=360)
    p.add_argument("--fps", type=float, default=10.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--gt", type=Path, default=None, help="JSONL ground truth to write")
    return p.parse_args(argv)


def write_ground_truth(path: Path, scenes: list[Scene], width: int, height: int) -> None:
    """One JSON object per frame; coordinates rounded to 0.01 px so the text is stable."""
    with open(path, "w", encoding="utf-8") as f:
        for i, scene in enumerate(scenes):
            boxes = [[round(float(v), 2) for v in box] for box in scene.boxes]
            f.write(json.dumps({"frame": i, "width": width, "height": height, "boxes": boxes,
                                "labels": list(scene.labels),
                                "track_ids": [int(t) for t in scene.ids]}) + "\n")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    scenes = write_clip(args.out, args.frames, width=args.width, height=args.height,
                        fps=args.fps, seed=args.seed)
    if args.gt is not None:
        args.gt.parent.mkdir(parents=True, exist_ok=True)
        write_ground_truth(args.gt, scenes, args.width, args.height)
    n_boxes = sum(len(s.labels) for s in scenes)
    print(f"{args.out}: {len(scenes)} frames, {args.out.stat().st_size / 1024:.0f} KiB, "
          f"{n_boxes} boxes, {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
