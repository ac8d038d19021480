"""Commands print our own lines, not torch's notes on what it did not find."""

import os
import subprocess
import sys

CODE = """
import sys
import drivevision.cli.bench as bench

def cmd_bench(args):  # stands in for what torch.compile and the ONNX export import
    import torch.utils.cpp_extension
    return 0

bench.cmd_bench = cmd_bench
from drivevision.cli import main
sys.exit(main(["bench"]))
"""


def test_no_cuda_runtime_note_from_torch_when_cuda_home_exists_without_a_gpu(tmp_path):
    env = {"CUDA_HOME": str(tmp_path), "CUDA_VISIBLE_DEVICES": "", "PATH": "/usr/bin:/bin",
           "PYTHONPATH": os.environ["PYTHONPATH"]}  # this checkout (tests/cli/conftest.py)
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "No CUDA runtime" not in proc.stderr and proc.stderr == ""


def test_choosing_the_int8_engine_prints_nothing_of_torchao_import():
    code = ("import logging, sys; logging.basicConfig()\n"
            "from drivevision import engines\n"
            "from drivevision.engines.hardware import CpuFeatures\n"
            "amx = CpuFeatures('a CPU with AMX-INT8', frozenset({'amx_int8'}))\n"
            "print(engines.pick_int8(amx)[0])")  # imports torchao on any CPU
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ}, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in ("compiled", "onnx") and proc.stderr == ""
