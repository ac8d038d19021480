"""Greedy NMS over fixed-size groups keeps, per group, what torchvision's NMS keeps: on the
CPU, in the GPU kernel (run here by Triton's interpreter) and as a fixed shape when traced."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torchvision.ops import nms

from drivevision.ops.nms import greedy_keep

ROOT = Path(__file__).parents[1]


def groups(seed: int, count: int = 5, size: int = 200):
    """``count`` groups of ``size`` boxes: random, one of exact duplicates, one with no
    candidates, and some boxes in every group that are not candidates."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(count, size, 2, generator=g) * 50
    boxes = torch.cat([xy, xy + torch.rand(count, size, 2, generator=g) * 40 + 5], -1)
    boxes[1] = boxes[1, :1]
    valid = torch.rand(count, size, generator=g) > 0.2
    valid[2] = False
    return boxes, valid


def torchvision_keep(boxes, valid, threshold):
    """What ``torchvision.ops.nms`` keeps of each group's candidates, taken in order."""
    keep = torch.zeros_like(valid)
    for k, b, v in zip(keep, boxes, valid):
        index = v.nonzero().squeeze(1)
        order = torch.arange(len(index), 0, -1, dtype=torch.float32)  # position = rank
        k[index[nms(b[index], order, threshold)]] = True
    return keep


@pytest.mark.parametrize("seed, threshold", [(0, 0.5), (1, 0.7), (2, 0.3)])
def test_keeps_what_torchvision_keeps_in_every_group(seed, threshold):
    boxes, valid = groups(seed)
    got = greedy_keep(boxes, valid, threshold)
    assert got.dtype == torch.bool and got.shape == valid.shape
    assert torch.equal(got, torchvision_keep(boxes, valid, threshold))
    assert not got[~valid].any() and got[1].sum() == 1 and not got[2].any()
    assert 0 < got[0].sum() < valid[0].sum()  # some suppressed, some kept


def test_no_groups_and_empty_groups():
    assert greedy_keep(torch.zeros(0, 7, 4), torch.zeros(0, 7, dtype=torch.bool), 0.5).shape \
        == (0, 7)
    assert greedy_keep(torch.zeros(3, 0, 4), torch.zeros(3, 0, dtype=torch.bool), 0.5).shape \
        == (3, 0)


def test_tracing_by_shape_passes_through_it_on_cuda():
    with FakeTensorMode():
        boxes = torch.empty(6, 1000, 4, device="cuda")
        keep = greedy_keep(boxes, torch.empty(6, 1000, dtype=torch.bool, device="cuda"), 0.7)
    assert keep.shape == (6, 1000) and keep.dtype == torch.bool and keep.device.type == "cuda"


def test_the_gpu_kernel_keeps_what_torchvision_keeps():
    """The Triton kernel CUDA runs, run on the CPU by Triton's interpreter."""
    pytest.importorskip("triton")
    script = textwrap.dedent("""
        import torch
        from drivevision.ops import nms_kernel
        from tests.test_ops import groups, torchvision_keep

        for seed, threshold in [(0, 0.5), (1, 0.7), (3, 0.0), (4, 1.0)]:
            boxes, valid = groups(seed, count=4, size=130)
            keep = torch.full(valid.shape, 7, dtype=torch.uint8)
            nms_kernel.greedy_keep(boxes, valid.to(torch.uint8), threshold, keep)
            want = torchvision_keep(boxes, valid, threshold)
            assert torch.equal(keep.bool(), want), (seed, (keep.bool() != want).sum())
            assert set(keep.unique().tolist()) <= {0, 1}
        print("same")
    """)
    env = dict(os.environ, TRITON_INTERPRET="1", PYTHONPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "same"


@pytest.mark.gpu
@pytest.mark.parametrize("seed, threshold", [(0, 0.5), (1, 0.7)])
def test_on_cuda_it_keeps_what_torchvision_keeps(seed, threshold):
    boxes, valid = groups(seed, count=40, size=1000)
    want = torchvision_keep(boxes, valid, threshold)
    for device in [f"cuda:{i}" for i in range(min(2, torch.cuda.device_count()))]:
        got = greedy_keep(boxes.to(device), valid.to(device), threshold)  # not the current one
        assert got.device == torch.device(device) and torch.equal(got.cpu(), want)


@pytest.mark.parametrize("capability", [90, 87])  # H100/H200, Jetson Orin
def test_the_gpu_kernel_compiles_for_real_gpus_without_one(capability):
    """Triton compiles the kernel ahead of time for a GPU it does not have (the interpreter
    above checks no types): to PTX and through ptxas to a cubin, its IoU with an IEEE
    division and no fused multiply-add (so it rounds as torchvision's CPU NMS does)."""
    triton = pytest.importorskip("triton")
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from drivevision.ops import nms_kernel

    signature = {"boxes": "*fp32", "valid": "*u8", "keep": "*u8", "m": "i32",
                 "iou_threshold": "fp32", "BLOCK": "constexpr"}
    source = ASTSource(fn=nms_kernel._greedy_keep, signature=signature,
                       constexprs={(5,): 1024})
    compiled = triton.compile(source, target=GPUTarget("cuda", capability, 32),
                              options={"num_warps": 4, "enable_fp_fusion": False})
    ptx = compiled.asm["ptx"]
    assert f".target sm_{capability}" in ptx and len(compiled.asm["cubin"]) > 1000
    assert "div.rn.f32" in ptx and "div.full.f32" not in ptx and "fma.rn.f32" not in ptx
