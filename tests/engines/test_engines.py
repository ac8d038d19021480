"""Every engine computes what torchvision computes.

1. Dense parity: each engine's dense A and dense B outputs against the eager
   ``DenseModules`` in fp32: relative L2 error <= 1e-4 fp32, <= 1e-2 fp16/bf16.
2. End-to-end parity: detections of ``Detector(engine=...)`` against torchvision's own
   ``model(images)`` on held-out generated scenes, using the trained fixture model
   (assets/tiny-fpn-synthetic.pt, made by scripts/train_fixture.py), whose scores are
   confident and well separated, so a ranking cannot flip on rounding noise.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torchvision.ops import box_iou

from drivevision.detector import Detector
from drivevision.engines import Engine, create_engine, pick_auto
from drivevision.engines.aot import AheadOfTime
from drivevision.engines.torch import DTYPES
from drivevision.synthetic import SceneGenerator

CONF = 0.5
CPU = torch.device("cpu")
TOL = {"fp32": 1e-4, "fp16": 1e-2, "bf16": 1e-2}


@pytest.fixture(scope="module")
def scenes():
    """Held-out scenes (a seed the fixture never saw), 384x216 BGR; input pads to 224x384."""
    gen = SceneGenerator(384, 216, seed=99)
    return [gen.frame(i).image for i in (5, 40)]


_engines: dict = {}


def engine_for(loaded, name: str, device: torch.device, precision: str):
    """One engine per setting for the whole module (compiling and exporting take seconds)."""
    key = (name, device.type, precision)
    if key not in _engines:
        _engines[key] = create_engine(name, loaded, device=device, precision=precision)
    return _engines[key]


def rel_l2(got: torch.Tensor, want: torch.Tensor) -> float:
    return float((got.float().cpu() - want.float().cpu()).norm() / want.float().cpu().norm())


def dense_inputs(loaded, frame) -> tuple[torch.Tensor, torch.Tensor]:
    """A real scene as dense A sees it (normalized, padded [1, 3, 224, 384]) and the pooled
    RoI features [R, 64, 7, 7] dense B sees for it, computed the eager fp32 way."""
    det = Detector(loaded, device="cpu", conf=CONF, classes="all")
    with torch.inference_mode():
        images, _ = det.preprocess([frame])
        pooled = det._proposals(images, *det.engine.dense_a(images.tensors)).pooled
    return images.tensors, pooled


def check_dense(loaded, name: str, device: torch.device, precision: str, frame) -> None:
    ref = create_engine("torch", loaded, device=CPU, precision="fp32")
    eng = engine_for(loaded, name, device, precision)
    images, pooled = dense_inputs(loaded, frame)
    assert images.shape == (1, 3, 224, 384) and pooled.shape[0] > 100
    want_a, got_a = ref.dense_a(images), eng.dense_a(images.to(device))
    for kind, w_group, g_group in zip(("features", "objectness", "deltas"), want_a, got_a):
        assert len(g_group) == len(w_group) == 5, kind  # FPN levels "0".."3", "pool"
        for level, (w, g) in enumerate(zip(w_group, g_group)):
            # features may stay in the engine's precision (the middle stage pools them so)
            dtypes = {torch.float32, DTYPES[precision]} if kind == "features" else {torch.float32}
            assert g.shape == w.shape and g.dtype in dtypes, (kind, level)
            assert rel_l2(g, w) <= TOL[precision], (kind, level, rel_l2(g, w))
    for w, g in zip(ref.dense_b(pooled), eng.dense_b(pooled.to(device))):
        assert g.shape == w.shape and rel_l2(g, w) <= TOL[precision]


@pytest.mark.parametrize("name,precision", [
    ("torch", "fp32"), ("torch", "bf16"),
    pytest.param("onnx", "fp32", marks=pytest.mark.slow),
    pytest.param("compiled", "fp32", marks=pytest.mark.slow),
])
def test_dense_outputs_match_eager_modules_on_cpu(loaded, scenes, name, precision):
    check_dense(loaded, name, CPU, precision, scenes[0])


def reference_detections(loaded, frames, device) -> list[dict]:
    """torchvision's own ``model(images)`` on RGB float frames: the ground truth here."""
    model = loaded.module.to(device).eval()
    with torch.inference_mode():
        images = [torch.from_numpy(f[:, :, ::-1].copy()).permute(2, 0, 1).float().div(255)
                  .to(device) for f in frames]
        return [{k: v.cpu() for k, v in out.items()} for out in model(images)]


# How close an engine's detection must be to torchvision's fp32 one: (IoU, score difference).
# fp32 is the same computation reordered; fp16 keeps 10 bits of mantissa. bf16 keeps 7, and
# the boxes and scores of one object move: over 20 held-out scenes the worst of 148
# detections moved to IoU 0.77-0.88 (eager bf16) and 0.74-0.91 (compiled bf16, whose
# frozen graph folds the batch norms into bf16 weights), so bf16 asks for the same object
# (IoU >= 0.7), class and score (within 0.05); its accuracy is what `drivevision eval`
# checks (tests/evaluation).
MATCH = {"fp32": (0.98, 1e-3), "fp16": (0.98, 1e-2), "bf16": (0.7, 0.05)}


def check_detections(loaded, name: str, device: torch.device, precision: str, frames) -> int:
    """Every torchvision detection scoring >= CONF + tol has an engine detection of the same
    class with IoU >= ``MATCH``'s and a score within tol, and vice versa (detections near
    the threshold may fall either side). Returns how many detections were matched."""
    min_iou, tol = MATCH[precision]
    det = Detector(loaded, engine="torch", device=device.type, precision=precision,
                   conf=CONF - tol, classes="all")
    det.engine = engine_for(loaded, name, device, precision)
    matched = 0
    found = [det(f) for f in frames]  # one shape, (1, 3, 224, 384): compiled once
    for ref, got in zip(reference_detections(loaded, frames, device), found):
        want = {k: v[ref["scores"] >= CONF - tol] for k, v in ref.items()}
        got_t = {"boxes": torch.from_numpy(got.xyxy), "scores": torch.from_numpy(got.scores),
                 "labels": torch.from_numpy(got.class_ids.astype(np.int64))}
        matched += _match(want, got_t, min_iou, tol)
        _match(got_t, want, min_iou, tol)
    return matched


def _match(a: dict, b: dict, min_iou: float, tol: float) -> int:
    """Detections of ``a`` above CONF + tol all found in ``b``; returns how many."""
    n = 0
    iou = box_iou(a["boxes"], b["boxes"]) if len(a["boxes"]) and len(b["boxes"]) else None
    for i in torch.nonzero(a["scores"] >= CONF + tol).flatten().tolist():
        assert iou is not None, f"detection {i} missing"
        ok = (iou[i] >= min_iou) & (b["labels"] == a["labels"][i]) & \
            ((b["scores"] - a["scores"][i]).abs() <= tol)
        assert bool(ok.any()), f"detection {i} ({a['labels'][i]}, {a['scores'][i]:.4f}) missing"
        n += 1
    return n


@pytest.mark.parametrize("name", ["torch", "onnx", "compiled"])
def test_detections_match_torchvision_on_cpu(loaded, scenes, name):
    """Proves: with the same weights, the engine's detector output equals torchvision's
    ``model(images)`` (same classes, IoU >= 0.98, scores within 1e-3) on unseen scenes."""
    matched = check_detections(loaded, name, CPU, "fp32", scenes)
    assert matched >= 5  # the fixture really detects things, so the comparison means something


@pytest.mark.parametrize("name", ["torch", pytest.param("compiled", marks=pytest.mark.slow)])
def test_bf16_detections_match_torchvision_on_cpu(loaded, scenes, name):
    """bf16 end to end, the middle stage pooling the engine's bf16 features: torchvision's
    fp32 detections found (same object, class and score, ``MATCH``), and vice versa."""
    assert check_detections(loaded, name, CPU, "bf16", scenes) >= 5


def check_short_batches(loaded, engine, precision: str, frames) -> None:
    """A batch of 3, then of 1 and 2 (a file's last batch, live batches): the short ones run
    on what was built for 3 (nothing new compiled or built) and find, frame for frame, what
    the batch of 3 found."""
    det = Detector(loaded, device=engine.device.type, precision=precision, conf=CONF,
                   classes="all")
    det.engine = engine
    full = det.infer(frames[:3])
    built = _builds(det.engine)
    tol = 1e-3 if precision == "fp32" else 1e-2
    for short in (frames[2:3], frames[:2]):
        for got, want in zip(det.infer(short), [full[2]] if len(short) == 1 else full[:2]):
            assert len(got) == len(want) >= 1
            assert np.abs(got.xyxy - want.xyxy).max() < 0.5
            assert np.abs(got.scores - want.scores).max() <= tol
            assert (got.class_ids == want.class_ids).all()
    assert _builds(det.engine) == built


def _builds(engine) -> int:
    """Dense A graphs compiled (compiled engine) or engines built (tensorrt) so far."""
    if engine.name == "tensorrt":
        return len(engine._a)
    if isinstance(engine._a, AheadOfTime):  # the compiled engine on the CPU: packages
        return len(engine._a.packages)
    from torch._dynamo.utils import counters
    return counters["stats"]["unique_graphs"]


@pytest.mark.slow
def test_short_batches_reuse_the_compiled_batch(loaded, scenes):
    """The compiled engine's CUDA-graph rule (pad a short batch with blank images to the
    captured batch), forced on the CPU so it runs here: same detections, no recompile."""
    frames = scenes + [SceneGenerator(384, 216, seed=7).frame(3).image]
    engine = create_engine("compiled", loaded, device=CPU, precision="fp32")
    engine.static_batch = True  # on CUDA it is the default
    check_short_batches(loaded, engine, "fp32", frames)


@pytest.mark.parametrize("precision", [
    "fp32",
    pytest.param("bf16", marks=pytest.mark.skipif(
        not torch.ops.mkldnn._is_mkldnn_bf16_supported(), reason="oneDNN has no bf16 here")),
])
def test_compiled_engine_on_cpu_runs_prepacked_fused_convolutions(loaded, scenes, precision):
    """The compiled engine freezes its weights on the CPU: dense A's convolutions run as
    oneDNN's pre-packed kernels fused with their ReLU or add (about 10% faster at 800x1344),
    none as ATen's plain convolution, which is what an unfrozen graph calls (read from the
    package's generated code)."""
    engine = engine_for(loaded, "compiled", CPU, precision)
    images, _ = dense_inputs(loaded, scenes[0])
    engine.dense_a(images)  # compiles
    calls = engine._a.calls()
    assert calls["mkldnn__convolution_pointwise"] >= 10, calls
    assert not set(calls) & {"convolution", "mkldnn_convolution"}, calls


def test_onnx_runtime_outputs_become_torch_tensors_without_a_copy():
    """The CUDA path's hand-over (I/O-bound outputs -> torch), run on CPU memory here: the
    tensor shares the OrtValue's buffer, so on a GPU nothing goes through the host."""
    ort = pytest.importorskip("onnxruntime")
    from drivevision.engines.onnx import ort_to_torch

    class DeviceOnly:
        """An OrtValue whose host copy is refused, as GPU memory would need one."""

        def __init__(self, value):
            self.value = value

        def __dlpack__(self, *args, **kwargs):
            return self.value.__dlpack__(*args, **kwargs)

        def __dlpack_device__(self):
            return self.value.__dlpack_device__()

        def numpy(self):
            raise AssertionError("the output went through host memory")

    value = ort.OrtValue.ortvalue_from_numpy(np.arange(12, dtype=np.float32).reshape(3, 4))
    t = ort_to_torch(DeviceOnly(value), CPU)
    assert t.data_ptr() == value.data_ptr() and t.shape == (3, 4) and float(t[2, 3]) == 11.0


def test_auto_picks_onnx_on_cpu_and_says_so(loaded):
    name, reason = pick_auto(CPU, "fp32")
    assert name == "onnx" and "CPU" in reason
    assert pick_auto(CPU, "bf16")[0] == "compiled"


def test_auto_reason_says_why_auto_chose_and_is_none_for_a_named_engine(tiny_loaded):
    picked = create_engine("auto", tiny_loaded, device=CPU, precision="bf16")
    assert picked.name == "compiled" and picked.auto_reason == pick_auto(CPU, "bf16")[1]
    named = create_engine("torch", tiny_loaded, device=CPU, precision="fp32")
    assert named.auto_reason is None


@pytest.mark.parametrize("module, cls", [("torch", "TorchEngine"), ("compiled", "CompiledEngine"),
                                         ("onnx", "OnnxEngine"), ("tensorrt", "TensorRTEngine")])
def test_every_engine_is_an_engine_with_no_auto_reason_of_its_own(module, cls):
    import importlib

    engine_class = getattr(importlib.import_module(f"drivevision.engines.{module}"), cls)
    assert Engine in engine_class.__mro__ and engine_class.auto_reason is None


@pytest.mark.parametrize("name,precision,message", [
    ("onnx", "bf16", "fp32"), ("tensorrt", "fp32", "CUDA"), ("compiled", "fp16", "CUDA"),
    ("nope", "fp32", "Unknown engine"),
])
def test_unsupported_settings_fail_with_one_clear_line(tiny_loaded, name, precision, message):
    with pytest.raises(ValueError, match=message):
        create_engine(name, tiny_loaded, device=CPU, precision=precision)


GPU = torch.device("cuda")


def test_gpus_tensorrt_for_rtx_cannot_build_for_get_compiled_and_one_clear_line(
        monkeypatch, tiny_loaded):
    """Only TensorRT for RTX installed (as here): auto picks tensorrt on an RTX 4090-class
    GPU, compiled on an H100, and naming tensorrt on the H100 fails in one line. The GPU is
    described to torch's query functions; nothing runs on it."""
    pytest.importorskip("tensorrt_rtx")
    if not _no("tensorrt"):
        pytest.skip("full TensorRT is installed: it builds for every GPU it runs on")
    gpu = {"capability": (9, 0), "name": "NVIDIA H100 80GB HBM3"}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: gpu["capability"])
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: gpu["name"])
    name, reason = pick_auto(GPU, "fp16")
    assert name == "compiled" and "H100" in reason and "9.0" in reason
    with pytest.raises(ValueError, match="does not support NVIDIA H100"):
        create_engine("tensorrt", tiny_loaded, device=GPU, precision="fp16")
    gpu.update(capability=(8, 9), name="NVIDIA GeForce RTX 4090")
    assert pick_auto(GPU, "fp16")[0] == "tensorrt"
    assert pick_auto(GPU, "bf16")[0] == "compiled"


@pytest.mark.gpu
@pytest.mark.parametrize("name,precision", [
    ("torch", "fp16"), ("compiled", "fp32"), ("compiled", "fp16"), ("onnx", "fp32"),
    ("tensorrt", "fp32"), ("tensorrt", "fp16"),
])
def test_dense_outputs_match_eager_modules_on_gpu(loaded, scenes, name, precision):
    if name == "tensorrt":
        pytest.importorskip("tensorrt_rtx" if _no("tensorrt") else "tensorrt")
    if name == "onnx":
        _need_ort_cuda()
    check_dense(loaded, name, GPU, precision, scenes[0])


@pytest.mark.gpu
@pytest.mark.parametrize("name,precision", [
    ("compiled", "fp32"), ("compiled", "fp16"), ("tensorrt", "fp32"), ("tensorrt", "fp16"),
])
def test_detections_match_torchvision_on_gpu(loaded, scenes, name, precision):
    if name == "tensorrt":
        pytest.importorskip("tensorrt_rtx" if _no("tensorrt") else "tensorrt")
    assert check_detections(loaded, name, GPU, precision, scenes) >= 5


@pytest.mark.gpu
@pytest.mark.parametrize("name", ["compiled", "tensorrt"])
def test_short_batches_run_on_the_engine_built_for_the_full_batch_on_gpu(
        loaded, scenes, name):
    if name == "tensorrt":
        pytest.importorskip("tensorrt_rtx" if _no("tensorrt") else "tensorrt")
    frames = scenes + [SceneGenerator(384, 216, seed=7).frame(3).image]
    engine = create_engine(name, loaded, device=GPU, precision="fp16")
    check_short_batches(loaded, engine, "fp16", frames)


@pytest.mark.gpu
def test_tensorrt_for_rtx_keeps_compiled_kernels_for_the_next_process_on_gpu(
        loaded, scenes, tmp_path, monkeypatch):
    if not _no("tensorrt"):
        pytest.skip("full TensorRT: kernels are inside the engine")
    pytest.importorskip("tensorrt_rtx")
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    first = Detector(loaded, engine="tensorrt", device="cuda", precision="fp16",
                     conf=CONF, classes="all")
    want = first(scenes[0])
    caches = sorted((tmp_path / "tensorrt").glob("*.runtime-cache"))
    assert len(caches) == 2 and all(p.stat().st_size > 0 for p in caches)  # dense A and B
    again = Detector(loaded, engine="tensorrt", device="cuda", precision="fp16",
                     conf=CONF, classes="all")
    got = again(scenes[0])
    assert len(got) == len(want) and np.abs(got.xyxy - want.xyxy).max() < 0.5


def _no(module: str) -> bool:
    try:
        __import__(module)
        return False
    except (ImportError, OSError):
        return True


def _need_ort_cuda() -> None:
    ort = pytest.importorskip("onnxruntime")
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        pytest.skip("onnxruntime has no CUDA provider")


def test_onnx_on_the_cpu_hands_its_levels_over_channels_last(loaded, scenes):
    """The middle stage reads channels-last levels as rows of C values without a copy; the
    onnx engine's come so on the CPU (its session's graph transposes them), with the values
    of the exported NCHW model."""
    from drivevision.ops.roi_align import pixel_rows

    eng = engine_for(loaded, "onnx", CPU, "fp32")
    ref = create_engine("torch", loaded, device=CPU, precision="fp32")
    images, _ = dense_inputs(loaded, scenes[0])
    got, want = eng.dense_a(images)[0], ref.dense_a(images)[0]
    for g, w in zip(got, want):
        assert g.shape == w.shape and g.is_contiguous(memory_format=torch.channels_last)
        assert rel_l2(g, w) <= TOL["fp32"]
    assert pixel_rows(got[0]).data_ptr() == got[0].data_ptr()  # a view, not a copy
