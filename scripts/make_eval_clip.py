"""Write the labelled evaluation clip (drives the demo model never trained on) and its
ground truth as JSONL, for ``drivevision eval``:

    python scripts/make_eval_clip.py --out eval.mp4 --gt eval_gt.jsonl
    drivevision eval --gt eval_gt.jsonl eval.mp4 --weights assets/tiny-fpn-synthetic.pt
"""

from __future__ import annotations

import argparse
from pathlib import Path

from drivevision.synthetic import EVAL_SEEDS, write_eval_clip


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("eval.mp4"), help="MP4 to write")
    p.add_argument("--gt", type=Path, default=Path("eval_gt.jsonl"), help="JSONL to write")
    p.add_argument("--seeds", default=",".join(map(str, EVAL_SEEDS)), help="drives, comma list")
    p.add_argument("--frames", type=int, default=30, help="frames per drive")
    args = p.parse_args(argv)
    seeds = tuple(int(s) for s in args.seeds.split(","))
    for path in (args.out, args.gt):
        path.parent.mkdir(parents=True, exist_ok=True)
    scenes = write_eval_clip(args.out, args.gt, seeds=seeds, frames_per_seed=args.frames)
    print(f"{args.out}, {args.gt}: {len(scenes)} frames, "
          f"{sum(len(s.labels) for s in scenes)} boxes")


if __name__ == "__main__":
    main()
