"""A CUDA run waits for the GPU only to copy the detections: stage timing by events,
the fixed-shape path that makes no synchronizing call, checked on a shape-only CUDA device
and, where there is one, on a real GPU."""

import time

import numpy as np
import pytest
import torch
from detector_scenes import FIXTURE, assert_found_in, scene
from torch._subclasses.fake_tensor import DynamicOutputShapeException, FakeTensorMode
from torch.utils._python_dispatch import TorchDispatchMode

from drivevision.detector import STAGES, Detector
from drivevision.model import load_model


class CountingCuda:
    """Stands in for torch.cuda's events and synchronize, counting each wait for the GPU."""

    def __init__(self):
        self.synchronized = self.event_waits = self.events = 0
        cuda = self

        class Event:
            def __init__(self, enable_timing: bool = False):
                assert enable_timing
                self.at = None

            def record(self):
                cuda.events += 1
                self.at = time.perf_counter()

            def synchronize(self):
                cuda.event_waits += 1

            def elapsed_time(self, end) -> float:
                return (end.at - self.at) * 1000.0

        self.Event = Event

    def synchronize(self, device=None):
        self.synchronized += 1


@pytest.mark.parametrize("sync", [False, True])
def test_stages_on_cuda_are_timed_without_waiting_for_the_gpu_unless_asked(
        tiny_loaded, monkeypatch, sync):
    from drivevision import detector as detector_module

    cuda = CountingCuda()
    monkeypatch.setattr(torch.cuda, "Event", cuda.Event)
    monkeypatch.setattr(torch.cuda, "synchronize", cuda.synchronize)
    clock = detector_module.StageClock  # the detector's clock, told it times a CUDA run
    monkeypatch.setattr(detector_module, "StageClock",
                        lambda device, sync: clock(torch.device("cuda"), sync=sync))
    detector = Detector(tiny_loaded, device="cpu", precision="fp32")
    _, ms = detector.infer_timed([scene(120, 200, 3)], sync=sync)
    assert list(ms) == list(STAGES) and all(v >= 0 for v in ms.values())
    if sync:  # bench: a wait after every stage, so each stage's time is its own
        assert (cuda.synchronized, cuda.events) == (len(STAGES) + 1, 0)
    else:  # a run: events only, and one wait on the last (already passed: the host copy)
        assert (cuda.synchronized, cuda.events, cuda.event_waits) == (0, len(STAGES) + 1, 1)


def test_bench_times_stages_with_a_wait_after_each_and_runs_do_not(tiny_loaded, monkeypatch):
    from drivevision.cli.timing import BenchSpec, time_engine

    detector = Detector(tiny_loaded, device="cpu", precision="fp32")
    asked = []
    timed = detector.infer_timed
    monkeypatch.setattr(detector, "infer_timed",
                        lambda frames, **kw: asked.append(kw) or timed(frames, **kw))
    time_engine(detector, [scene(96, 160, 1)], BenchSpec(iters=1, warmup=0), 1)
    assert asked == [{"sync": True}]
    asked.clear()
    detector.infer([scene(96, 160, 1)])
    assert len(asked) == 1 and not asked[0].get("sync")  # a run: no wait after each stage


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
def test_fixed_shapes_find_the_same_detections(precision):
    """The sync-free path a CUDA run takes (a fixed number of proposals and detection rows
    per frame), run on the CPU, finds what the data-dependent path finds, bit for bit."""
    loaded = load_model("tiny-fpn", FIXTURE)
    frames = [scene(216, 384, 99), scene(225, 300, 98), scene(360, 640, 7)]
    det = Detector(loaded, device="cpu", precision=precision, conf=0.0, classes="all")
    want = det.infer(frames)
    det.middle.fixed = True
    got = det.infer(frames)
    assert sum(len(w) for w in want) > 100
    for g, w in zip(got, want):
        assert np.array_equal(g.xyxy, w.xyxy) and np.array_equal(g.scores, w.scores)
        assert np.array_equal(g.class_ids, w.class_ids)


class HostWaits(TorchDispatchMode):
    """Records each operation that makes the host wait for a CUDA GPU: a copy to the host, a
    read of one value, a blocking copy to the GPU. (Ones whose output size depends on the
    data, nonzero or torchvision's NMS, already fail under FakeTensorMode.)"""

    def __init__(self):
        super().__init__()
        self.waits = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func._schema.name
        given = dict(zip([a.name for a in func._schema.arguments], args), **(kwargs or {}))
        if name in ("aten::_local_scalar_dense", "aten::item"):
            self.waits.append(name)
        elif name in ("aten::to", "aten::_to_copy", "aten::copy_"):
            src = (given["src"] if name == "aten::copy_" else given["self"]).device
            dst = given["self"].device if name == "aten::copy_" else torch.device(
                given.get("device") or getattr(given.get("other"), "device", src))
            if (src.type, dst.type) == ("cuda", "cpu"):
                self.waits.append(f"copy to the host, {name}")
            elif (src.type, dst.type) == ("cpu", "cuda") and not given.get("non_blocking"):
                self.waits.append(f"blocking copy to the GPU, {name}")
        return func(*args, **(kwargs or {}))


def on_fake_cuda(det: Detector, mode: FakeTensorMode, half: bool = False) -> None:
    """Moves ``det``'s weights (and the anchor generator's cell anchors, uploaded once per
    detector) to a CUDA device that only tracks shapes: FakeTensorMode needs no GPU.
    ``half``: bf16 weights become fp16 (CUDA's half precision)."""
    with mode:
        for module in {id(m): m for m in (det.model, det.engine.dense)}.values():
            for part in module.modules():
                for store in (part._parameters, part._buffers):
                    for name, value in store.items():
                        if value is not None:
                            dtype = torch.float16 if half and value.dtype == torch.bfloat16 \
                                else value.dtype
                            store[name] = torch.empty_like(value, device="cuda", dtype=dtype)
        generator = det.model.rpn.anchor_generator
        generator.cell_anchors = [torch.empty_like(c, device="cuda")
                                  for c in generator.cell_anchors]
    det.device = torch.device("cuda")


@pytest.mark.parametrize("precision", ["fp32", "fp16"])
def test_a_cuda_run_waits_for_the_gpu_only_to_copy_the_detections(precision):
    """From the frames on the GPU to the detection rows nothing waits for it (the issue's
    'no host synchronisation'); the one wait is the rows' copy to the host. The data-dependent path
    (torchvision's filters and NMS) is shown to be caught by the same check."""
    pytest.importorskip("triton")  # what the fixed path's NMS runs on a GPU
    det = Detector(load_model("tiny-fpn", FIXTURE), device="cpu",
                   precision="bf16" if precision == "fp16" else "fp32")
    frames = [scene(216, 384, 99), scene(225, 300, 98)]
    with torch.inference_mode():
        images, sizes = det.preprocess(frames)
        det.infer(frames)  # the RoI pooler's scales, set on its first call
    mode = FakeTensorMode(allow_non_fake_inputs=True)
    on_fake_cuda(det, mode, half=precision == "fp16")
    det.engine.dtype = {"fp32": torch.float32, "fp16": torch.float16}[precision]
    watch = HostWaits()

    def device_part():
        fake = det.batch([torch.empty(f.shape, dtype=torch.uint8, device="cuda") for f in frames])
        assert fake.image_sizes == images.image_sizes
        features, objectness, deltas = det.engine.dense_a(fake.tensors)
        rois = det._proposals(fake, features, objectness, deltas)
        logits, box_deltas = det.engine.dense_b(rois.pooled)
        return det.detection_rows(logits, box_deltas, rois, fake.image_sizes, sizes)

    with mode, torch.inference_mode():
        with watch:
            rows = device_part()
            assert watch.waits == []
            rows.cpu()
        assert watch.waits == ["copy to the host, aten::to"]
        assert rows.device.type == "cuda" and rows.shape == (2, 100, 7)
        det.middle.fixed = False  # torchvision's way: a nonzero, then NMS, per image
        with pytest.raises(DynamicOutputShapeException):
            device_part()


@pytest.mark.gpu
def test_a_real_cuda_run_makes_no_synchronizing_call_before_the_copy():
    """On a GPU, torch's own sync check (an error on any synchronizing call) from the frames
    on the GPU to the detection rows; and the detections equal the CPU's data-dependent path's."""
    pytest.importorskip("triton")
    loaded = load_model("tiny-fpn", FIXTURE)
    frames = [scene(216, 384, 99), scene(225, 300, 98)]
    det = Detector(loaded, device="cuda", conf=0.0, classes="all")
    found = det.infer(frames)  # warm: anchors, pooler scales, the Triton kernel compiled
    uploaded = [torch.from_numpy(f).cuda() for f in frames]
    sizes = [f.shape[:2] for f in frames]
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        with torch.inference_mode():
            images = det.batch(uploaded)
            features, objectness, deltas = det.engine.dense_a(images.tensors)
            rois = det._proposals(images, features, objectness, deltas)
            logits, box_deltas = det.engine.dense_b(rois.pooled)
            rows = det.detection_rows(logits, box_deltas, rois, images.image_sizes, sizes)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert rows.shape == (2, 100, 7) and rois.valid is not None
    cpu = Detector(loaded, device="cpu", conf=0.0, classes="all").infer(frames)
    for g, c in zip(found, cpu):
        assert len(g) > 10
        assert_found_in(c, g, conf=0.3, min_iou=0.99)
        assert_found_in(g, c, conf=0.3, min_iou=0.99)
