"""What ``drivevision bench`` measures: each engine stage by stage against torchvision eager.

Frames are generated driving scenes of exactly the input size (so the model does not
resize them). Every setting runs ``warmup`` untimed calls (compilation happens there), then
``iters`` timed ones; medians and 95th percentiles are reported per stage and in total,
with frames/s and the speedup over torchvision's own ``model(images)`` in fp32 eager, timed
in the same run on the same frames, before and after the engines (their mean; both are
recorded, so a machine whose speed drifted during the run shows it). int8 calibrates on
``calib`` when given, else on generated scenes of the input size (timings only: the output
says so). Nothing is
downloaded: without ``weights`` and without cached COCO weights the model gets random
weights, which time the same but detect nothing meaningful (the output says so).

A Ctrl-C once a setting is timed stops after the call in progress: the settings timed are
kept and tabled against eager as timed before the engines, the others listed as not timed;
before that, or a second one, quits at once.
"""

from __future__ import annotations

import platform
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from drivevision.cli import exits
from drivevision.cli.settings import runnable
from drivevision.config import CALIB_FRAMES, DEFAULT_MODEL, ENGINES, PRECISIONS
from drivevision.detector import STAGES, Detector, resolve_device
from drivevision.engines.hardware import cpu_features
from drivevision.engines.sizes import PAD, check_padded_size
from drivevision.labels import COCO_NAMES, counted
from drivevision.model import COCO_WEIGHTS, LoadedModel, build_model, load_model
from drivevision.pipeline import signals


@dataclass(frozen=True)
class BenchSpec:
    model: str | None = None  # None: the checkpoint's architecture, else r50-fpn-v2
    weights: str | None = None
    engines: tuple[str, ...] | list[str] = ("torch",)
    precisions: tuple[str, ...] | list[str] = ("fp32",)
    batches: tuple[int, ...] | list[int] = (1,)
    input_size: tuple[int, int] = (800, 1344)
    iters: int = 10
    warmup: int = 2
    device: str = "auto"
    calib: str | None = None  # int8: a video or image folder; None: generated scenes
    calib_frames: int = CALIB_FRAMES  # of calib

    def __post_init__(self) -> None:
        for name, least in (("iters", 1), ("warmup", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"Expected {name} >= {least}, but got "
                                 f"{name}={getattr(self, name)!r}")
        if not self.batches or min(self.batches) < 1:
            raise ValueError(f"Expected batches of sizes >= 1 (at least one), but got "
                             f"batches={self.batches!r}")
        if min(self.input_size) < PAD:
            raise ValueError(f"Expected input_size (H, W) of at least {PAD}x{PAD}, but got "
                             f"input_size={self.input_size!r}")
        # another would time the padded size, not it
        check_padded_size(self.input_size, "input_size (H, W)")
        for what, values, known in (("engine", self.engines, ENGINES),
                                    ("precision", self.precisions, PRECISIONS)):
            wrong = [v for v in values if v not in known] or ([] if values else ["none"])
            if wrong:
                raise ValueError(f"Expected {what}s from {', '.join(known)}, but got "
                                 f"{', '.join(wrong)}")


COCO_CACHED = "COCO weights (cached)"
RANDOM_WEIGHTS = "random weights (COCO weights not cached; timings only, detections meaningless)"


def bench_model(spec: BenchSpec) -> tuple[LoadedModel, str]:
    """The model to time and its weights: the file given, else ``COCO_CACHED`` or
    ``RANDOM_WEIGHTS`` (never downloads)."""
    h, w = spec.input_size
    sizes = {"min_size": min(h, w), "max_size": max(h, w)}
    if spec.weights:
        return load_model(spec.model, spec.weights, **sizes), spec.weights
    name = spec.model or DEFAULT_MODEL
    coco = COCO_WEIGHTS.get(name)
    if coco and (Path(torch.hub.get_dir()) / "checkpoints" / Path(coco.url).name).is_file():
        return load_model(name, None, progress=False, **sizes), COCO_CACHED
    torch.manual_seed(0)
    module = build_model(name, num_classes=91, **sizes)
    return LoadedModel(module, name, COCO_NAMES, "random-seed0"), RANDOM_WEIGHTS


def frames_for(spec: BenchSpec, n: int) -> list[np.ndarray]:
    """``n`` generated (H, W, 3) uint8 BGR driving scenes of the input size."""
    from drivevision.synthetic import SceneGenerator

    h, w = spec.input_size
    gen = SceneGenerator(width=w, height=h, seed=7)
    return [gen.frame(i * 3).image for i in range(n)]


def bench_calibration(spec: BenchSpec, count: int = 4):
    """What int8 calibrates on: ``spec.calib``, else ``count`` generated scenes of the input
    size (ranges fit for timing, not for accuracy), and what it is: ``8 frames of clip.mp4``."""
    from drivevision.detector import calibration_set
    from drivevision.engines.int8 import CalibrationSet

    if spec.calib:
        return (calibration_set(spec.calib, spec.calib_frames),
                f"{counted(spec.calib_frames, 'frame')} of {spec.calib}")
    h, w = spec.input_size
    calib = CalibrationSet(f"{count} generated scenes", f"generated-{h}x{w}-seed7-{count}",
                           lambda: frames_for(spec, count))
    return calib, f"{count} generated scenes (no --calib; timings only)"


def _summary(samples: list[float]) -> dict:
    return {"median": float(np.median(samples)), "p95": float(np.percentile(samples, 95)),
            "min": float(np.min(samples))}


def time_baseline(loaded: LoadedModel, frames: list, device: torch.device, spec: BenchSpec,
                  batch: int, stop: threading.Event | None = None) -> dict:
    """torchvision eager fp32 ``model(images)`` (BGR -> RGB float conversion included).
    KeyboardInterrupt before a call once ``stop`` is set."""
    model = loaded.module.to(device).eval()
    chunk = frames[:batch]
    samples = []
    with torch.inference_mode():
        for i in range(spec.warmup + spec.iters):
            _check(stop)
            t0 = time.perf_counter()
            images = [torch.from_numpy(f).to(device).permute(2, 0, 1).flip(0).float() / 255
                      for f in chunk]
            model(images)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            if i >= spec.warmup:
                samples.append((time.perf_counter() - t0) * 1000)
    total = _summary(samples)
    return {"total": total, "fps": batch * 1000 / total["median"]}


def time_engine(detector: Detector, frames: list, spec: BenchSpec, batch: int,
                stop: threading.Event | None = None) -> dict:
    """Per-stage and total ms of ``detector.infer_timed`` on ``batch`` frames.
    KeyboardInterrupt before a call once ``stop`` is set."""
    chunk = frames[:batch]
    stages: dict[str, list[float]] = {s: [] for s in STAGES}
    totals = []
    for i in range(spec.warmup + spec.iters):
        _check(stop)
        t0 = time.perf_counter()
        _, ms = detector.infer_timed(chunk, sync=True)
        if i >= spec.warmup:
            totals.append((time.perf_counter() - t0) * 1000)
            for s in STAGES:
                stages[s].append(ms[s])
    total = _summary(totals)
    return {"stages": {s: _summary(v) for s, v in stages.items()}, "total": total,
            "fps": batch * 1000 / total["median"]}


def _check(stop: threading.Event | None) -> None:
    if stop is not None and stop.is_set():
        raise KeyboardInterrupt


def run_bench(spec: BenchSpec, log=print) -> dict:
    """Time every engine x precision x batch; returns a JSON-able dict (see ``format_tables``).
    A setting that cannot run here is skipped with the reason; ValueError when all are. A
    Ctrl-C once a setting is timed stops the run: ``interrupted`` is True and ``not_timed``
    names what was left ("engine precision", or "..., batch B" for a batch)."""
    stop = threading.Event()  # set by a Ctrl-C once a setting is timed
    out: dict = {}

    def on_signal(signum: int) -> None:
        if stop.is_set() or not out.get("results"):  # nothing to keep: leave at once
            exits.quit_now(signum)
        stop.set()
        log("interrupted: stopping after the call in progress, the settings timed so far are "
            "kept (Ctrl-C again to quit at once)")

    with signals.requests(on_signal):
        return _run_bench(spec, log, stop, out)


def _run_bench(spec: BenchSpec, log, stop: threading.Event, out: dict) -> dict:
    device = resolve_device(spec.device)
    loaded, weights = bench_model(spec)
    log(f"{loaded.name}: {weights_text(weights)}")
    frames = frames_for(spec, max(spec.batches))
    calib = None
    if "int8" in spec.precisions and runnable([(e, "int8") for e in spec.engines], device.type):
        calib, calibration = bench_calibration(spec)
        log(f"int8 calibrated on {calibration}")
    out.update({"model": loaded.name, "weights": weights, "device": _device_name(device),
                "input_size": list(spec.input_size), "iters": spec.iters,
                "warmup": spec.warmup, "torch": torch.__version__,
                "threads": torch.get_num_threads(), "cpu_features": cpu_features().names(),
                "baseline": {}, "results": [], "skipped": []})
    if calib is not None:
        out["calibration"] = calibration
    before = {}
    for b in spec.batches:
        log(f"torchvision eager fp32, batch {b}")
        before[b] = time_baseline(loaded, frames, device, spec, b)
    settings = [(e, p) for e in spec.engines for p in spec.precisions]
    for done, (engine, precision) in enumerate(settings):
        try:
            _time_setting(spec, loaded, frames, device, calib, engine, precision, out, log, stop)
        except KeyboardInterrupt:
            out["not_timed"] = out.get("not_timed", []) + [f"{e} {p}" for e, p in
                                                           settings[done + 1:]]
            break
    if not out["results"]:  # a run with no figure is no benchmark: say why, exit 2
        why = "; ".join(f"{s['engine']} {s['precision']}: {s['reason']}" for s in out["skipped"])
        raise ValueError(f"Expected an engine and precision that run here, but every one was "
                         f"skipped, nothing was measured ({why})")
    _baseline_after(spec, loaded, frames, device, before, out, log, stop)
    for entry in out["results"]:
        for b, r in entry["batches"].items():
            r["speedup"] = out["baseline"][b]["total"]["median"] / r["total"]["median"]
            r["speedup_fastest"] = out["baseline"][b]["total"]["min"] / r["total"]["min"]
    return out


def _time_setting(spec: BenchSpec, loaded: LoadedModel, frames: list, device: torch.device,
                  calib, engine: str, precision: str, out: dict, log,
                  stop: threading.Event) -> None:
    """Time one engine and precision at every batch size into ``out`` (or skip it, saying
    why). KeyboardInterrupt once ``stop`` is set, after adding the batches timed, and the
    others to ``out["not_timed"]``."""
    try:
        det = Detector(loaded, engine=engine, device=str(device), precision=precision,
                       conf=0.5, classes="all", progress=True, calib=calib)
    except (ValueError, ImportError) as e:
        out["skipped"].append({"engine": engine, "precision": precision,
                               "reason": str(e).splitlines()[0]})
        log(f"skip {engine} {precision}: {str(e).splitlines()[0]}")
        return
    name = det.engine.name  # what auto picked
    entry = {"engine": name, "precision": det.precision, "batches": {}}
    reasons = [f"{what} auto: {why}" for what, why in
               (("precision", det.precision_reason), ("engine", det.engine.auto_reason))
               if why]
    if reasons:
        entry["auto"] = "; ".join(reasons)
        log(f"engine {engine}, precision {precision} -> {name} {det.precision} "
            f"({entry['auto']})")
    try:
        for b in spec.batches:
            log(f"{name} {det.precision}, batch {b}")
            try:
                r = time_engine(det, frames, spec, b, stop)
            except (RuntimeError, OSError) as e:  # a failed build or run: say, go on
                reason = f"batch {b}: {type(e).__name__}: {str(e).strip().splitlines()[0]}"
                out["skipped"].append({"engine": name, "precision": precision,
                                       "reason": reason})
                log(f"skip {name} {precision}: {reason}")
                continue
            entry["batches"][str(b)] = r
    except KeyboardInterrupt:
        left = [str(b) for b in spec.batches if str(b) not in entry["batches"]]
        out["not_timed"] = [f"{engine} {precision}" if not entry["batches"] else
                            f"{name} {precision}, batch {', '.join(left)}"]
        raise
    finally:
        if entry["batches"]:
            out["results"].append(entry)


def _baseline_after(spec: BenchSpec, loaded: LoadedModel, frames: list, device: torch.device,
                    before: dict, out: dict, log, stop: threading.Event) -> None:
    """Eager timed again after the engines (a machine that drifts shows it), into
    ``out["baseline"]``; after a Ctrl-C, the timing before the engines alone."""
    for b in spec.batches:
        after = None
        if not stop.is_set():
            log(f"torchvision eager fp32 again, batch {b}")
            try:
                after = time_baseline(loaded, frames, device, spec, b, stop)
            except KeyboardInterrupt:
                pass
        out["baseline"][str(b)] = (_both(before[b], after, b) if after else
                                   {**before[b], "before_ms": before[b]["total"]["median"],
                                    "after_ms": None})
    if stop.is_set():
        out["interrupted"] = True
        out["not_timed"] = out.get("not_timed", [])
        log(interrupted_line(out))
    warning = drift_warning(out["baseline"])
    if warning:
        log(warning)


def interrupted_line(result: dict) -> str:
    """What a Ctrl-C left out of ``result``, in one line."""
    left = result["not_timed"]
    line = (f"interrupted: not timed: {', '.join(left)}" if left
            else "interrupted: every setting was timed")
    before_only = [f"b{b}" for b, v in result["baseline"].items() if v["after_ms"] is None]
    if before_only:
        line += (f"; speedups ({', '.join(before_only)}) divide torchvision eager as timed "
                 "before the engines only")
    return line


DRIFT = 1.5  # the baseline's before/after medians further apart than this: figures unreliable


def drift_warning(baseline: dict) -> str | None:
    """One line when torchvision eager's median before the engines and after differ by more
    than ``DRIFT`` times at some batch size (the machine's speed changed mid-run), else None."""
    drifted = [f"b{b} {v['before_ms']:.1f} -> {v['after_ms']:.1f} ms"
               for b, v in baseline.items() if v["after_ms"] is not None
               if max(v["before_ms"], v["after_ms"]) > DRIFT * min(v["before_ms"], v["after_ms"])]
    if not drifted:
        return None
    return (f"warning: torchvision eager timed before and after the engines differs by more "
            f"than {DRIFT:g}x ({', '.join(drifted)}): the machine's speed changed during the "
            f"run, so the speedups are unreliable; rerun on a quiet machine")


def _both(before: dict, after: dict, batch: int) -> dict:
    """The baseline timed before and after the engines: the mean of the two medians (what
    speedups divide), the larger p95, the fastest call of both, and each run's median."""
    first, second = before["total"]["median"], after["total"]["median"]
    median = (first + second) / 2
    return {"total": {"median": median, "p95": max(before["total"]["p95"],
                                                   after["total"]["p95"]),
                      "min": min(before["total"]["min"], after["total"]["min"])},
            "fps": batch * 1000 / median, "before_ms": first, "after_ms": second}


def weights_text(weights: str) -> str:
    """``weights FILE``, or the label of weights without a file."""
    return weights if weights in (COCO_CACHED, RANDOM_WEIGHTS) else f"weights {weights}"


def _device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"CPU: {line.split(':', 1)[1].strip()}"
    except OSError:
        pass
    return f"CPU: {platform.processor() or platform.machine()}"
