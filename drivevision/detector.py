"""Detector = shared preprocess -> engine (dense A, torchvision ops, dense B) -> postprocess.

The split follows torchvision's ``GeneralizedRCNN.forward`` step by step, with the model's
own transform, anchors, box coder, NMS and box decoding; between the two dense pieces the
proposals and RoIAlign run in ``drivevision.proposals`` (the same results, faster), so
every engine yields the same detections as ``model(images)``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from torchvision.models.detection.image_list import ImageList

from drivevision.config import (
    AGNOSTIC_IOU,
    CALIB_FRAMES,
    NEED_CALIB,
    DetectorConfig,
    check_calib_frames,
    check_conf,
    device_name,
    need_calib,
)
from drivevision.detections import Detections
from drivevision.engines import Engine, check_int8_engine, create_engine, hardware
from drivevision.engines.int8 import CalibrationSet
from drivevision.io.frames import Source
from drivevision.labels import ClassNames, classes_text, resolve_classes
from drivevision.model import LoadedModel, copy_with_proposals, load_named, set_box_nms
from drivevision.ops.boxes import to_device
from drivevision.ops.clock import StageClock
from drivevision.ops.frames import as_bgr, batch_kind, frame_list
from drivevision.ops.postprocess import fixed_detections
from drivevision.proposals import MiddleStage, RoIs

_log = logging.getLogger(__name__)
STAGES = ("preprocess", "dense_a", "proposals", "dense_b", "postprocess")


def resolve_device(device: str | int | torch.device) -> torch.device:
    """"auto" picks CUDA when torch sees a GPU, else the CPU; ValueError, naming the
    ``device`` keyword, for a GPU torch does not see (``engines.hardware.device_kind``;
    commands check their ``--device`` before this). Other torch devices ("meta", "xpu")
    are torch's to check. A ``torch.device`` or GPU index is taken as its name
    (``config.device_name``)."""
    device = device_name(device)
    if device.partition(":")[0] not in ("auto", "cpu", "cuda"):
        return torch.device(device)
    kind = hardware.device_kind(device, option="device")
    return torch.device(kind if device == "auto" else device)


class Detector:
    """Finds objects in BGR frames.

    Args:
        loaded: the model and its class names (``drivevision.model.load_model``, or a
            ``LoadedModel`` of one's own); a path or config is a TypeError that says to use
            ``from_config``. The detector runs a copy of ``loaded.module``; the caller's is
            not moved or changed.
        engine: name of the engine that runs the dense pieces ("torch", ...).
        device: "auto", "cpu", "cuda" or "cuda:N"; a ``torch.device`` or a GPU index N
            ("cuda:N") too.
        precision: "fp32", "fp16" (CUDA), "bf16", "int8" (CPU, onnx or compiled engine,
            calibrated on ``calib``), or "auto": fp16 on CUDA, bf16 on a CPU with bf16
            hardware, else fp32
            (``engines.hardware.pick_precision``; the reason is kept in ``precision_reason``).
            Boxes are always decoded in fp32.
        conf: keep detections scoring at least this, in [0, 1].
        classes: "driving", "all", comma list or sequence of names or ids, or one id; None:
            driving for a model with COCO's class names, all for one with its own (see
            ``labels.resolve_classes``).
        proposals: RPN proposals kept per frame (torchvision's ``rpn_post_nms_top_n_test``);
            None keeps the model's (1000).
        iou: the box head's NMS threshold within a class (torchvision's ``box_nms_thresh``,
            0.5): of boxes of one class overlapping by more than this, the best is kept;
            None keeps the model's.
        max_det: most detections per frame (torchvision's ``box_detections_per_img``, 100),
            the best first; None keeps the model's.
        agnostic_nms: keep one box where boxes of different classes overlap by more than
            ``AGNOSTIC_IOU`` (the highest-scoring), after ``conf`` and ``classes``: one
            vehicle found as a car and as a truck is shown once. The model's own NMS is per
            class and keeps both.
        progress: print a line before slow first-use engine work (export, build, compile).
        calib: int8 only: a video file or folder of images to calibrate on (frames of the
            user's own footage), or an ``engines.int8.CalibrationSet``.
    """

    def __init__(self, loaded: LoadedModel, *, engine: str = "torch",
                 device: str | int | torch.device = "auto",
                 precision: str = "fp32", conf: float = 0.5,
                 classes: str | int | Sequence[str | int] | None = None,
                 proposals: int | None = None, iou: float | None = None,
                 max_det: int | None = None, agnostic_nms: bool = False,
                 progress: bool = False, calib: str | os.PathLike | CalibrationSet | None = None):
        check_loaded(loaded)
        check_conf(conf)  # before the model is copied or an engine built
        self.device = resolve_device(device)
        self.precision_reason = None
        if precision == "auto":
            precision, self.precision_reason = hardware.pick_precision(self.device,
                                                                       engine=engine)
        hardware.check_precision(precision, self.device.type, engine, engine_option="engine",
                                 calib_option="calib")
        if precision == "int8":  # refused before the model is copied, naming the keywords
            if calib is None:
                raise ValueError(need_calib("calib", None))  # calib_frames: DetectorConfig's
            check_int8_engine(engine, "engine")
        if precision == "bf16" and self.device.type == "cpu" and not hardware.cpu_features().bf16:
            _log.warning("this CPU has no bf16 instructions (AVX512-BF16 or AMX): bf16 is "
                         "emulated and slower than fp32 here")
        # Its own copy, so detectors built from one model on other devices or proposal
        # counts cannot change each other.
        module = copy_with_proposals(loaded.module, proposals).to(self.device).eval()
        set_box_nms(module, iou, max_det)
        self.loaded = replace(loaded, module=module)
        self.model = module
        self.middle = MiddleStage(module)
        self.names = ClassNames(loaded.class_names)
        self.precision = precision
        self.conf = conf
        self.class_ids = resolve_classes(classes, self.names)
        self.agnostic_nms = agnostic_nms
        self.engine: Engine = create_engine(
            engine, self.loaded, device=self.device, precision=precision, progress=progress,
            calib=calibration_set(calib, option="calib") if precision == "int8" else None)

    @classmethod
    def from_config(cls, config: DetectorConfig, *, progress: bool = True) -> Detector:
        """The one place that turns settings into a detector (weights resolved here)."""
        loaded = load_named(config.model, config.weights, progress=progress,
                            min_size=config.min_size, max_size=config.max_size)
        return cls(loaded, engine=config.engine, device=config.device,
                   precision=config.precision, conf=config.conf, classes=config.classes,
                   proposals=config.proposals, iou=config.iou, max_det=config.max_det,
                   agnostic_nms=config.agnostic_nms,
                   progress=progress,
                   calib=calibration_set(config.calib, config.calib_frames, "calib")
                   if config.precision == "int8" else config.calib)

    def describe(self) -> str:
        """One line on what runs where and why ``auto`` chose it, for a run's first line:
        engine, precision, device (with the CPU's features on a CPU), the auto reasons."""
        where = str(self.device)
        if self.device.type == "cpu":
            where = f"cpu, {hardware.cpu_features().describe()}"
        elif self.device.type == "cuda":
            where = f"{self.device}, {torch.cuda.get_device_name(self.device)}"
        why = [f"precision auto: {self.precision_reason}" if self.precision_reason else "",
               f"engine auto: {self.engine.auto_reason}" if self.engine.auto_reason else ""]
        return "; ".join([f"engine {self.engine.name} {self.precision} on {where}"]
                         + [w for w in why if w])

    def __repr__(self) -> str:  # one line: what was built; ``describe`` adds the hardware
        heads = self.model.roi_heads
        tuned = {"proposals": (self.model.rpn.post_nms_top_n(), 1000), "agnostic_nms":
                 (self.agnostic_nms, False), "iou": (heads.nms_thresh, 0.5),
                 "max_det": (heads.detections_per_img, 100)}  # torchvision's defaults
        extra = "".join(f", {k}={v!r}" for k, (v, default) in tuned.items() if v != default)
        return (f"Detector(model={self.loaded.name!r}, engine={self.engine.name!r}, "
                f"precision={self.precision!r}, device='{self.device}', conf={self.conf!r}, "
                f"classes={classes_text(self.class_ids, self.names)!r}{extra})")

    def size_problem(self, width: int, height: int) -> str | None:
        """Why a ``width`` x ``height`` frame cannot be detected in, or None.

        The model's resize rule (torchvision's ``GeneralizedRCNNTransform``) scales the short
        side to ``min_size`` with the long side at most ``max_size``; a frame so thin that a
        side then rounds to 0 pixels (3x5000 at 800/1333) would fail inside the model.
        """
        transform = self.model.transform
        short, long = min(width, height), max(width, height)
        scale = min(transform.min_size[-1] / short, transform.max_size / long)
        if int(short * scale) >= 1:
            return None
        return (f"{width}x{height} is too thin for the model's input size (short side "
                f"{transform.min_size[-1]}, long side at most {transform.max_size}): it would "
                "be less than one pixel high")

    def __call__(self, frame: np.ndarray, *, conf: float | None = None,
                 classes: str | int | Sequence[str | int] | None = None) -> Detections:
        """Detections in one frame: uint8 (H, W, 3) in BGR order, as OpenCV reads it (an RGB
        frame must be converted first: ``cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR)``); (H, W)
        grayscale and (H, W, 4) BGRA are taken too. Boxes are xyxy in the frame's pixels.
        ``conf``, ``classes``: this call's, as ``kept`` says. For several frames use ``infer``."""
        if isinstance(frame, (list, tuple)) or (isinstance(frame, np.ndarray)
                                                and frame.ndim == 4):
            raise TypeError(f"Expected one frame, but found a batch ({batch_kind(frame)}); "
                            "for several frames use detector.infer(frames)")
        return self.infer([frame], conf=conf, classes=classes)[0]

    def infer(self, frames: Iterable[np.ndarray], *, conf: float | None = None,
              classes: str | int | Sequence[str | int] | None = None) -> list[Detections]:
        """Detections for each of ``frames`` (a list, tuple, generator or other iterable of
        frames, or a uint8 (N, H, W, 3) array), in order, in one model call: frames as for
        ``__call__`` (BGR), of any sizes, boxes in each frame's own pixels."""
        return self.infer_timed(frames, conf=conf, classes=classes)[0]

    def kept(self, conf: float | None = None,
             classes: str | int | Sequence[str | int] | None = None) -> tuple[float, tuple | None]:
        """The score threshold and class ids (None: all) a call keeps: the detector's, or
        ``conf``/``classes`` given as to the constructor, for that call only. They filter
        the model's output on the host: the engine and its cached builds never see them."""
        if conf is not None:
            check_conf(conf)
        ids = self.class_ids if classes is None else resolve_classes(classes, self.names)
        return (self.conf if conf is None else conf), ids

    @torch.inference_mode()
    def infer_timed(self, frames: Iterable[np.ndarray], *, sync: bool = False,
                    conf: float | None = None,
                    classes: str | int | Sequence[str | int] | None = None
                    ) -> tuple[list[Detections], dict]:
        """Like ``infer``, plus milliseconds spent in each of ``STAGES`` for the whole batch.

        On CUDA the stages are timed with CUDA events and the only wait for the GPU is the
        detections' copy to the host; ``sync=True`` waits after every stage (what ``bench``
        does, so a stage's time is all its own, at the cost of overlap).
        """
        kept = self.kept(conf, classes)  # refused before the model runs
        clock = StageClock(self.device, sync=sync)
        images, original_sizes = self.preprocess(frames)
        clock.lap("preprocess")
        features, objectness, deltas = self.engine.dense_a(images.tensors)
        clock.lap("dense_a")
        rois = self._proposals(images, features, objectness, deltas)
        clock.lap("proposals")
        logits, box_deltas = self.engine.dense_b(rois.pooled)
        clock.lap("dense_b")
        results = self.postprocess(logits, box_deltas, rois, images.image_sizes,
                                   original_sizes, kept)
        clock.lap("postprocess")
        return results, clock.ms

    def preprocess(self, frames: Iterable[np.ndarray]) -> tuple[ImageList, list]:
        """BGR uint8 frames -> the model's normalized, resized, padded RGB batch, and each
        frame's (height, width)."""
        if isinstance(frames, Source):
            raise TypeError(f"Expected a list (or any iterable) of frames, but found a "
                            f"{type(frames).__name__}: a source's frames are detected as they "
                            "are read, not all at once: for frame in source: "
                            "detector(frame.image), or a Pipeline")
        frames = frame_list(frames)
        if len(frames) == 0:
            raise ValueError("Expected at least one frame")
        frames = [self._usable(frame, i, len(frames)) for i, frame in enumerate(frames)]
        # writable too: torch warns of a read-only array (np.frombuffer of a ROS message)
        uploaded = [torch.from_numpy(np.require(frame, requirements="CW"))  # no GPU wait
                    .to(self.device, non_blocking=True) for frame in frames]
        return self.batch(uploaded), [tuple(frame.shape[:2]) for frame in frames]

    def _usable(self, frame: np.ndarray, i: int, n: int) -> np.ndarray:
        """``frame`` as (H, W, 3) BGR (``as_bgr``), of a size the model can take; the error
        names its position when it is one of ``n`` > 1 (a batch of files, one unreadable)."""
        try:
            frame = as_bgr(frame)
            problem = self.size_problem(frame.shape[1], frame.shape[0])
            if problem is not None:
                raise ValueError(f"Expected a frame the model can take, but {problem}")
            return frame
        except (TypeError, ValueError) as e:
            if n == 1:
                raise
            raise type(e)(f"{e} (frames[{i}], of the {n} given)") from None

    def batch(self, frames: Sequence[Tensor]) -> ImageList:
        """(H, W, 3) uint8 BGR frames on the device -> the model's batch: what its
        ``GeneralizedRCNNTransform`` does (normalize, resize, pad), with the mean and std
        copied to the device without waiting for it (torchvision's is a blocking copy)."""
        transform = self.model.transform
        device = frames[0].device
        mean = to_device(transform.image_mean, torch.float32, device)
        std = to_device(transform.image_std, torch.float32, device)
        # torchvision's arithmetic, bit for bit, in place on the (H, W, 3) copy: no
        # temporaries (at 1344x800, 9 ms against 22); the result is a (3, H, W) view
        normalized = [f.flip(-1).float().div_(255).sub_(mean).div_(std).permute(2, 0, 1)
                      for f in frames]
        resized = [_resize(transform, x) for x in normalized]
        sizes = [(int(r.shape[-2]), int(r.shape[-1])) for r in resized]
        return ImageList(transform.batch_images(resized, transform.size_divisible), sizes)

    def _proposals(self, images: ImageList, features: list[Tensor], objectness: list[Tensor],
                   deltas: list[Tensor]) -> RoIs:
        """RPN proposals per image and their RoI-pooled features (``MiddleStage``)."""
        return self.middle(images, features, objectness, deltas)

    def postprocess(self, logits: Tensor, box_deltas: Tensor, rois: RoIs, image_sizes: list,
                    original_sizes: list, kept: tuple | None = None) -> list[Detections]:
        """Decode boxes, per-class NMS, scale to the original frames, apply conf/classes
        (``kept``, by default the detector's)."""
        kept = self.kept() if kept is None else kept
        if rois.valid is not None:
            rows = self.detection_rows(logits, box_deltas, rois, image_sizes, original_sizes)
            return [self._select(r[r[:, 6] > 0], *kept) for r in rows.cpu().numpy()]  # 1 wait
        roi_heads = self.model.roi_heads
        boxes, scores, labels = roi_heads.postprocess_detections(
            logits, box_deltas, rois.boxes, image_sizes)
        raw = [{"boxes": b, "scores": s, "labels": lab}
               for b, s, lab in zip(boxes, scores, labels)]
        raw = self.model.transform.postprocess(raw, image_sizes, original_sizes)
        return [self._select(torch.cat([r["boxes"], r["scores"][:, None],
                                        r["labels"][:, None].to(r["boxes"].dtype)], 1)
                             .cpu().numpy(), *kept) for r in raw]

    def detection_rows(self, logits: Tensor, box_deltas: Tensor, rois: RoIs, image_sizes: list,
                       original_sizes: list) -> Tensor:
        """What ``postprocess`` computes on the device for fixed-shape ``rois`` (a CUDA run),
        without waiting for it: float[N, D, 7] rows of x1, y1, x2, y2 in the original
        frame's pixels, score, label and 1 for a detection (0: padding)."""
        found = fixed_detections(self.model.roi_heads, logits, box_deltas,
                                 torch.stack(rois.boxes), rois.valid, image_sizes)
        # as the transform's resize_boxes: float32 ratios of original to resized size
        ratios = [[np.float32(ow) / np.float32(w), np.float32(oh) / np.float32(h)] * 2
                  for (h, w), (oh, ow) in zip(image_sizes, original_sizes)]
        boxes = found.boxes * to_device(ratios, found.boxes.dtype, found.boxes.device)[:, None]
        return torch.cat([boxes, found.scores[..., None], found.labels[..., None].to(boxes.dtype),
                          found.real[..., None].to(boxes.dtype)], -1)

    def _select(self, rows: np.ndarray, conf: float, class_ids: tuple | None) -> Detections:
        """Detections from rows of x1, y1, x2, y2, score, label, with conf and classes."""
        det = Detections(rows[:, :4], rows[:, 4], rows[:, 5].astype(np.int64))
        keep = det.scores >= conf
        if class_ids is not None:
            keep &= np.isin(det.class_ids, class_ids)
        det = det[keep]
        return det.with_nms(AGNOSTIC_IOU) if self.agnostic_nms else det


def check_loaded(loaded) -> None:
    """TypeError, saying how to make a detector of it, for what is not a ``LoadedModel``: a
    checkpoint's path (as Ultralytics' ``YOLO("yolov8n.pt")``), a config, a bare module."""
    if isinstance(loaded, LoadedModel):
        return
    if isinstance(loaded, (str, os.PathLike)):
        found = (f"a path ({str(loaded)!r}); to load a checkpoint use "
                 "Detector.from_config(DetectorConfig(weights=path))")
    elif isinstance(loaded, DetectorConfig):
        found = "a DetectorConfig; build from it with Detector.from_config(config)"
    elif isinstance(loaded, torch.nn.Module):
        found = (f"a {type(loaded).__name__} (a torch module); wrap it with its class names: "
                 "Detector(LoadedModel(model, NAME, class_names, WEIGHTS_ID)) "
                 "(drivevision.model.LoadedModel)")
    else:
        found = type(loaded).__name__
    raise TypeError("Expected a LoadedModel (drivevision.load_model(name, weights)), but "
                    f"found {found}")


def _resize(transform, image: Tensor) -> Tensor:
    """``transform.resize(image)``, skipped where it would keep the size: a frame already at
    the model's input size (torchvision interpolates it anyway, to the same values)."""
    short, long = sorted(image.shape[-2:])
    scale = min(transform.min_size[-1] / short, transform.max_size / long)
    if scale == 1.0 and getattr(transform, "fixed_size", None) is None:
        return image
    return transform.resize(image, None)[0]


def calibration_set(calib, frames: int = CALIB_FRAMES, option: str = "--calib") -> CalibrationSet:
    """``calib`` (a video file or folder of images, or a ``CalibrationSet``) as the set int8
    calibrates on: ``frames`` evenly spaced frames. ValueError when None; SourceError for
    footage that cannot be read, naming ``option`` (the commands' ``--calib``, or the
    ``calib`` keyword)."""
    from drivevision.io.calibration import calibration_digest, calibration_frames

    if calib is None:
        raise ValueError(NEED_CALIB)
    if isinstance(calib, CalibrationSet):
        return calib
    check_calib_frames(frames)
    text = str(calib)
    return CalibrationSet(Path(text).name or text, calibration_digest(text, frames, option),
                          lambda: calibration_frames(text, frames, option))
