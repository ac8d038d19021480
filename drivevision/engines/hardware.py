"""What this CPU runs fast, read at run time, and the precision ``auto`` picks from it.

The machines this runs on differ (an AMD EPYC with AVX2 only, a Xeon with AMX, a laptop),
so nothing is assumed: on Linux the instruction sets come from ``/proc/cpuinfo``'s flags,
each counting only where the libraries see it too (they read CPUID, which a hypervisor or
scripts/avx2_only.sh can make hide what /proc/cpuinfo lists; torch's reading of it is
asked), and AMX only when the kernel grants the process its tile state; other systems
read them from torch's reading of CPUID alone (an older torch without one: its vector
capability, which cannot see bf16 or VNNI).
"""

from __future__ import annotations

import functools
import platform
from dataclasses import dataclass
from pathlib import Path

from drivevision.config import setting
from drivevision.labels import counted

# cpuinfo flag -> the name users know, in the order they are printed (fastest first).
FEATURES = {
    "amx_bf16": "AMX-BF16",
    "amx_int8": "AMX-INT8",
    "avx512_bf16": "AVX512-BF16",
    "avx512_vnni": "AVX512-VNNI",
    "avx_vnni": "AVX-VNNI",
    "avx512f": "AVX512",
    "avx2": "AVX2",
}
BF16_FLAGS = ("amx_bf16", "avx512_bf16")
INT8_FLAGS = ("amx_int8", "avx512_vnni", "avx_vnni")
# How far (AP points) bf16's AP may be from fp32's on the generated evaluation clips for auto
# to pick bf16 (drivevision eval; docs/benchmarks.md has the figures, tests/evaluation checks
# every bf16 engine stays within it).
BF16_AP_TOLERANCE = 0.3


@dataclass(frozen=True)
class CpuFeatures:
    """The CPU's model name and which of ``FEATURES`` it has (cpuinfo flag names)."""

    model: str
    flags: frozenset[str]

    @property
    def bf16(self) -> bool:
        """bf16 arithmetic in hardware (AMX or AVX512-BF16), not emulated."""
        return any(f in self.flags for f in BF16_FLAGS)

    @property
    def int8(self) -> bool:
        """int8 dot products in hardware (AMX-INT8, AVX512-VNNI or AVX-VNNI)."""
        return any(f in self.flags for f in INT8_FLAGS)

    def names(self) -> list[str]:
        """The features found, as users know them, e.g. ["AMX-BF16", ..., "AVX2"]."""
        return [label for flag, label in FEATURES.items() if flag in self.flags]

    def describe(self) -> str:
        """One line: ``Intel(R) Xeon(R) Processor (AMX-BF16, ..., AVX2)``."""
        return f"{self.model} ({feature_list(self.names())})"


def feature_list(names: list[str]) -> str:
    """``names`` comma-separated, or which were looked for when there are none."""
    return ", ".join(names) or "none of " + ", ".join(FEATURES.values())


AMX_FLAGS = frozenset({"amx_bf16", "amx_int8", "amx_tile"})


def parse_cpuinfo(text: str, *, hidden: frozenset[str] = frozenset()) -> CpuFeatures:
    """The features of the first processor in ``/proc/cpuinfo`` text, less ``hidden`` (the
    flags this process cannot use, ``_unusable``)."""
    model, flags = "unknown CPU", set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model == "unknown CPU":
            model = value.strip()
        elif key == "flags":
            flags = set(value.split())
            break
    return CpuFeatures(model, frozenset(flags & FEATURES.keys() - hidden))


@functools.cache
def cpu_features() -> CpuFeatures:
    """This machine's CPU features (read once per process)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return _from_torch()
    return parse_cpuinfo(text, hidden=_unusable())


def _unusable() -> frozenset[str]:
    """The flags of ``FEATURES`` this process cannot use: those torch's reading of CPUID
    says it lacks, and the AMX ones when the kernel did not grant the process the tile state
    (AMX instructions would fault, so libraries do not use them). An older torch without
    these checks: none."""
    import torch

    seen = _torch_cpuid()
    hidden = {flag for flag, name in _TORCH_NAMES.items() if name in seen and not seen[name]}
    try:
        if not torch._C._cpu._init_amx():  # asks Linux for the AMX tile state
            hidden |= AMX_FLAGS
    except (AttributeError, RuntimeError):
        pass
    return frozenset(hidden)


# FEATURES' cpuinfo flags as torch.cpu.get_capabilities() names them
_TORCH_NAMES = {flag: "avx512_f" if flag == "avx512f" else flag for flag in FEATURES}


def _torch_cpuid() -> dict:
    """torch's reading of CPUID (flag -> bool, and the CPU's name); {} for an older torch."""
    import torch

    try:
        return dict(torch.cpu.get_capabilities())
    except (AttributeError, RuntimeError):
        return {}


def _from_torch() -> CpuFeatures:
    """Without /proc/cpuinfo (not Linux): torch's reading of CPUID, AMX only where usable;
    with an older torch that has none, its vector capability (no bf16/VNNI knowledge)."""
    import torch

    seen = _torch_cpuid()
    flags = {flag for flag, name in _TORCH_NAMES.items() if seen.get(name) is True}
    if flags:
        flags -= _unusable()
    else:
        capability = torch.backends.cpu.get_cpu_capability()
        flags = {"AVX512": {"avx512f", "avx2"}, "AVX2": {"avx2"}}.get(capability, set())
    name = seen.get("cpu_name")
    return CpuFeatures((name if isinstance(name, str) else None) or platform.processor()
                       or platform.machine() or "unknown CPU",
                       frozenset(flags))


def pick_precision(device, features: CpuFeatures | None = None,
                   engine: str = "auto") -> tuple[str, str]:
    """What ``--precision auto`` runs on ``device`` with ``engine``, and why.

    CUDA: fp16 (Tensor Cores; the precision every GPU deployment of this model uses). CPU:
    bf16 where the hardware has it (AMX or AVX512-BF16) — its AP on the evaluation clips is
    within ``BF16_AP_TOLERANCE`` of fp32 — else fp32, since emulated bf16 is slower than fp32;
    the onnx engine has no bf16 on the CPU, so fp32 there.
    """
    if getattr(device, "type", str(device)) == "cuda":
        return "fp16", "CUDA GPU: fp16 kernels"
    if engine == "onnx":
        return "fp32", "the onnx engine runs fp32 on the CPU (bf16: the torch or compiled engine)"
    features = features or cpu_features()
    if features.bf16:
        found = ", ".join(FEATURES[f] for f in BF16_FLAGS if f in features.flags)
        return "bf16", (f"bf16 in hardware ({found}); its AP on the evaluation clips is within "
                        f"{BF16_AP_TOLERANCE} AP points (AP x100) of fp32")
    return "fp32", "no bf16 hardware (AMX or AVX512-BF16): emulated bf16 is slower than fp32"


FP16_NEEDS_CUDA = "Expected fp16 on a CUDA device; on the CPU use bf16 or fp32"


def device_kind(device: str, *, option: str = "--device") -> str:
    """"cpu" or "cuda": where ``device`` ("auto", "cpu", "cuda" or "cuda:N") runs here,
    "auto" being CUDA when torch sees a GPU; ValueError for a malformed one or a GPU torch
    does not see, naming ``option``, the setting it came from: the command's ``--device``,
    or the Python API's ``device`` keyword (then worded ``device='cpu'``, as it is typed).
    Cheap: nothing is built, so commands ask it before the model loads."""
    import torch

    kind, colon, index = device.partition(":")
    if kind not in ("auto", "cpu", "cuda") or (colon and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"Expected {option} auto, cpu, cuda or cuda:N, but got {device!r}")
    if kind == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if kind == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"Expected a CUDA GPU for {setting(option, 'cuda')}, but torch sees "
                         f"none; use {setting(option, 'cpu')}")
    if colon and int(index) >= torch.cuda.device_count():
        count = torch.cuda.device_count()
        raise ValueError(f"Expected {option} cuda:N with N below {count} (torch sees "
                         f"{counted(count, 'GPU')}), but got {device}")
    return kind


def fp16_instead(engine: str, engine_option: str = "--engine",
                 calib_option: str = "--calib") -> str:
    """Why fp16 is refused on the CPU and what to run there instead, where ``engine`` has
    not bf16 and fp32, naming the settings: the commands' ``--engine`` and ``--calib``, or
    the Python API's ``engine`` and ``calib`` keywords (``engine='onnx'``, ``calib=``)."""
    if engine == "onnx":
        calib = calib_option if calib_option.startswith("--") else f"{calib_option}="
        return ("Expected fp16 on a CUDA device; on the CPU the onnx engine runs fp32, or int8 "
                f"with {calib}")
    if engine == "tensorrt":
        compiled = "compiled" if engine_option.startswith("--") else repr("compiled")
        return ("Expected fp16 on a CUDA device, as the tensorrt engine runs on CUDA only; on "
                f"the CPU use {setting(engine_option, 'onnx')} or {compiled}")
    return FP16_NEEDS_CUDA


def check_precision(precision: str, kind: str, engine: str = "auto", *,
                    engine_option: str = "--engine", calib_option: str = "--calib") -> None:
    """ValueError for a ``precision`` the device ``kind`` ("cpu" or "cuda") cannot run,
    saying what ``engine`` runs there instead (``fp16_instead``, naming the settings)."""
    if precision == "fp16" and kind != "cuda":
        raise ValueError(fp16_instead(engine, engine_option, calib_option))
