"""The detector's precisions: fp32 on any device, bf16 on the CPU close to fp32, fp16
on CUDA only, and the caller's fp32 model left as it was."""

import numpy as np
import pytest
import torch
from detector_scenes import FIXTURE, assert_found_in, scene

from drivevision.detections import Detections
from drivevision.detector import Detector
from drivevision.model import load_model


def test_fp16_on_cpu_is_refused(tiny_loaded):
    with pytest.raises(ValueError, match="fp16"):
        Detector(tiny_loaded, device="cpu", precision="fp16")


def test_bf16_cpu_path_stays_close_to_fp32(tiny_loaded):
    frame = scene(120, 200, seed=4)
    fp32 = Detector(tiny_loaded, device="cpu", precision="fp32", conf=0.0, classes="all")
    bf16 = Detector(tiny_loaded, device="cpu", precision="bf16", conf=0.0, classes="all")
    images, _ = fp32.preprocess([frame])
    a, b = fp32.engine.dense_a(images.tensors), bf16.engine.dense_a(images.tensors)
    for kind, dtype, want, got in zip(("features", "objectness", "deltas"),
                                      (torch.bfloat16, torch.float32, torch.float32), a, b):
        for x, y in zip(want, got):  # features pooled in bf16, boxes decoded in fp32
            assert y.dtype == dtype, kind
            assert torch.linalg.norm(x - y.float()) / torch.linalg.norm(x) < 5e-2, kind


def test_fp32_weights_are_not_changed_by_a_bf16_detector(tiny_loaded):
    before = next(tiny_loaded.module.parameters()).dtype
    Detector(tiny_loaded, device="cpu", precision="bf16")
    assert next(tiny_loaded.module.parameters()).dtype == before == torch.float32


@pytest.mark.gpu
def test_fp16_cuda_detections_match_fp32():
    """With the trained fixture (confident, well separated scores), fp16 finds what fp32
    finds and nothing else: same classes, boxes matched at IoU >= 0.95. Detections within
    0.05 of the threshold may fall either side of it."""
    loaded = load_model("tiny-fpn", FIXTURE)
    frame = scene(216, 384, seed=99)
    fp32 = Detector(loaded, device="cuda", conf=0.45, classes="all")(frame)
    fp16 = Detector(loaded, device="cuda", precision="fp16", conf=0.45, classes="all")(frame)
    assert int(np.sum(fp32.scores >= 0.55)) >= 2  # it detects things: the match means something
    assert_found_in(fp32, fp16, conf=0.55, min_iou=0.95)
    assert_found_in(fp16, fp32, conf=0.55, min_iou=0.95)


def test_bf16_cpu_detections_match_fp32_as_fp16_on_cuda_must():
    """The comparison the CUDA fp16 test makes, run where a CPU can: bf16 finds what fp32
    finds, box for box (same class, IoU >= 0.9), and the check fails on a moved box."""
    loaded = load_model("tiny-fpn", FIXTURE)
    frame = scene(216, 384, seed=99)
    fp32 = Detector(loaded, device="cpu", conf=0.45, classes="all")(frame)
    bf16 = Detector(loaded, device="cpu", precision="bf16", conf=0.45, classes="all")(frame)
    assert int(np.sum(fp32.scores >= 0.55)) >= 2
    assert_found_in(fp32, bf16, conf=0.55, min_iou=0.9)
    assert_found_in(bf16, fp32, conf=0.55, min_iou=0.9)
    moved = Detections(bf16.xyxy + [30, 0, 30, 0], bf16.scores, bf16.class_ids)
    with pytest.raises(AssertionError, match="has no match"):
        assert_found_in(fp32, moved, conf=0.55, min_iou=0.9)


EPYC = "model name\t: AMD EPYC 7B13\nflags\t\t: fpu sse2 avx avx2 fma\n"


def test_bf16_on_a_cpu_without_bf16_says_it_is_emulated(tiny_loaded, caplog, monkeypatch):
    from drivevision.engines import hardware

    monkeypatch.setattr(hardware, "cpu_features", lambda: hardware.parse_cpuinfo(EPYC))
    Detector(tiny_loaded, device="cpu", precision="bf16")
    assert "emulated and slower than fp32" in caplog.text
    caplog.clear()
    Detector(tiny_loaded, device="cpu", precision="fp32")
    assert caplog.text == ""
