"""scripts/avx2_only.sh, the benchmark aid that shows a newer x86 CPU to a command as an
AVX2-only one: the libraries inside see no AVX-512, AMX, VNNI or bf16, and a real crash
still reaches the program's own handler."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).parents[1] / "scripts" / "avx2_only.sh"

pytestmark = pytest.mark.skipif(
    "cpuid_fault" not in Path("/proc/cpuinfo").read_text() or shutil.which("cc") is None,
    reason="needs CPUID faulting (x86 Linux) and a C compiler")


def run(tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {"PATH": "/usr/bin:/bin", "XDG_CACHE_HOME": str(tmp_path), "HOME": str(tmp_path)}
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, env=env,
                          timeout=120)


def test_libraries_see_an_avx2_only_cpu(tmp_path):
    probe = ("import torch, onnxruntime; print(torch.backends.cpu.get_cpu_capability(), "
             "torch.ops.mkldnn._is_mkldnn_bf16_supported())")
    done = run(tmp_path, sys.executable, "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AVX2", "False"]
    assert (tmp_path / "drivevision" / "avx2_only.so").is_file()


def test_drivevision_sees_the_cpu_as_the_libraries_do(tmp_path):
    """Its feature line and ``auto``'s precision follow CPUID, not /proc/cpuinfo."""
    probe = ("import torch; from drivevision.engines.hardware import cpu_features, "
             "pick_precision; print(*cpu_features().names(), "
             "pick_precision(torch.device('cpu'))[0])")
    done = run(tmp_path, sys.executable, "-c", probe)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["AVX2", "fp32"]


def test_a_real_crash_still_reaches_the_programs_own_handler(tmp_path):
    crash = "import ctypes; ctypes.string_at(0)"
    done = run(tmp_path, sys.executable, "-X", "faulthandler", "-c", crash)
    assert done.returncode == -11  # SIGSEGV, not a hang and not a swallowed fault
    assert "Fatal Python error: Segmentation fault" in done.stderr
