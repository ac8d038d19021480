"""TensorRT for RTX, which builds for RTX GPUs only, on another GPU: the Python API's refusal
names the engine keyword, the commands' the --engine option (before the model loads)."""

from __future__ import annotations

import pytest
import torch

from drivevision.engines import create_engine

GPU = torch.device("cuda")


def rtx_on_an_h100(monkeypatch):
    """TensorRT for RTX (which builds for RTX GPUs only) as the TensorRT installed, and an
    H100 as the GPU torch sees; nothing runs on it."""
    from types import SimpleNamespace

    from drivevision.engines import tensorrt, trt_build

    rtx = SimpleNamespace(__name__="tensorrt_rtx", __version__="1.0",
                          ComputeCapability=SimpleNamespace(SM89=89))
    for module in (trt_build, tensorrt):
        monkeypatch.setattr(module, "import_tensorrt", lambda: rtx)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda d=None: (9, 0))
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "NVIDIA H100")


RTX_REFUSAL = ("TensorRT for RTX 1.0 does not support NVIDIA H100 (compute capability 9.0); "
               "install TensorRT, or use {}")


def test_tensorrt_for_rtx_on_an_h100_is_refused_naming_the_keyword(monkeypatch, tiny_loaded):
    """What the Detector's engine raises (Detector(engine="tensorrt", device="cuda")); the
    commands name --engine, before the model loads."""
    rtx_on_an_h100(monkeypatch)
    with pytest.raises(ValueError) as refused:
        create_engine("tensorrt", tiny_loaded, device=GPU, precision="fp16")
    assert str(refused.value) == RTX_REFUSAL.format("engine='compiled'")


def test_tensorrt_for_rtx_on_an_h100_is_refused_by_the_commands_naming_the_option(
        monkeypatch, capsys):
    from pathlib import Path

    from drivevision.cli import main
    from drivevision.cli.settings import why_not_here

    rtx_on_an_h100(monkeypatch)
    assets = Path(__file__).parents[2] / "assets"
    code = main(["detect", str(assets / "sample.mp4"), "--no-save", "--weights",
                 str(assets / "tiny-fpn-synthetic.pt"), "--device", "cuda", "--engine",
                 "tensorrt", "--precision", "fp16"])
    err = capsys.readouterr().err.strip().splitlines()
    said = RTX_REFUSAL.format("--engine compiled")
    assert code == 2 and err == [f"drivevision: error: {said}"]
    assert why_not_here("tensorrt", "fp16", "cuda") == said  # eval and bench skip it for this
