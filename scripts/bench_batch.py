"""Throughput of ``drivevision batch``: files/s and frames/s with 1 and 2 local workers and
with Ray on this machine, and Ray's overhead over the local run with as many workers.

    python scripts/bench_batch.py --clips 6 --frames 40 --workers 2

Generated clips, the demo model (assets/tiny-fpn-synthetic.pt, or --weights). Each run
starts its workers (model loads included) and redoes every input (``--force``); Ray is
started once before (its start-up time is printed apart) and its actors get the same CPUs
as the local workers.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from drivevision.batch import BatchSettings, find_jobs, local_workers, plan_batch, run_batch
from drivevision.config import DetectorConfig
from drivevision.synthetic import write_clip

DEMO = Path(__file__).parents[1] / "assets" / "tiny-fpn-synthetic.pt"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=6, help="generated clips")
    p.add_argument("--frames", type=int, default=40, help="frames per clip")
    p.add_argument("--size", default="320x192", help="WxH of the clips")
    p.add_argument("--workers", type=int, default=2, help="local workers (and Ray actors) "
                   "of the Ray comparison")
    p.add_argument("--weights", default=str(DEMO))
    p.add_argument("--no-ray", action="store_true", help="local workers only")
    return p.parse_args(argv)


def make_clips(folder: Path, count: int, frames: int, size: str) -> None:
    width, height = (int(v) for v in size.split("x"))
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        write_clip(folder / f"clip_{i:03d}.mp4", frames, width=width, height=height, seed=i)


def timed(name: str, folder: Path, out: Path, settings: BatchSettings, workers) -> float:
    """Run the batch once; print and return its wall seconds."""
    plan = plan_batch(find_jobs([str(folder)], out), out, settings, force=True)
    start = time.perf_counter()
    outcome = run_batch(plan, workers)
    seconds = time.perf_counter() - start
    s = outcome.summary
    assert s["failed"] == 0, outcome.rows
    print(f"{name:<22}{s['done'] / seconds:>8.2f} files/s{s['frames'] / seconds:>9.1f} "
          f"frames/s{seconds:>8.1f} s")
    return seconds


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    settings = BatchSettings(DetectorConfig(weights=args.weights, device="cpu"))
    with tempfile.TemporaryDirectory() as tmp:
        folder, out = Path(tmp) / "clips", Path(tmp) / "out"
        make_clips(folder, args.clips, args.frames, args.size)
        out.mkdir()
        print(f"{args.clips} clips x {args.frames} frames, {args.size}, {args.weights}")
        local = {n: timed(f"local, {n} worker(s)", folder, out, settings,
                          local_workers(settings, out, n)) for n in sorted({1, args.workers})}
        if args.no_ray:
            return
        import ray

        from drivevision.batch.ray_workers import RayWorkers

        start = time.perf_counter()
        ray.init(include_dashboard=False, log_to_driver=False)
        print(f"(Ray started in {time.perf_counter() - start:.1f} s)")
        try:
            on_ray = timed(f"ray, {args.workers} actor(s)", folder, out, settings,
                           RayWorkers(settings, out, None, args.workers))
        finally:
            ray.shutdown()
        overhead = on_ray / local[args.workers] - 1
        print(f"Ray's overhead over {args.workers} local worker(s): {overhead:+.1%}")


if __name__ == "__main__":
    main()
