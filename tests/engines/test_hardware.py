"""CPU features found at run time and what ``--precision auto`` makes of them: bf16 only
where the hardware has it, on every kind of CPU this project runs on."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from drivevision.detector import Detector
from drivevision.engines import hardware
from drivevision.engines.hardware import parse_cpuinfo, pick_precision

CPU = torch.device("cpu")


def cpuinfo(model: str, flags: str) -> str:
    """/proc/cpuinfo text of a 2-processor machine, as Linux writes it."""
    one = f"processor\t: {{}}\nvendor_id\t: x\nmodel name\t: {model}\nflags\t\t: {flags}\n\n"
    return one.format(0) + one.format(1)


EPYC = cpuinfo("AMD EPYC 7B13", "fpu sse2 avx avx2 fma bmi2")
ZEN4 = cpuinfo("AMD EPYC 9B14", "avx2 avx512f avx512_bf16 avx512_vnni")
SAPPHIRE = cpuinfo("Intel(R) Xeon(R) Platinum 8481C",
                   "avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8 avx_vnni")
ALDER = cpuinfo("12th Gen Intel(R) Core(TM) i7-1260P", "avx2 avx_vnni")


@pytest.mark.parametrize("text, names, bf16, int8", [
    (EPYC, ["AVX2"], False, False),
    (ZEN4, ["AVX512-BF16", "AVX512-VNNI", "AVX512", "AVX2"], True, True),
    (SAPPHIRE, ["AMX-BF16", "AMX-INT8", "AVX512-BF16", "AVX512-VNNI", "AVX-VNNI", "AVX512",
                "AVX2"], True, True),
    (ALDER, ["AVX-VNNI", "AVX2"], False, True),
])
def test_features_are_read_from_cpuinfo(text, names, bf16, int8):
    features = parse_cpuinfo(text)
    assert features.names() == names
    assert (features.bf16, features.int8) == (bf16, int8)
    assert features.describe().startswith(features.model) and names[0] in features.describe()


def test_amx_the_kernel_did_not_grant_does_not_count(monkeypatch):
    monkeypatch.setattr(torch._C._cpu, "_init_amx", lambda: False)
    hidden = hardware._unusable()
    assert hidden >= hardware.AMX_FLAGS
    features = parse_cpuinfo(cpuinfo("Xeon", "avx2 amx_bf16 amx_tile amx_int8"), hidden=hidden)
    assert features.names() == ["AVX2"] and not features.bf16 and not features.int8


def test_a_flag_the_libraries_do_not_see_in_cpuid_does_not_count(monkeypatch):
    """/proc/cpuinfo lists AVX512-BF16 but CPUID, as torch reads it, hides it (a hypervisor's
    mask, scripts/avx2_only.sh): no bf16 for auto; keys torch does not know change nothing."""
    seen = {"avx2": True, "avx512_f": True, "avx512_bf16": False, "avx512_vnni": True}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: seen)
    monkeypatch.setattr(torch._C._cpu, "_init_amx", lambda: True)
    hidden = hardware._unusable()
    assert hidden == {"avx512_bf16"}
    features = parse_cpuinfo(ZEN4, hidden=hidden)
    assert features.names() == ["AVX512-VNNI", "AVX512", "AVX2"] and not features.bf16
    assert pick_precision(CPU, features)[0] == "fp32"


def _no_cpuinfo(monkeypatch):
    """As on Windows or macOS: /proc/cpuinfo cannot be read."""
    def missing(self, *args, **kwargs):
        raise FileNotFoundError(self)
    monkeypatch.setattr(hardware.Path, "read_text", missing)


def test_without_cpuinfo_the_features_come_from_torchs_reading_of_cpuid(monkeypatch):
    _no_cpuinfo(monkeypatch)
    seen = {"cpu_name": "Xeon W", "avx2": True, "avx512_f": True, "avx512_bf16": True,
            "avx512_vnni": True, "avx_vnni": False, "amx_bf16": True, "amx_int8": True}
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: seen)
    monkeypatch.setattr(torch._C._cpu, "_init_amx", lambda: False)  # AMX would fault here
    features = hardware.cpu_features.__wrapped__()
    assert features.model == "Xeon W"
    assert features.names() == ["AVX512-BF16", "AVX512-VNNI", "AVX512", "AVX2"]
    assert features.bf16 and features.int8
    assert pick_precision(CPU, features)[0] == "bf16"


def test_without_cpuinfo_an_older_torch_gives_its_vector_capability(monkeypatch):
    _no_cpuinfo(monkeypatch)
    monkeypatch.delattr(torch.cpu, "get_capabilities")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    features = hardware.cpu_features.__wrapped__()
    assert features.names() == ["AVX2"] and not features.bf16 and not features.int8
    assert pick_precision(CPU, features)[0] == "fp32"


def test_a_cpu_with_none_of_them_says_what_was_looked_for():
    features = parse_cpuinfo(cpuinfo("Old", "fpu sse2"))
    assert features.names() == [] and "none of AMX-BF16" in features.describe()


@pytest.mark.parametrize("text, precision, words", [
    (EPYC, "fp32", "no bf16 hardware"),
    (ALDER, "fp32", "emulated bf16 is slower"),
    (ZEN4, "bf16", "AVX512-BF16"),
    (SAPPHIRE, "bf16", "AMX-BF16"),
])
def test_auto_precision_is_bf16_only_where_the_hardware_has_it(text, precision, words):
    picked, reason = pick_precision(CPU, parse_cpuinfo(text))
    assert picked == precision and words in reason


def test_auto_precision_on_cuda_is_fp16():
    assert pick_precision(torch.device("cuda"), parse_cpuinfo(EPYC))[0] == "fp16"


def test_this_machines_features_are_its_cpuinfo_flags():
    text = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else None
    if text is None:
        pytest.skip("no /proc/cpuinfo here")
    flags = set(next(ln for ln in text.splitlines() if ln.startswith("flags")).split())
    found = hardware.cpu_features()
    assert found.flags <= flags & hardware.FEATURES.keys()
    assert found.flags >= flags & (hardware.FEATURES.keys() - {"amx_bf16", "amx_int8"})


@pytest.mark.parametrize("text, precision, engine", [(EPYC, "fp32", "onnx"),
                                                     (SAPPHIRE, "bf16", "compiled")])
def test_the_detector_runs_what_auto_picks_and_says_why(tiny_loaded, monkeypatch, text,
                                                        precision, engine):
    pytest.importorskip("onnxruntime")
    monkeypatch.setattr(hardware, "cpu_features", lambda: parse_cpuinfo(text))
    detector = Detector(tiny_loaded, engine="auto", device="cpu", precision="auto")
    assert (detector.engine.name, detector.precision) == (engine, precision)
    line = detector.describe()
    assert line.startswith(f"engine {engine} {precision} on cpu, {parse_cpuinfo(text).model}")
    assert f"precision auto: {pick_precision(CPU, parse_cpuinfo(text))[1]}" in line
    assert "engine auto: CPU" in line


def test_a_named_precision_is_kept_and_gives_no_auto_reason(tiny_loaded, monkeypatch):
    monkeypatch.setattr(hardware, "cpu_features", lambda: parse_cpuinfo(SAPPHIRE))
    detector = Detector(tiny_loaded, device="cpu", precision="fp32")
    assert detector.precision == "fp32" and detector.precision_reason is None
    assert "auto" not in detector.describe()


def test_auto_int8_is_compiled_where_amx_int8_and_torchao_are_and_onnx_elsewhere(
        monkeypatch):
    from drivevision import engines

    monkeypatch.setattr(engines, "_importable", lambda *names: True)
    assert engines.pick_int8(parse_cpuinfo(SAPPHIRE))[0] == "compiled"
    for text in (EPYC, ZEN4, ALDER):  # VNNI and AVX512-BF16 without AMX: onnx is faster
        name, reason = engines.pick_int8(parse_cpuinfo(text))
        assert name == "onnx" and "no AMX-INT8" in reason
    monkeypatch.setattr(engines, "_importable", lambda *names: False)
    name, reason = engines.pick_int8(parse_cpuinfo(SAPPHIRE))
    assert name == "onnx" and "torchao" in reason


def test_auto_precision_with_the_onnx_engine_is_fp32_on_a_bf16_cpu():
    cpu = torch.device("cpu")
    precision, reason = pick_precision(cpu, parse_cpuinfo(SAPPHIRE), engine="onnx")
    assert precision == "fp32" and "onnx" in reason
    assert pick_precision(cpu, parse_cpuinfo(SAPPHIRE), engine="compiled")[0] == "bf16"


@pytest.mark.parametrize("device, message", [
    ("cuda:1", "Expected --device cuda:N with N below 1 (torch sees 1 GPU), but got cuda:1"),
    ("cuda:", "Expected --device auto, cpu, cuda or cuda:N, but got 'cuda:'"),
    ("cuda0", "Expected --device auto, cpu, cuda or cuda:N, but got 'cuda0'"),
    ("cpu:0", "Expected --device auto, cpu, cuda or cuda:N, but got 'cpu:0'"),
])
def test_a_gpu_this_machine_lacks_is_named_before_anything_is_built(monkeypatch, device,
                                                                     message):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert hardware.device_kind("cuda:0") == hardware.device_kind("auto") == "cuda"
    with pytest.raises(ValueError) as refused:
        hardware.device_kind(device)
    assert str(refused.value) == message


def test_the_bf16_reason_gives_the_ap_tolerance_in_points_not_in_eval_s_0_to_1_scale():
    """eval --pred prints AP in 0..1 (0.393): "within 0.3 of fp32" would read as a loss of
    most of it; the tolerance is 0.3 AP points, the scale of eval's engines table."""
    reason = pick_precision(CPU, parse_cpuinfo(ZEN4))[1]
    assert reason.endswith(f"within {hardware.BF16_AP_TOLERANCE} AP points (AP x100) of fp32")
