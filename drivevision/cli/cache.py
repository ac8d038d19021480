"""``drivevision cache``: what the engine cache holds, and clearing it."""

from __future__ import annotations

import argparse
import time

from drivevision.cli.help import add_command
from drivevision.engines.cache import KINDS

ABOUT = {  # what each kind of entry is for, said under a list that has one
    "compiled": "the compiled engine's packages for the CPU (dense_a: one per frame size)",
    "int8": "calibrations (-calib: onnx engine, export; -pt2e-ranges: compiled engine) and "
            "quantized pieces (-int8-cpu: onnx engine; -int8-tensorrt: export)",
    "onnx": "the pieces the onnx engine runs, and that int8 and TensorRT build from",
    "tensorrt": "the tensorrt engine's engines (one per padded frame size)",
}


def add_parser(commands) -> None:
    """Register ``cache`` on the ``drivevision`` sub-command parsers."""
    p = add_command(
        commands, "cache", summary="list or clear the engine cache (built engines, packages)",
        description="List what the engine cache holds (ONNX pieces, int8 calibrations, compiled "
                    "packages, TensorRT engines): each entry's size and when a run last used "
                    "it. With --clear, remove the entries listed. Nothing is removed by "
                    "itself; a removed entry is built again by the next run that needs it. "
                    "The filters choose the entries, for the list and for --clear alike.",
        examples="""
drivevision cache                            # every entry, its size and last use
drivevision cache --clear --older-than 30    # entries no run used for 30 days
drivevision cache --clear --stale            # entries for another torch (after an upgrade)
drivevision cache --clear --kind compiled    # the compiled engine's packages
drivevision cache --clear                    # everything""")
    g = p.add_argument_group("which entries")
    g.add_argument("--kind", choices=KINDS, action="append",
                   help="only this kind (repeat for several; default: every kind)")
    g.add_argument("--older-than", type=float, metavar="DAYS",
                   help="only entries no run has used for DAYS days")
    g.add_argument("--stale", action="store_true",
                   help="only entries no run of this install can use: built with another "
                        "version of torch, ONNX Runtime or torchao, an older cache layout, "
                        "or a build that never finished")
    p.add_argument("--clear", action="store_true", help="remove the entries listed")
    p.set_defaults(func=cmd_cache)


def cmd_cache(args: argparse.Namespace) -> int:
    from drivevision.engines import cache

    if args.older_than is not None and not args.older_than >= 0:
        raise ValueError(f"Expected --older-than DAYS >= 0, but got {args.older_than:g}")
    root = cache.cache_root()
    now = time.time()
    found = cache.entries(root)
    stale = {e.stem: cache.stale(e) for e in found}  # why no run can use it, or None
    chosen = [e for e in found
              if (not args.kind or e.kind in args.kind)
              and (args.older_than is None or now - e.used >= args.older_than * 86400)
              and (not args.stale or stale[e.stem])]
    filtered = bool(args.kind or args.older_than is not None or args.stale)
    print(f"Engine cache {root}: {_entries(len(chosen))}{' chosen' if filtered else ''}, "
          f"{_mb(sum(e.bytes for e in chosen))}")
    if not args.clear:
        _table(chosen, stale, now, _footage(found))
        for kind in dict.fromkeys(e.kind for e in chosen):
            print(f"{kind}/: {ABOUT[kind]}")
        if chosen:
            print("Remove them with the same options and --clear; a run rebuilds what it needs.")
        return 0
    removed, busy = [], []
    for entry in chosen:
        (removed if cache.remove(entry) else busy).append(entry)
    print(f"Removed {_entries(len(removed))}, {_mb(sum(e.bytes for e in removed))} freed")
    for entry in busy:
        print(f"Kept {entry.kind}/{entry.stem.name}: another process is building it")
    return 0


def _footage(found) -> dict[str, str]:
    """Calibration digest -> the name of the footage it was measured on, from the records
    that have it (a compiled int8 package's record names only the digest)."""
    return {str(e.fields.get("calibration")): str(e.about["calibration"])
            for e in found if e.fields.get("calibration") and e.about.get("calibration")}


def _table(chosen, stale: dict, now: float, footage: dict[str, str]) -> None:
    if not chosen:
        return
    rows = [("kind", "entry", "weights", "precision", "calibration", "input", "size",
             "last used", "")]
    for e in chosen:
        why = stale[e.stem]
        int8 = e.fields.get("int8") if isinstance(e.fields.get("int8"), dict) else {}
        calibration = str(e.fields.get("calibration") or int8.get("calibration") or "")
        if calibration in footage:  # the footage's name, and enough digest to tell apart
            calibration = f"{footage[calibration]} ({calibration[:8]})"
        rows.append((e.kind, e.name, str(e.fields.get("weights_id", "")),
                     _precision(e), calibration, _input(e.fields),
                     _mb(e.bytes), _ago(now - e.used),
                     "being built now" if e.building else f"stale: {why}" if why else ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(c.rjust(w) if i == 6 else c.ljust(w)
                        for i, (c, w) in enumerate(zip(row, widths))).rstrip())


def _precision(entry) -> str:
    """``fp32``, ``bf16``, ...; ``int8`` for every int8 calibration or quantized piece, and for
    a compiled int8 package what its float ops run in: ``int8 (bf16 float ops)``; a piece
    the TorchScript exporter made (``--exporter legacy``), beside the default one's:
    ``fp32 (legacy exporter)``."""
    fields = entry.fields
    precision = str(fields.get("precision") or ("int8" if entry.kind == "int8" else ""))
    if precision == "int8" and "autocast" in fields:
        return f"int8 ({fields['autocast'] or 'fp32'} float ops)"
    if fields.get("exporter") == "legacy":
        return f"{precision} (legacy exporter)"
    return precision


def _input(fields: dict) -> str:
    """The input an entry was built for: a compiled package's shape (N: any RoI count), or
    the resize an int8 calibration ran at."""
    shape = fields.get("shape")
    if isinstance(shape, list):
        dims = shape[:shape.index("strides")] if "strides" in shape else shape
        return "x".join("N" if d == "any" else str(d) for d in dims)
    resize = fields.get("resize")
    if isinstance(resize, list) and len(resize) == 2:
        return f"min {resize[0]}/max {resize[1]}"
    return ""


def _entries(n: int) -> str:
    return f"{n} {'entry' if n == 1 else 'entries'}"


def _mb(n: int) -> str:
    """A size as people read it: 31 KB, 0.9 MB, 33 MB, 1.2 GB."""
    if n < 1e5:
        return f"{n / 1e3:.0f} KB"
    if n < 1e9:
        return f"{n / 1e6:.1f} MB" if n < 1e7 else f"{n / 1e6:.0f} MB"
    return f"{n / 1e9:.1f} GB"


def _ago(seconds: float) -> str:
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = int(seconds // size)
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"
