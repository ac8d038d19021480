"""Calibrated INT8 on the compiled engine (PT2E, x86 Inductor quantizer): detections close
to fp32 on the trained demo model, the activation ranges cached by the calibration set's
digest, batch-norm folding exact, and int8 refused where it cannot run."""

from __future__ import annotations

import copy

import pytest
import torch

from drivevision.detector import Detector
from drivevision.engines.compiled import CompiledEngine
from tests.engines.int8_helpers import assert_int8_matches_fp32, generated

pytest.importorskip("torchao")
pt2e = pytest.importorskip("drivevision.engines.pt2e")


@pytest.mark.slow
def test_compiled_int8_detections_match_fp32_on_the_trained_model(loaded):
    """Every confident fp32 detection has an int8 one of the same class at IoU >= 0.7, and
    the counts agree, on held-out scenes (calibrated on other drives)."""
    fp32 = Detector(loaded, engine="torch", device="cpu", conf=0.5, classes="all")
    int8 = Detector(loaded, engine="compiled", device="cpu", precision="int8", conf=0.5,
                    classes="all", calib=generated(31))
    assert_int8_matches_fp32(fp32, int8)


@pytest.mark.slow
def test_calibration_is_cached_by_the_sets_digest(loaded):
    """A second engine with the same set calibrates nothing and quantizes to the same
    scales; another set calibrates again, into another file."""
    calls: list = []
    folder = pt2e.engine_cache.cache_root() / "int8"
    first = pt2e.quantized_pieces(loaded, generated(41, 3, calls))
    files = set(folder.glob("*-pt2e-ranges-*.pt"))
    again = pt2e.quantized_pieces(loaded, generated(41, 3, calls))
    assert calls == [41]  # once for both pieces (dense A, dense B), then cache hits
    assert set(folder.glob("*-pt2e-ranges-*.pt")) == files
    x = torch.rand(1, 3, 224, 384).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        assert all(torch.equal(a, b) for a, b in zip(_flat(first["dense_a"](x)),
                                                    _flat(again["dense_a"](x))))
    pt2e.quantized_pieces(loaded, generated(42, 3, calls))
    assert calls == [41, 42]
    assert len(set(folder.glob("*-pt2e-ranges-*.pt")) - files) == 2


def _flat(out) -> list[torch.Tensor]:
    return [t for group in out for t in group]


def test_folding_batch_norms_keeps_the_outputs(loaded):
    from drivevision.engines.torch import DenseModules

    dense = DenseModules(copy.deepcopy(loaded.module)).eval()
    folded = pt2e.fold_batch_norms(DenseModules(copy.deepcopy(loaded.module)).eval())
    assert not any(type(m).__name__ in ("FrozenBatchNorm2d", "BatchNorm2d")
                   for m in folded.modules())
    x = torch.rand(1, 3, 224, 384)
    with torch.no_grad():
        for a, b in zip(_flat(dense.dense_a(x)), _flat(folded.dense_a(x))):
            torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-4)


def test_int8_needs_a_calibration_set(loaded):
    with pytest.raises(ValueError, match="--calib"):
        CompiledEngine(loaded, device=torch.device("cpu"), precision="int8")


def test_compiled_int8_is_cpu_only(loaded):
    with pytest.raises(ValueError, match="CPU"):
        CompiledEngine(loaded, device=torch.device("cuda"), precision="int8",
                       calib=generated(1))


@pytest.mark.slow
def test_every_convolution_of_dense_a_runs_in_int8(loaded):
    """The RPN head, shared by the FPN levels, gets a copy per level: with one shared set of
    weights the quantizer left its convolutions float (oneDNN's float kernels, about 40% of
    int8 dense A at 800x1344); now none of dense A's convolutions is a float one."""
    engine = CompiledEngine(loaded, device=torch.device("cpu"), precision="int8",
                            calib=generated(31))
    x = torch.rand(1, 3, 224, 384)
    engine.dense_a(x)  # compiles
    calls = engine._a.calls()  # what the compiled code calls
    assert sum(n for op, n in calls.items() if op.startswith("_qconv")) >= 10, calls
    float_convolutions = {"convolution", "mkldnn_convolution", "mkldnn__convolution_pointwise"}
    assert not calls.keys() & float_convolutions, calls
