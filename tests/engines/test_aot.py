"""The compiled engine's pieces on the CPU, compiled ahead of time and kept in the engine
cache: a later engine loads them (nothing quantized or compiled) and computes the same; a
package runs with its weights aligned as oneDNN wants them, and is never used on a CPU it
was not built for."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from drivevision.detector import Detector
from drivevision.engines import aot
from drivevision.engines.compiled import CompiledEngine
from drivevision.engines.hardware import CpuFeatures
from drivevision.synthetic import SceneGenerator
from tests.engines.int8_helpers import generated

CPU = torch.device("cpu")
BF16 = pytest.mark.skipif(not torch.ops.mkldnn._is_mkldnn_bf16_supported(),
                          reason="oneDNN has no bf16 here")


def _frames() -> list[np.ndarray]:
    gen = SceneGenerator(384, 216, seed=99)
    return [gen.frame(i).image for i in (5, 40)]


def _no_compiling(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("compiled again although the package is in the cache")
    monkeypatch.setattr(torch._inductor, "aoti_compile_and_package", refuse)


def _pt2e():
    pytest.importorskip("torchao")
    return pytest.importorskip("drivevision.engines.pt2e")


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["int8", "fp32", pytest.param("bf16", marks=BF16)])
def test_a_later_engine_loads_the_packages_and_finds_the_same(loaded, precision, tmp_path,
                                                              monkeypatch, capsys):
    """The first engine compiles and says where it keeps the result; the second compiles
    nothing (int8: quantizes nothing either), says nothing of compiling, and finds the
    first's detections, bit for bit. fp32 and bf16 (what ``auto`` runs on a CPU with AMX)
    are packaged as int8 is."""
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))
    calib = generated(51) if precision == "int8" else None
    pt2e = _pt2e() if precision == "int8" else None

    def detector() -> Detector:
        return Detector(loaded, engine="compiled", device="cpu", precision=precision,
                        conf=0.5, classes="all", calib=calib, progress=True)

    first = detector()
    want = [first(frame) for frame in _frames()]
    told = capsys.readouterr().err
    assert f"Compiling tiny-fpn's dense_a for input [1, 3, 224, 384] (can take a minute or more, " \
           f"once: kept in {tmp_path / 'compiled'} for later runs)" in told
    assert "Compiling tiny-fpn's dense_b for input [N, 64, 7, 7]" in told

    if pt2e is not None:
        def refuse(*args, **kwargs):
            raise AssertionError("quantized again although the packages are in the cache")
        monkeypatch.setattr(pt2e, "quantized_pieces", refuse)
    _no_compiling(monkeypatch)
    later = detector()
    got = [later(frame) for frame in _frames()]
    told = capsys.readouterr().err
    assert "Compiling" not in told
    # and says it loaded them, from where, one line each as the compilations were said
    loaded_lines = [line for line in told.splitlines() if "from the cache" in line]
    assert len(loaded_lines) == 2
    assert loaded_lines[0].startswith("Loaded tiny-fpn's compiled dense_a for input "
                                      f"[1, 3, 224, 384] from the cache ({tmp_path / 'compiled'}")
    assert loaded_lines[1].startswith("Loaded tiny-fpn's compiled dense_b for input "
                                      "[N, 64, 7, 7] from the cache")
    assert sum(len(d) for d in want) >= 2
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.xyxy, w.xyxy)
        np.testing.assert_array_equal(g.scores, w.scores)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["fp32", pytest.param("bf16", marks=BF16)])
def test_a_package_runs_on_weights_aligned_to_cache_lines(loaded, precision):
    """AOTInductor's loader leaves every weight 16 bytes off a 64-byte line (its one block
    comes from malloc), which made oneDNN's AMX convolutions up to twice as slow: the
    engine's packages run on copies aligned to 64 bytes, the loader's block freed, and
    compute what the loader's own model computes."""
    engine = CompiledEngine(loaded, device=CPU, precision=precision)
    images = torch.rand(1, 3, 224, 384)
    engine.dense_a(images)
    (path,) = engine._a.paths.values()
    (package,) = engine._a.packages.values()
    in_use = package._runner.extract_constants_map(False)  # what the model computes with
    weights = [t for t in in_use.values() if t.layout == torch.strided]
    assert len(in_use) >= 20 and weights
    assert all(t.data_ptr() % 64 == 0 for t in weights)
    x = images.to(engine.dtype).contiguous(memory_format=torch.channels_last)
    theirs = torch.utils._pytree.tree_leaves(torch._inductor.aoti_load_package(str(path))(x))
    ours = torch.utils._pytree.tree_leaves(package(x))
    assert len(ours) == len(theirs) >= 3
    for a, b in zip(ours, theirs):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_a_torch_whose_private_runner_api_differs_runs_the_packages_through_its_own_loader(
        loaded, monkeypatch, caplog):
    """The aligned loading uses torch's private runner API; a torch where it differs (here:
    a runner without its constant-buffer methods) still runs the cached packages, through
    torch's public loader, computing the same, and says why they may run slower."""
    images = torch.rand(1, 3, 224, 384)
    want = CompiledEngine(loaded, device=CPU, precision="fp32").dense_a(images)

    class OtherRunner:  # loads, but has none of the methods Package calls
        def __init__(self, *args):
            pass

    monkeypatch.setattr(torch._C._aoti, "AOTIModelContainerRunnerCpu", OtherRunner)
    _no_compiling(monkeypatch)
    aot._unaligned.cache_clear()
    engine = CompiledEngine(loaded, device=CPU, precision="fp32")
    got = engine.dense_a(images)
    (package,) = engine._a.packages.values()
    assert not isinstance(package, aot.Package)
    leaves = torch.utils._pytree.tree_leaves
    assert len(leaves(got)) == len(leaves(want)) >= 3
    assert all(torch.equal(a, b) for a, b in zip(leaves(got), leaves(want)))
    assert "own loader" in caplog.text and "unaligned" in caplog.text


@pytest.mark.slow
def test_dense_b_takes_any_number_of_rois(loaded):
    """One package for every RoI count: a single RoI (below what the package takes, so
    padded) gets what it gets among others, and 500 run too."""
    _pt2e()
    engine = CompiledEngine(loaded, device=CPU, precision="int8", calib=generated(51))
    pooled = torch.rand(3, 64, 7, 7)
    together = engine.dense_b(pooled)
    for i in range(3):
        alone = engine.dense_b(pooled[i:i + 1])
        assert [t.shape[0] for t in alone] == [1, 1]
        for a, t in zip(alone, together):
            torch.testing.assert_close(a[0], t[i], rtol=1e-3, atol=1e-3)
    assert [t.shape[0] for t in engine.dense_b(torch.rand(500, 64, 7, 7))] == [500, 500]
    assert len(engine._b.packages) == 1


def test_a_package_is_keyed_by_the_cpu_it_was_built_for(monkeypatch):
    """A package built where AMX is holds AMX code: on a CPU without it (another machine
    sharing the cache folder) the key differs, so it is built anew instead of run."""
    def key(flags: set[str]) -> str:
        monkeypatch.setattr(aot, "cpu_features", lambda: CpuFeatures("cpu", frozenset(flags)))
        piece = aot.AheadOfTime("dense_a", lambda: None, {"model": "m"},
                                context=lambda: None)
        return piece.path((1, 3, 224, 384))[0].name

    amx = key({"avx2", "avx512f", "amx_tile", "amx_bf16"})
    assert key({"avx2"}) != amx
    assert key({"avx2", "avx512f", "amx_tile", "amx_bf16"}) == amx


@pytest.mark.slow
def test_a_package_is_built_for_the_strides_it_is_given(tmp_path, monkeypatch):
    """A package computes on the strides it was built for without checking them (given a
    contiguous input, one built for channels-last gets 99.9% of its outputs wrong): an
    input laid out otherwise gets a package of its own, and both compute what the module
    does."""
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path))

    class Shift(torch.nn.Module):  # Inductor's own kernel, which indexes by strides
        def forward(self, x):
            return x.sin() + x[:, :1]

    module = Shift()
    piece = aot.AheadOfTime("dense_a", lambda: module, {"model": "shift"},
                            context=contextlib.nullcontext)
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        want = module(x)
        for layout in (torch.channels_last, torch.contiguous_format):
            torch.testing.assert_close(piece(x.contiguous(memory_format=layout)), want)
    assert len(piece.packages) == 2 and len(set(piece.paths.values())) == 2
