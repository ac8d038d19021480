"""Builds torchvision Faster R-CNN detectors and resolves their weights.

Weights come from torchvision's own weights API (COCO, downloaded once into torch's hub
cache) or from a local checkpoint loaded with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import copy
import json
import logging
import os
import pickle
import re
import urllib.error
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn
from torchvision.models import resnet
from torchvision.models.detection import (
    FasterRCNN,
    FasterRCNN_ResNet50_FPN_V2_Weights,
    FasterRCNN_ResNet50_FPN_Weights,
    fasterrcnn_resnet50_fpn,
    fasterrcnn_resnet50_fpn_v2,
)
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.faster_rcnn import FastRCNNPredictor, TwoMLPHead
from torchvision.models.detection.rpn import RegionProposalNetwork
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from drivevision.config import DEFAULT_MODEL, setting, weights_problem
from drivevision.errors import WeightsError
from drivevision.hashing import file_sha256
from drivevision.labels import COCO_NAMES, counted

_log = logging.getLogger(__name__)

COCO_WEIGHTS = {
    "r50-fpn-v2": FasterRCNN_ResNet50_FPN_V2_Weights.COCO_V1,
    "r50-fpn": FasterRCNN_ResNet50_FPN_Weights.COCO_V1,
}
_CLS_KEY = "roi_heads.box_predictor.cls_score.weight"


@dataclass(frozen=True)
class LoadedModel:
    """A detector module in eval mode with what is known about its weights.

    ``weights_id`` identifies the weights (a file hash); compiled engines key caches on it.
    """

    module: FasterRCNN
    name: str
    class_names: tuple[str, ...]
    weights_id: str


def tiny_fpn(*, num_classes: int, min_size: int = 360, max_size: int = 640,
             **kwargs) -> FasterRCNN:
    """A small ResNet-FPN Faster R-CNN (about 1M parameters) for tests and demo weights.

    Same structure as the ResNet-50-FPN detectors (residual body, FPN, RPN, RoIAlign, box
    head), only narrower, so every engine path runs on it at a fraction of the cost. Other
    keyword arguments go to ``FasterRCNN``, as with torchvision's builders.
    """
    widths = (16, 32, 64, 128)
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        stem=nn.Sequential(
            nn.Conv2d(3, widths[0], 7, 2, 3, bias=False), nn.BatchNorm2d(widths[0]),
            nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1),
        )
    )
    in_ch = widths[0]
    for i, width in enumerate(widths):
        stride = 1 if i == 0 else 2
        down = None if stride == 1 and in_ch == width else nn.Sequential(
            nn.Conv2d(in_ch, width, 1, stride, bias=False), nn.BatchNorm2d(width))
        layers[f"layer{i + 1}"] = resnet.BasicBlock(in_ch, width, stride, down)
        in_ch = width
    body = nn.Sequential(layers)
    backbone = BackboneWithFPN(
        body, {f"layer{i + 1}": str(i) for i in range(4)}, list(widths), 64,
        extra_blocks=LastLevelMaxPool(),
    )
    return FasterRCNN(
        backbone, num_classes=None, min_size=min_size, max_size=max_size,
        box_head=TwoMLPHead(64 * 7 * 7, 128), box_predictor=FastRCNNPredictor(128, num_classes),
        **kwargs,
    )


def build_model(name: str, *, num_classes: int = 91, **transform: int) -> FasterRCNN:
    """A detector of architecture ``name`` with random weights (no download), in eval mode."""
    kwargs = {k: v for k, v in transform.items() if v is not None}
    if name == "tiny-fpn":
        model = tiny_fpn(num_classes=num_classes, **kwargs)
    else:
        builder = {"r50-fpn-v2": fasterrcnn_resnet50_fpn_v2, "r50-fpn": fasterrcnn_resnet50_fpn}
        if name not in builder:
            raise ValueError(f"Unknown model {name!r}; expected r50-fpn-v2, r50-fpn or tiny-fpn")
        model = builder[name](weights=None, weights_backbone=None, num_classes=num_classes,
                              **kwargs)
    return model.eval()


def copy_with_proposals(module: FasterRCNN, proposals: int | None = None) -> FasterRCNN:
    """A deep copy of ``module``; its RPN keeps ``proposals`` boxes per image at test time.

    The copy's RPN is built anew through ``RegionProposalNetwork``'s constructor, as
    ``FasterRCNN(rpn_post_nms_top_n_test=proposals)`` builds it, around the copied head and
    anchor generator and with every other setting of the original. None keeps the count
    ``module`` has. ``module`` itself is neither changed nor moved.
    """
    if proposals is not None and (not isinstance(proposals, int) or proposals < 1):
        raise ValueError(f"Expected proposals to be an int >= 1, but got {proposals!r}")
    module = copy.deepcopy(module)
    if proposals is None:
        return module
    old = module.rpn
    pre, post = _nms_top_n(old)
    post["testing"] = proposals
    rpn = RegionProposalNetwork(
        old.anchor_generator, old.head,
        old.proposal_matcher.high_threshold, old.proposal_matcher.low_threshold,
        old.fg_bg_sampler.batch_size_per_image, old.fg_bg_sampler.positive_fraction,
        pre, post, old.nms_thresh, score_thresh=old.score_thresh,
    )
    rpn.min_size = old.min_size
    module.rpn = rpn.train(old.training)
    return module


def set_box_nms(module: FasterRCNN, iou: float | None, max_det: int | None) -> None:
    """The box head's NMS threshold and detections per image, as torchvision's
    ``FasterRCNN(box_nms_thresh=iou, box_detections_per_img=max_det)`` sets them."""
    if iou is not None:
        if isinstance(iou, bool) or not 0.0 < iou <= 1.0:
            raise ValueError(f"Expected iou in (0, 1], but got {iou!r}")
        module.roi_heads.nms_thresh = float(iou)
    if max_det is not None:
        if isinstance(max_det, bool) or not isinstance(max_det, int) or max_det < 1:
            raise ValueError(f"Expected max_det to be an int >= 1, but got {max_det!r}")
        module.roi_heads.detections_per_img = max_det


def _nms_top_n(rpn: RegionProposalNetwork) -> tuple[dict[str, int], dict[str, int]]:
    """The RPN's pre- and post-NMS counts per mode, read through its public getters."""
    pre, post = {}, {}
    training = rpn.training
    for mode in ("training", "testing"):
        rpn.train(mode == "training")
        pre[mode], post[mode] = rpn.pre_nms_top_n(), rpn.post_nms_top_n()
    rpn.train(training)
    return pre, post


def load_model(name: str | None, weights: str | os.PathLike | None = None, *,
               progress: bool = True, min_size: int | None = None,
               max_size: int | None = None) -> LoadedModel:
    """Build ``name`` and load weights: torchvision's COCO weights, or a local checkpoint.

    A checkpoint is a state dict, or a dict with ``model`` (the state dict) and optionally
    ``arch``, ``class_names``, ``min_size``, ``max_size``. Class names may also come from a
    sidecar file beside it (``<checkpoint>.names`` or ``.txt``, one name per line, or ``.json``).
    A checkpoint's ``arch`` wins over ``name`` (a warning says so when they differ); ``name``
    None means that architecture, or r50-fpn-v2 when the checkpoint names none.
    """
    return load_named(name, weights, progress=progress, min_size=min_size,
                      max_size=max_size, option="name")


def load_named(name: str | None, weights: str | os.PathLike | None = None, *,
               progress: bool = True, min_size: int | None = None,
               max_size: int | None = None, option: str = "model") -> LoadedModel:
    """``load_model``, its warning of a checkpoint that wins over ``name`` naming ``option``:
    ``load_model``'s ``name``, or DetectorConfig's ``model`` (``Detector.from_config``)."""
    if weights is None:
        return _load_coco(name or DEFAULT_MODEL, progress, min_size, max_size)
    return _load_checkpoint(name, Path(weights), min_size, max_size, option)


# The commands' spelling and the Python API's: this error reaches users of both.
_LOCAL_WEIGHTS = "give a local checkpoint: --weights PATH, or DetectorConfig(weights=PATH)"


def _load_coco(name: str, progress: bool, min_size: int | None,
               max_size: int | None) -> LoadedModel:
    if name not in COCO_WEIGHTS:
        raise WeightsError(f"Model {name} has no published weights; {_LOCAL_WEIGHTS}")
    spec = COCO_WEIGHTS[name]
    folder = Path(torch.hub.get_dir()) / "checkpoints"
    file = os.path.basename(spec.url)
    try:
        if not (folder / file).is_file():  # fetched here: torchvision would print a
            _download(spec.url, folder / file, progress)  # "Downloading" line even offline
        state = spec.get_state_dict(progress=progress, check_hash=True)
    except (urllib.error.URLError, OSError, RuntimeError) as e:
        raise WeightsError(
            f"Cannot get the COCO weights for {name} ({_reason(e)}). Download {spec.url} and put "
            f"{file} in {folder}, or {_LOCAL_WEIGHTS}"
        ) from e
    model = build_model(name, num_classes=91, min_size=min_size, max_size=max_size)
    model.load_state_dict(state)
    return LoadedModel(model, name, COCO_NAMES, file.rsplit(".", 1)[0])


def _download(url: str, path: Path, progress: bool) -> None:
    """``url`` into ``path`` (a progress bar, no other output), its hash checked as
    torch.hub does: against the hex digits after the last "-" of the file name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    digits = re.search(r"-([a-f0-9]*)\.", path.name)
    torch.hub.download_url_to_file(url, str(path), digits.group(1) if digits else None,
                                   progress=progress)


def _reason(error: BaseException) -> str:
    reason = getattr(error, "reason", None) or error
    return str(reason).splitlines()[0] if str(reason) else type(error).__name__


def checkpoint_class_names(path: str | os.PathLike) -> tuple[str, ...]:
    """The class names ``load_model`` would give the checkpoint at ``path`` (its own, a
    sidecar's or COCO's), read without building the model: commands check ``--classes``
    against them before the slow load. WeightsError as ``load_model`` for a file it refuses.
    """
    path = Path(path)
    ckpt, state = _read_checkpoint(path, mmap=True)
    return _class_names(path, ckpt, int(state[_CLS_KEY].shape[0]))


def checkpoint_architecture(path: str | os.PathLike, asked: str | None, *,
                            option: str = "--model") -> str | None:
    """The architecture ``load_model(asked, path)`` builds (the checkpoint's own where it
    names one, else ``asked``), read without building the model, with its warning naming
    ``option`` when they differ: commands say it with ``--model`` before the slow load.
    WeightsError as ``load_model`` for a file it refuses."""
    ckpt, _state = _read_checkpoint(Path(path), mmap=True)
    return _architecture(Path(path), ckpt.get("arch"), asked, option) if asked else ckpt.get(
        "arch")


def _load_checkpoint(name: str | None, path: Path, min_size: int | None,
                     max_size: int | None, option: str) -> LoadedModel:
    ckpt, state = _read_checkpoint(path)
    arch = _architecture(path, ckpt.get("arch"), name, option)
    num_classes = int(state[_CLS_KEY].shape[0])
    names = _class_names(path, ckpt, num_classes)
    model = build_model(arch, num_classes=num_classes, min_size=min_size or ckpt.get("min_size"),
                        max_size=max_size or ckpt.get("max_size"))
    try:
        model.load_state_dict(
            {k: v.float() if v.is_floating_point() else v for k, v in state.items()})
    except RuntimeError as e:
        raise WeightsError(f"Checkpoint {path} does not fit model {arch}: {_mismatch(e)}") from e
    return LoadedModel(model, arch, names, file_sha256(path)[:16])


def _read_checkpoint(path: Path, *, mmap: bool = False) -> tuple[dict, dict]:
    """The checkpoint at ``path`` and its state dict (the checkpoint itself when it is a
    bare one). ``mmap``: tensors stay on disk until read (a zip checkpoint, torch.save's
    format; an older one is read whole), for a look at its metadata only."""
    if weights_problem(path):  # the commands check their --weights before
        raise WeightsError(weights_problem(path, "weights", "engine"))
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True,
                          mmap=mmap and zipfile.is_zipfile(path))
    except pickle.UnpicklingError as e:  # torch's text would suggest weights_only=False
        if _code_reference(e):
            raise WeightsError(f"Refusing checkpoint {path}: it holds Python objects other "
                               f"than tensors (a reference to {_code_reference(e)}), which "
                               "loading could run as code; use a checkpoint of tensors only "
                               "(a state dict)") from None
        raise WeightsError(_unreadable(path, _unpickling_reason(e))) from None
    except Exception as e:  # noqa: BLE001 - torch raises many types for a foreign file
        raise WeightsError(_unreadable(path, _reason(e))) from None
    state = ckpt.get("model", ckpt.get("state_dict", ckpt)) if isinstance(ckpt, dict) else None
    if not isinstance(state, dict) or _CLS_KEY not in state:
        raise WeightsError(f"{path} is not a Faster R-CNN checkpoint (no {_CLS_KEY})")
    return ckpt, state


def _code_reference(error: pickle.UnpicklingError) -> str | None:
    """The class or function torch's weights-only unpickler refused to import, or None
    when it refused something else (a file that is no pickle at all)."""
    found = re.search(r"GLOBAL ([\w.]+)", str(error))
    return found.group(1) if found else None


def _unpickling_reason(error: pickle.UnpicklingError) -> str:
    """What torch's weights-only unpickler stopped at, without its advice to load unsafely."""
    found = re.search(r"Unsupported operand (\d+)", str(error))
    return f"pickle opcode {found.group(1)}" if found else "an object torch refuses"


def _unreadable(path: Path, reason: str) -> str:
    """Why ``path`` failed to load: a file torch.save cannot have written (its format is a
    zip archive, or a pickle of protocol 2 or later), or a damaged one."""
    try:
        with path.open("rb") as f:
            head = f.read(4)
    except OSError as e:
        return f"Cannot read checkpoint {path}: {_reason(e)}"
    if head != b"PK\x03\x04" and head[:1] != b"\x80":
        return f"{path} is not a PyTorch checkpoint (a .pt/.pth file saved by torch.save)"
    return f"Cannot read checkpoint {path}: damaged, or not a PyTorch checkpoint ({reason})"


def _architecture(path: Path, saved: str | None, asked: str | None, option: str) -> str:
    """The checkpoint's own architecture if it names one, else the one asked for; a
    warning naming ``option`` (a command's ``--model``, a keyword as typed: ``model='...'``)
    when they differ."""
    if saved and asked and saved != asked:
        named = option if option.startswith("--") else setting(option, asked)
        _log.warning(f"{path.name} holds a {saved} model, not {asked}: using {saved} (a "
                     f"checkpoint's own architecture wins over {named})")
    return saved or asked or DEFAULT_MODEL


def _mismatch(error: RuntimeError) -> str:
    lines = [ln.strip() for ln in str(error).splitlines() if ln.strip()]
    detail = lines[1] if len(lines) > 1 else lines[0]
    return (detail[:200] + "...") if len(detail) > 200 else detail


def _class_names(path: Path, ckpt: dict, num_classes: int) -> tuple[str, ...]:
    names, origin = ckpt.get("class_names"), f"{path}'s class_names"
    for sidecar in (path.with_suffix(".names"), path.with_suffix(".txt")):
        if names is None and sidecar.is_file():
            names, origin = _read_names(sidecar), str(sidecar)
    json_file = path.with_suffix(".json")
    if names is None and json_file.is_file():
        names, origin = _json_names(json_file), str(json_file)
    if names is None:
        names = COCO_NAMES if num_classes == len(COCO_NAMES) else \
            ["__background__"] + [f"class {i}" for i in range(1, num_classes)]
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        odd = names if not isinstance(names, (list, tuple)) else \
            next(n for n in names if not isinstance(n, str))
        raise WeightsError(f"Expected {origin} to be a list of strings, but found "
                           f"{type(odd).__name__} {str(odd)[:40]!r}")
    names = tuple(names)
    if len(names) == num_classes - 1:
        names = ("__background__",) + names
    if len(names) != num_classes:
        raise WeightsError(
            f"{path} has {counted(num_classes, 'class', 'classes')} but its names list has "
            f"{counted(len(names), 'entry', 'entries')}")
    return names


def _read_names(path: Path) -> list[str]:
    try:
        return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    except (UnicodeDecodeError, OSError) as e:
        raise WeightsError(f"Cannot read class names from {path}: {_reason(e)}") from None


def _json_names(path: Path):
    try:
        data = json.loads(path.read_text())
    except (UnicodeDecodeError, OSError, ValueError) as e:
        raise WeightsError(f"Cannot read class names from {path}: {_reason(e)}") from None
    if not isinstance(data, dict):
        raise WeightsError(f'Expected {path} to hold an object {{"class_names": [...]}}, but '
                           f"found a JSON {type(data).__name__}")
    return data.get("class_names")


def save_checkpoint(loaded: LoadedModel, path: str | os.PathLike, *, half: bool = False) -> None:
    """Write a checkpoint ``load_model`` reads back, with architecture and class names inside."""
    state = {k: (v.half() if half and v.is_floating_point() else v)
             for k, v in loaded.module.state_dict().items()}
    transform = loaded.module.transform
    torch.save({"model": state, "arch": loaded.name, "class_names": list(loaded.class_names),
                "min_size": int(transform.min_size[0]), "max_size": int(transform.max_size)}, path)
