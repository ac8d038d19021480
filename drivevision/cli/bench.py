"""``drivevision bench``: time each engine stage by stage against torchvision eager
(the measuring itself is in ``drivevision.cli.timing``)."""

from __future__ import annotations

import argparse
import json
import sys

from drivevision.cli.options import csv_list, model_args


def add_parser(commands) -> None:
    """Register ``bench`` on the ``drivevision`` sub-command parsers."""
    bench = commands.add_parser(
        "bench", help="time each engine stage by stage against torchvision eager",
        description="Per engine and precision: median and p95 ms of every detector stage, "
                    "frames/s per batch size, and the speedup over torchvision's eager fp32 "
                    "model(images) measured in the same run.")
    model_args(bench)
    bench.add_argument("--engines", default="torch,onnx,compiled", help="comma list")
    bench.add_argument("--precision", default="fp32", help="comma list of fp32, fp16, bf16")
    bench.add_argument("--batch", default="1", help="comma list of batch sizes")
    bench.add_argument("--input-size", default="800x1344", metavar="HxW")
    bench.add_argument("--iters", type=int, default=10, help="timed calls per setting")
    bench.add_argument("--warmup", type=int, default=2, help="untimed calls first")
    bench.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    bench.add_argument("--json", action="store_true", help="print JSON instead of tables")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from drivevision.cli.timing import BenchSpec, format_tables, run_bench
    from drivevision.engines.export import parse_size

    spec = BenchSpec(model=args.model, weights=args.weights, engines=csv_list(args.engines),
                     precisions=csv_list(args.precision), batches=csv_list(args.batch, int),
                     input_size=parse_size(args.input_size), iters=args.iters,
                     warmup=args.warmup, device=args.device)
    result = run_bench(spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1) if args.json else format_tables(result))
    return 0
