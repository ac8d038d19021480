"""Start-up benchmark: how long a new process takes to its first detection, run after run.

    python scripts/bench_startup.py --model r50-fpn --engine compiled --precision int8 \\
        --calib assets/sample.mp4 --size 1344x800 --min-size 800 --max-size 1344 --runs 3

Runs ``--runs`` processes one after another on one engine cache (a new empty folder unless
``--cache`` names one), so the first shows a first use (calibration, compilation, export)
and the later ones a later run. Each prints the seconds to build the detector, the seconds
of its first frame, and the median ms of the next ``--frames``. Weights are random unless
--weights is given.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
import warnings


def child(args) -> None:
    import logging

    from bench_pipeline import real_detector  # this folder is on the path of a script

    from drivevision.synthetic import SceneGenerator

    warnings.filterwarnings("ignore", category=UserWarning, module="torch")
    logging.getLogger("torch.utils.cpp_extension").setLevel(logging.ERROR)
    w, h = args.size
    frames = [SceneGenerator(w, h, seed=3).frame(i).image for i in range(args.frames + 1)]
    start = time.perf_counter()
    detector = real_detector(args, args.precision, engine=args.engine)
    built = time.perf_counter()
    detector.infer(frames[:1])
    first = time.perf_counter()
    times = []
    for frame in frames[1:]:
        t = time.perf_counter()
        detector.infer([frame])
        times.append(time.perf_counter() - t)
    print(f"{detector.engine.name} {detector.precision}: detector built in "
          f"{built - start:.1f} s, first frame {first - built:.1f} s, then "
          f"{statistics.median(times) * 1000:.0f} ms a frame (median of {len(times)})",
          flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="r50-fpn-v2")
    parser.add_argument("--weights")
    parser.add_argument("--engine", default="compiled")
    parser.add_argument("--precision", default="int8")
    parser.add_argument("--calib", help="int8: a clip or image folder to calibrate on")
    parser.add_argument("--size", type=lambda t: tuple(map(int, t.split("x"))),
                        default=(1344, 800), metavar="WxH")
    parser.add_argument("--min-size", type=int, default=800)
    parser.add_argument("--max-size", type=int, default=1344)
    parser.add_argument("--frames", type=int, default=4, help="frames timed after the first")
    parser.add_argument("--runs", type=int, default=3, help="processes, one after another")
    parser.add_argument("--cache", help="engine cache folder (default: a new empty one)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "DRIVEVISION_CACHE": args.cache or tmp}
        for run in range(1, args.runs + 1):
            print(f"run {run}: ", end="", flush=True)
            done = subprocess.run([sys.executable, __file__, *sys.argv[1:], "--child"], env=env)
            if done.returncode:
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())
