"""One input's work, the same on a local worker process and on a Ray actor: a detector loaded
once (``load_detector``), then ``run_job`` per input, which never raises for a bad input: it
returns a ``JobResult`` saying why it failed."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from drivevision.batch.jobs import Job
from drivevision.config import DEFAULT_VIDEO_PRESET, DetectorConfig, DrawStyle
from drivevision.errors import input_failure
from drivevision.hashing import file_sha256


@dataclass(frozen=True)
class BatchSettings:
    """Everything that decides a batch's outputs besides the inputs: the detector, which
    outputs (``video``: annotated .mp4, encoded with x264's ``video_preset``, ``csv``,
    ``track``: a tracker name, which also writes MOT text), frames per detector call, the
    frame rate given to image folders, the one given to raw video streams (``raw_fps``:
    ``.h264``, no frame times; None: each its own, ``io.containers``), the largest frame in
    pixels (None:
    ``limits.max_pixels()``), the tracker's settings, the frame stride (only frames 0, K,
    2K, ... of each input detected), how the video draws the boxes (``style``) and the
    dataset folders all inputs write into (``yolo``, ``crops``: absolute paths, or None;
    ``drivevision.batch.datasets``)."""

    config: DetectorConfig = field(default_factory=DetectorConfig)
    video: bool = False
    video_preset: str = DEFAULT_VIDEO_PRESET
    csv: bool = False
    track: str | None = None
    track_thresh: float = 0.5
    track_buffer: int = 30
    match_thresh: float = 0.8
    batch: int = 1
    fps: float = 10.0
    raw_fps: float | None = None
    max_pixels: int | None = None
    frame_stride: int = 1
    style: DrawStyle = field(default_factory=DrawStyle)
    yolo: str | None = None
    crops: str | None = None

    def outputs(self, job: Job, out_dir: Path) -> dict[str, Path]:
        return job.outputs(out_dir, video=self.video, csv=self.csv, mot=self.track is not None)

    def key(self) -> dict:
        """The settings as the manifest records them (a checkpoint by its content's hash,
        so a retrained file under the same name counts as a change), as JSON reads back."""
        key = asdict(self)
        if self.frame_stride == 1:  # as manifests written before the option record it
            del key["frame_stride"]
        if self.raw_fps is None:  # likewise
            del key["raw_fps"]
        if not self.video or self.style == DrawStyle():  # drawn only in the video
            del key["style"]
        if not self.config.agnostic_nms:  # nor these options
            del key["config"]["agnostic_nms"]
        for option in ("iou", "max_det"):
            if key["config"][option] is None:
                del key["config"][option]
        for option in ("yolo", "crops"):  # likewise
            if key[option] is None:
                del key[option]
        key["config"].update(resolved_engine(self.config))
        weights = self.config.weights
        if weights:
            key["config"]["weights"] = {"name": Path(weights).name,
                                        "sha256": file_sha256(Path(weights))}
        return json.loads(json.dumps(key))  # tuples as lists, as the manifest reads them


def resolved_engine(config: DetectorConfig) -> dict[str, str]:
    """The engine and precision that ``auto`` settles to on this machine, so that a rerun
    where it settles otherwise (another CPU, a GPU) counts as other settings."""
    from drivevision import engines
    from drivevision.detector import resolve_device
    from drivevision.engines.hardware import pick_precision

    device = resolve_device(config.device)
    precision = config.precision
    if precision == "auto":
        precision = pick_precision(device, engine=config.engine)[0]
    return {"engine": engines.pick_engine(config.engine, device, precision)[0],
            "precision": precision}


@dataclass
class JobResult:
    """What became of one input. ``status``: "done", "failed" or "interrupted"; ``size`` and
    ``mtime_ns`` are the input's when the work began (a folder of images: its images' total
    bytes and newest time); ``outputs`` maps an output kind to its path relative to the
    output folder, bytes, mtime and sha256; ``seconds`` is wall time; ``dataset``: how many
    files it has in each dataset folder, by kind ("yolo", "crops"), and ``classes`` the
    YOLO dataset's class names; ``kept``: the ``.partial`` files a try that did not
    finish kept of its outputs (described as ``outputs`` are), which the batch removes
    once the input is done."""

    rel: str
    source: str
    status: str
    size: int = 0
    mtime_ns: int = 0
    frames: int = 0
    detections: int = 0
    seconds: float = 0.0
    error: str = ""
    notes: list[str] = field(default_factory=list)
    outputs: dict[str, dict] = field(default_factory=dict)
    worker: str = ""
    dataset: dict[str, int] = field(default_factory=dict)
    classes: list[str] = field(default_factory=list)
    kept: list[dict] = field(default_factory=list)


@dataclass
class Event:
    """What the workers tell the driver: "ready" (``worker`` loaded its detector: ``detail``
    says what runs where, ``job`` is None), "started" (``job`` went to ``worker``, a process
    id or a Ray actor), "frames" (``frames`` more of it are done), "retry" (its worker died:
    ``error``; it goes to another) and "result" (``result``: done, failed or interrupted)."""

    kind: str
    job: Job | None
    worker: object = None
    frames: int = 0
    result: JobResult | None = None
    error: str = ""
    detail: str = ""


def load_detector(settings: BatchSettings, *, device: str | None = None,
                  threads: int | None = None):
    """The detector a worker keeps for all its inputs; ``device`` overrides the settings'
    (a worker's own GPU), ``threads`` sets torch's CPU threads (the worker's share)."""
    import torch

    from drivevision.detector import Detector

    if threads:
        torch.set_num_threads(threads)
    config = settings.config if device is None else replace(settings.config, device=device)
    return Detector.from_config(config, progress=False)


def run_job(detector, job: Job, settings: BatchSettings, out_dir: Path,
            on_frame: Callable[[object], None] | None = None) -> JobResult:
    """Detect in ``job``'s input and write its outputs under ``out_dir`` (each written under
    a hidden part name and moved into place when complete); ``on_frame`` is called with each
    frame's ``Result``. Any failure is the input's: it comes back as a failed result, in one
    line, and the worker goes on."""
    start = time.perf_counter()
    result = JobResult(job.rel, job.source, "failed", worker=str(os.getpid()))
    paths = settings.outputs(job, out_dir)
    try:
        result.size, result.mtime_ns = input_stat(job)
        summary = _detect(detector, job, settings, paths, on_frame)
    except Exception as e:  # noqa: BLE001 -- whatever one input does, the batch goes on
        result.error = one_line(input_failure(e) or e)
        result.kept = kept_files(getattr(e, "placed", {}), out_dir)
        result.seconds = time.perf_counter() - start
        return result
    result.status = "interrupted" if summary.interrupted else "done"
    result.frames = summary.frames
    result.detections = sum(summary.class_counts.values())
    result.notes = list(summary.notes)
    result.kept = kept_files(summary.placed, out_dir)
    if result.status == "done":
        result.outputs = {k: describe_output(p, out_dir) for k, p in paths.items()}
        remove_killed_parts(paths.values())
        _describe_dataset(result, detector, settings)
    result.seconds = time.perf_counter() - start
    return result


def _detect(detector, job: Job, settings: BatchSettings, paths: dict[str, Path], on_frame):
    from drivevision.batch.datasets import dataset_part
    from drivevision.io.sources import open_source
    from drivevision.pipeline.runner import detect_video
    from drivevision.pipeline.track_stage import track_stages

    paths["jsonl"].parent.mkdir(parents=True, exist_ok=True)
    stages = () if settings.track is None else track_stages(
        settings.track, track_thresh=settings.track_thresh, track_buffer=settings.track_buffer,
        match_thresh=settings.match_thresh, low_thresh=min(0.1, settings.track_thresh))
    source = open_source(job.source, fps=settings.fps, max_pixels=settings.max_pixels,
                         raw_fps=settings.raw_fps)
    with source:
        source.frame_check = detector.size_problem
        return detect_video(source, paths.get("video"), jsonl=paths["jsonl"],
                            csv=paths.get("csv"), detector=detector, batch=settings.batch,
                            on_result=on_frame, stages=stages, mot=paths.get("mot"),
                            video_preset=settings.video_preset,
                            frame_stride=settings.frame_stride, style=settings.style,
                            yolo=settings.yolo, crops=settings.crops,
                            dataset_part=dataset_part(job.rel))


def _describe_dataset(result: JobResult, detector, settings: BatchSettings) -> None:
    from drivevision.batch.datasets import part_counts
    from drivevision.io.dataset_sinks import dataset_classes

    result.dataset = part_counts(settings, result.rel)
    if settings.yolo:
        result.classes = dataset_classes(detector.names, getattr(detector, "class_ids", None))


def input_stat(job: Job) -> tuple[int, int]:
    """(bytes, mtime in ns) of a video file; of a folder of images, their total bytes and
    the newest mtime (the folder's own included: it changes when an image is removed)."""
    path = Path(job.source)
    if not path.is_dir():
        st = path.stat()
        return st.st_size, st.st_mtime_ns
    from drivevision.io.images import IMAGE_SUFFIXES

    size, newest = 0, path.stat().st_mtime_ns
    for entry in os.scandir(path):
        if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
            st = entry.stat()
            size, newest = size + st.st_size, max(newest, st.st_mtime_ns)
    return size, newest


def describe_output(path: Path, out_dir: Path) -> dict:
    """How the manifest knows a finished output: path relative to ``out_dir``, bytes, mtime
    (ns) and sha256."""
    st = path.stat()
    return {"path": path.relative_to(out_dir).as_posix(), "size": st.st_size,
            "mtime_ns": st.st_mtime_ns, "sha256": file_sha256(path)}


def kept_files(placed: dict, out_dir: Path) -> list[dict]:
    """The files a run's outputs went to instead of their names (``placed``: its
    ``.partial`` files), as ``describe_output`` describes them: the batch's own to remove
    once the input is done, while they stay as they were."""
    kept = []
    for path in map(Path, placed.values()):
        try:
            kept.append(describe_output(path, out_dir))
        except (OSError, ValueError):  # gone, or outside the output folder
            continue
    return kept


def remove_killed_parts(targets) -> None:
    """The hidden part files killed runs left for ``targets`` (those no running process
    holds): also where an input is skipped, as one killed while redone (``--force``)."""
    from drivevision.io.claims import hidden_name
    from drivevision.io.leftovers import leftovers

    for target in targets:
        prefix = hidden_name(target, "part.").name.removesuffix(target.suffix)
        for stale in leftovers([target.parent]):
            if stale.name.startswith(prefix) and stale.name.endswith(target.suffix):
                stale.unlink(missing_ok=True)


def one_line(error: BaseException) -> str:
    """An error as one line: its message's first line, or its type's name."""
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    return lines[0] if lines else type(error).__name__
