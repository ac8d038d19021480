"""Small frozen settings objects. Only ``Detector.from_config`` reads DetectorConfig."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from pathlib import Path

MODELS = ("r50-fpn-v2", "r50-fpn", "tiny-fpn")
DEFAULT_MODEL = "r50-fpn-v2"
ENGINES = ("auto", "torch", "compiled", "onnx", "tensorrt")
DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "fp32", "fp16", "bf16", "int8")
CALIB_FRAMES = 16  # frames int8 calibrates on, evenly spaced over --calib
MAX_CALIB_FRAMES = 256  # each is held in memory (twice over while a video is spaced out)
# --agnostic-nms: boxes of any classes overlapping more than this are one object (Ultralytics'
# default NMS IoU); one vehicle's car and truck boxes overlap by far more, and two vehicles
# side by side, even one partly hidden behind the other, mostly by less.
AGNOSTIC_IOU = 0.7


def setting(option: str, value: str, quote: bool = True) -> str:
    """``option`` set to ``value`` as a user writes it: ``--device cpu`` on the command
    line, ``device='cpu'`` in Python (``quote`` False for a placeholder: ``calib=PATH``)."""
    if option.startswith("--"):
        return f"{option} {value}"
    return f"{option}={value!r}" if quote else f"{option}={value}"


def need_calib(option: str = "--calib", frames: str | None = "--calib-frames") -> str:
    """Why int8 without calibration frames is refused, naming the setting that gives them:
    the commands' ``--calib``, or the Python API's ``calib`` keyword; ``frames`` names the
    setting for more of them (None where the caller has none)."""
    more = f", {setting(frames, 'N', quote=False)} for more" if frames else ""
    return (f"int8 needs frames to calibrate on: pass {setting(option, 'CLIP_OR_FOLDER', False)}"
            ", a video or a folder of images from your own cameras "
            f"({CALIB_FRAMES} frames are used{more}; the result is cached)")


NEED_CALIB = need_calib()


def _check_choice(what: str, value: str, choices: tuple[str, ...]) -> None:
    if value not in choices and not (what == "device" and value.startswith("cuda:")):
        raise ValueError(f"Expected {what} to be one of {', '.join(choices)}, but got {value!r}")


def check_conf(conf) -> None:
    """ValueError unless 0 <= ``conf`` <= 1 (a score threshold, not a percentage); TypeError
    for what is not a number."""
    if isinstance(conf, bool) or not isinstance(conf, numbers.Real):
        raise TypeError(f"Expected conf as a number in [0, 1], but got {conf!r} "
                        f"({type(conf).__name__})")
    if not 0.0 <= conf <= 1.0:
        raise ValueError(f"Expected conf in [0, 1], but got {conf}")


def device_name(device) -> str:
    """``device`` as the str a detector is configured with: a ``torch.device`` as its name
    ("cuda:1"), an int as that GPU ("cuda:N", as ``torch.device(N)`` is); TypeError for
    anything else that is not a str. (torch stays unimported: only the type is read.)"""
    if isinstance(device, str):
        return device
    if isinstance(device, numbers.Integral) and not isinstance(device, bool):
        return f"cuda:{int(device)}"
    if (type(device).__module__, type(device).__name__) == ("torch", "device"):
        return str(device)
    raise TypeError(f"Expected device as a str ({', '.join(DEVICES)}, cuda:N), a torch.device "
                    f"or a GPU index, but got {device!r} ({type(device).__name__})")


@dataclass(frozen=True)
class DetectorConfig:
    """What to detect with.

    ``weights`` None means torchvision's COCO weights for ``model``; a path means a local
    checkpoint. ``model`` None means the checkpoint's own architecture, or r50-fpn-v2 (COCO
    weights, or a checkpoint that names none); a checkpoint's architecture wins over a
    ``model`` given too, with a warning. ``classes`` is "driving", "all", a comma list of
    names or ids, a tuple of them or one id; None is the driving subset for a model with
    COCO's class names and every class for a model with its own.
    ``min_size``/``max_size`` None keep the model's own resize rule (800/1333 for COCO);
    ``proposals`` None keeps its RPN proposals per image (1000), fewer is faster on CPUs.
    ``iou``/``max_det`` None keep the box head's NMS threshold (0.5) and detections per
    image (100); ``agnostic_nms``: one box where boxes of different classes overlap
    (``Detector``).
    ``calib``: a video file or folder of images that int8 calibrates on (needed for int8);
    ``calib_frames`` of its frames, evenly spaced, are used.
    """

    model: str | None = None
    weights: str | None = None
    engine: str = "torch"
    device: str = "auto"  # a torch.device or GPU index is kept as its name
    precision: str = "auto"
    conf: float = 0.5
    classes: str | int | tuple[str | int, ...] | None = None
    min_size: int | None = None
    max_size: int | None = None
    proposals: int | None = None
    iou: float | None = None
    max_det: int | None = None
    agnostic_nms: bool = False
    calib: str | None = None
    calib_frames: int = CALIB_FRAMES

    @property
    def weights_label(self) -> str:
        """What will be loaded, for messages: the checkpoint path or the COCO weights."""
        return self.weights or f"{self.model or DEFAULT_MODEL} COCO weights"

    def __post_init__(self) -> None:
        if self.model is not None:
            _check_choice("model", self.model, MODELS)
        _check_choice("engine", self.engine, ENGINES)
        object.__setattr__(self, "device", device_name(self.device))
        _check_choice("device", self.device, DEVICES)
        _check_choice("precision", self.precision, PRECISIONS)
        check_conf(self.conf)
        for name in ("min_size", "max_size"):
            value = getattr(self, name)
            if value is not None and value < 32:
                raise ValueError(f"Expected {name} >= 32 pixels, but got {value}")
        if self.proposals is not None and self.proposals < 1:
            raise ValueError(f"Expected proposals >= 1, but got {self.proposals}")
        if self.iou is not None and not 0.0 < self.iou <= 1.0:
            raise ValueError(f"Expected iou in (0, 1], but got {self.iou}")
        if self.max_det is not None and self.max_det < 1:
            raise ValueError(f"Expected max_det >= 1, but got {self.max_det}")
        check_int8_calib(self.precision, self.calib, self.calib_frames, "calib", "calib_frames")


EXPORTED = (".onnx", ".engine")  # what ``drivevision export`` writes: pieces, not a model


def weights_problem(path: str | os.PathLike, option: str = "--weights",
                    engine_option: str = "--engine") -> str | None:
    """Why ``path`` cannot be a checkpoint to load (nothing there, a folder, a piece
    ``export`` wrote), or None; naming the settings that take a checkpoint and an engine:
    the commands' ``--weights`` and ``--engine``, or the Python API's ``weights`` and
    ``engine`` keywords (``weights=``, ``engine='onnx'``)."""
    path = Path(path)
    exported = path.is_file() and path.suffix in EXPORTED or path.is_dir() and any(
        (path / f"dense_a{suffix}").is_file() for suffix in EXPORTED)
    if exported:
        cli = option.startswith("--")
        weights, tensorrt = (option, "tensorrt") if cli else (f"{option}=", "'tensorrt'")
        return (f"{path} is what drivevision export writes, for deployment elsewhere; "
                f"{weights} takes the .pt checkpoint it was exported from, and "
                f"{setting(engine_option, 'onnx')} or {tensorrt} runs that checkpoint as "
                "those engines (built once, cached)")
    if path.is_dir():
        return f"{path} is a folder, not a checkpoint (a .pt/.pth file saved by torch.save)"
    if not path.is_file():
        return f"No such checkpoint: {path}"
    return None


def check_calib_frames(count: int, option: str = "--calib-frames") -> None:
    """ValueError unless 1 <= ``count`` <= ``MAX_CALIB_FRAMES``, naming ``option``: the
    commands' ``--calib-frames`` or the Python API's ``calib_frames``."""
    if not 1 <= count <= MAX_CALIB_FRAMES:
        raise ValueError(f"Expected {option} between 1 and {MAX_CALIB_FRAMES} (each "
                         f"frame is held in memory while calibrating), but got {count}")


def check_int8_calib(precision: str, calib, frames: int, option: str = "--calib",
                     frames_option: str = "--calib-frames") -> None:
    """ValueError for a ``frames`` count out of range, or int8 without ``calib`` frames,
    naming the settings: the commands' ``--calib`` and ``--calib-frames``, or DetectorConfig's
    ``calib`` and ``calib_frames``."""
    check_calib_frames(frames, frames_option)
    if precision == "int8" and not calib:
        raise ValueError(need_calib(option, frames_option))


FRAME_POLICIES = ("auto", "all", "newest")
# x264's presets for the annotated video, fastest first: each step slower writes smaller files
# at the same quality (CRF 23).
VIDEO_PRESETS = ("ultrafast", "superfast", "veryfast", "faster", "fast", "medium", "slow",
                 "slower", "veryslow")
DEFAULT_VIDEO_PRESET = "veryfast"


@dataclass(frozen=True)
class PipelineConfig:
    """How frames flow from the sources to the detector.

    ``frames``: "auto" gives each source its own policy (files and folders: every frame, in
    order, the reader waits; cameras, streams and paced files: only the newest frame waits,
    older ones are dropped and counted); "all" or "newest" apply one policy to every source.
    ``batch_size``: most frames of one source per detector call (a live source gives its
    newest only). ``queue_size``: frames of a file that may wait for the detector.
    ``batch_timeout``: seconds the batcher waits for the other live sources once one has a
    frame (several sources batched into one call, as DeepStream's stream muxer does).
    """

    batch_size: int = 1
    queue_size: int = 8
    batch_timeout: float = 0.04
    frames: str = "auto"

    def __post_init__(self) -> None:
        if self.batch_size < 1:
            raise ValueError(f"Expected batch size >= 1, but got {self.batch_size}")
        if self.queue_size < 1:
            raise ValueError(f"Expected queue size >= 1, but got {self.queue_size}")
        if not 0 <= self.batch_timeout <= 10:
            raise ValueError(f"Expected batch timeout in [0, 10] s, but got {self.batch_timeout}")
        _check_choice("frames", self.frames, FRAME_POLICIES)


MAX_LINE_WIDTH = 64  # pixels: wider boxes would hide what they mark


@dataclass(frozen=True)
class DrawStyle:
    """How the annotated outputs draw detections: ``labels`` (class, score, track id) on or
    off, ``scores`` in the labels, ``line_width`` in pixels (None: scaled to the frame);
    ``drivevision.render.renderer`` draws in it."""

    labels: bool = True
    scores: bool = True
    line_width: int | None = None

    def __post_init__(self) -> None:
        if self.line_width is not None and not 1 <= self.line_width <= MAX_LINE_WIDTH:
            raise ValueError(f"Expected a line width of 1 to {MAX_LINE_WIDTH} pixels, but got "
                             f"{self.line_width}")
