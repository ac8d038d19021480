"""``drivevision bench``: time each engine stage by stage against torchvision eager
(the measuring itself is in ``drivevision.cli.timing``, the tables in ``bench_tables``)."""

from __future__ import annotations

import argparse
import json
import sys

from drivevision.cli.exits import EXIT_INTERRUPTED, EXIT_OK
from drivevision.cli.help import add_command
from drivevision.cli.options import (
    add_alias,
    at_least,
    calib_frames_arg,
    check_cache,
    csv_list,
    input_size,
    int_list,
    model_args,
)


def add_parser(commands) -> None:
    """Register ``bench`` on the ``drivevision`` sub-command parsers."""
    bench = add_command(
        commands, "bench", summary="time each engine stage by stage against torchvision eager",
        description="Per engine and precision: median and p95 ms of every detector stage, "
                    "frames/s per batch size, and the speedup over torchvision's eager fp32 "
                    "model(images) measured in the same run.",
        examples="""
drivevision bench --engines torch,onnx --input-size 384x640 --iters 5  # CPU
drivevision bench --device cuda --engines compiled,tensorrt --precision fp16
drivevision bench --weights assets/tiny-fpn-synthetic.pt --json > bench.json
drivevision bench --engines auto --precision auto  # what auto picks here, why""")
    model_args(bench)
    g = bench.add_argument_group("what to time")
    add_alias(g, "--engine", g.add_argument(
        "--engines", default="torch,onnx,compiled",
        help="comma list of torch, onnx, compiled, tensorrt"))
    add_alias(g, "--precisions", g.add_argument(
        "--precision", default="fp32",
        help="comma list of fp32, fp16, bf16, int8, auto (what --precision auto picks on this "
             "machine, and why)"))
    g.add_argument("--calib", metavar="CLIP_OR_FOLDER",
                   help="int8: footage to calibrate on (default: generated scenes, fine for "
                        "timing; eval measures accuracy)")
    calib_frames_arg(g)
    g.add_argument("--batch", type=int_list, default="1",
                   help="comma list of batch sizes")
    g.add_argument("--input-size", type=input_size, default="800x1344", metavar="HxW",
                   help="size of the generated test images, multiples of 32 (the size the "
                        "detector pads to; as export)")
    g.add_argument("--iters", type=at_least(1), default=10, metavar="N",
                   help="timed calls per setting")
    g.add_argument("--warmup", type=at_least(0), default=2, metavar="N",
                   help="untimed calls first")
    g.add_argument("--device", default="auto", help="auto|cpu|cuda|cuda:N")
    g.add_argument("--json", action="store_true", help="print JSON instead of tables")
    bench.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from drivevision.cli.bench_tables import format_tables
    from drivevision.cli.checkpoint import check_weights
    from drivevision.cli.timing import BenchSpec, run_bench

    check_weights(args)  # said with the options; load_model names its keywords
    spec = BenchSpec(model=args.model, weights=args.weights, engines=csv_list(args.engines),
                     precisions=csv_list(args.precision), batches=args.batch,
                     input_size=args.input_size, iters=args.iters,
                     warmup=args.warmup, device=args.device, calib=args.calib,
                     calib_frames=args.calib_frames)
    _check_runnable(spec)
    result = run_bench(spec, log=lambda m: print(m, file=sys.stderr, flush=True))
    print(json.dumps(result, indent=1) if args.json else format_tables(result))
    return EXIT_INTERRUPTED if result.get("interrupted") else EXIT_OK


def _check_runnable(spec) -> None:
    """Refuse, before the model loads and torchvision eager is timed, a device this machine
    lacks, engines and precisions of which no pair runs here (tensorrt without CUDA, int8
    on torch): a setting that cannot run is skipped with its reason, but a run with none
    left would measure nothing; and an engine cache the pairs that run would build in but
    cannot (``check_cache``)."""
    from drivevision.cli.settings import why_not_here
    from drivevision.engines.hardware import check_precision, device_kind

    kind = device_kind(spec.device)
    problems = []
    for precision in spec.precisions:
        try:
            check_precision(precision, kind)
        except ValueError as e:
            problems.append(e)
    if len(problems) == len(spec.precisions):
        raise problems[0]
    settings = [(engine, precision) for engine in spec.engines for precision in spec.precisions]
    reasons = [(why := why_not_here(engine, precision, kind)) and f"{engine} {precision}: {why}"
               for engine, precision in settings]
    if all(reasons):
        raise ValueError(f"Expected an engine and precision that run here, but none can, so "
                         f"nothing would be measured ({'; '.join(dict.fromkeys(reasons))})")
    check_cache([s for s, why in zip(settings, reasons) if why is None], kind)
