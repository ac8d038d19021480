"""Time dense A (backbone + FPN + RPN head) of several engine/precision pairs in one
process, interleaved call by call, so that a machine shared with other jobs slows every
pair alike (``drivevision bench`` times them one after the other):

    python scripts/bench_dense_a.py compiled:bf16 compiled:int8 onnx:int8 --rounds 8

Random R50-FPN v1 weights at 800x1344; int8 calibrates on generated scenes as ``bench``
does without ``--calib`` (timings only). Prints each pair's first call (compilation or
calibration included) and its median and fastest dense A time over the rounds.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from drivevision.cli.timing import BenchSpec, bench_calibration, bench_model, frames_for
from drivevision.detector import Detector


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("pairs", nargs="+", help="ENGINE:PRECISION, e.g. compiled:int8")
    p.add_argument("--model", default="r50-fpn")
    p.add_argument("--input-size", default="800x1344", help="HxW")
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args(argv)
    h, w = (int(v) for v in args.input_size.split("x"))
    spec = BenchSpec(model=args.model, input_size=(h, w), device="cpu")
    loaded, weights = bench_model(spec)
    calib, calibration = bench_calibration(spec)
    print(f"{loaded.name}: weights {weights}; int8 calibrated on {calibration}")
    frames = frames_for(spec, 1)
    runs = {}
    for pair in args.pairs:
        engine, precision = pair.split(":")
        det = Detector(loaded, engine=engine, device="cpu", precision=precision, conf=0.5,
                       classes="all", calib=calib)
        images = det.preprocess(frames)[0].tensors
        t0 = time.perf_counter()
        det.engine.dense_a(images)
        print(f"{pair}: first call {time.perf_counter() - t0:.1f} s", flush=True)
        runs[pair] = (det.engine.dense_a, images)
    times: dict[str, list[float]] = {pair: [] for pair in runs}
    for _ in range(args.rounds):
        for pair, (fn, images) in runs.items():
            t0 = time.perf_counter()
            fn(images)
            times[pair].append((time.perf_counter() - t0) * 1000)
    for pair, ms in times.items():
        print(f"{pair}: dense A median {statistics.median(ms):.0f} ms, fastest {min(ms):.0f} ms "
              f"({args.rounds} interleaved rounds)")
    print("load average (1, 5, 15 min): " + ", ".join(f"{v:.2f}" for v in os.getloadavg()))


if __name__ == "__main__":
    main()
