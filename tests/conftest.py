"""Shared fixtures: small models with weights made here (random), generated clips, gpu marker.

Nothing here downloads. Models are the tiny ResNet-FPN Faster R-CNN unless a test needs the
real ResNet-50-FPN structure.
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from drivevision.labels import COCO_NAMES
from drivevision.model import LoadedModel, build_model, save_checkpoint


def pytest_configure(config):
    """Ctrl-C raises KeyboardInterrupt, as in a terminal, for the tests of what Ctrl-C does:
    a shell without job control (a script's ``pytest &``) starts background commands with
    SIGINT ignored, and Python then keeps it ignored, as the programs under test rightly do
    for a job no Ctrl-C is meant to reach."""
    if (threading.current_thread() is threading.main_thread()
            and signal.getsignal(signal.SIGINT) is signal.SIG_IGN):
        signal.signal(signal.SIGINT, signal.default_int_handler)


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_loaded() -> LoadedModel:
    """Tiny ResNet-FPN Faster R-CNN, 91 COCO classes, random weights (seed 0).

    Random weights score every class near 1/91, under torchvision's default 0.05 floor, so
    the floor is 0 here: the model then returns its top 100 boxes, which tests can compare.
    """
    torch.manual_seed(0)
    # 100 proposals x 91 classes keeps NMS quick
    model = build_model("tiny-fpn", num_classes=91, rpn_post_nms_top_n_test=100)
    model.roi_heads.score_thresh = 0.0
    return LoadedModel(model, "tiny-fpn", COCO_NAMES, "seed0")


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, tiny_loaded) -> str:
    path = tmp_path_factory.mktemp("weights") / "tiny.pt"
    save_checkpoint(tiny_loaded, path)
    return str(path)


@pytest.fixture(scope="session")
def clip_path(tmp_path_factory) -> str:
    """A generated dashcam-like H.264 MP4: 12 frames, 160x96, 10 fps."""
    from drivevision.synthetic import write_clip

    path = tmp_path_factory.mktemp("clips") / "clip.mp4"
    write_clip(path, 12, width=160, height=96, fps=10.0, seed=1)
    return str(path)


# Threads that outlive a test by design: tqdm's progress-bar monitor (one per process, started
# by the first bar) and pytest-timeout's timer when it runs with --timeout-method=thread.
# Qt's own threads are not Python threads and never show up here.
HARMLESS_THREADS = ("tqdm_monitor", "pytest_timeout ")


@pytest.fixture(autouse=True)
def no_thread_leak():
    """Fail every test that leaves a Python thread running after it ends (5 s to finish)."""
    before = set(threading.enumerate())
    yield
    compiling = sys.modules.get("torch._inductor.async_compile")
    if compiling is not None:  # torch.compile's worker pools are torch's, kept for the process
        compiling.shutdown_compile_workers()  # the subprocess pools
        threads = compiling.AsyncCompile.pool  # the thread pool, cached apart from those
        if threads.cache_info().currsize:
            threads().shutdown(wait=True)
            threads.cache_clear()
    deadline = time.monotonic() + 5.0
    while True:
        extra = [t for t in threading.enumerate()
                 if t not in before and t.is_alive() and not t.name.startswith(HARMLESS_THREADS)]
        if not extra or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    if extra:
        named = ", ".join(f"{t.name!r} ({type(t).__name__}, target "
                          f"{getattr(getattr(t, '_target', None), '__qualname__', '?')})"
                          for t in extra)
        pytest.fail(f"{len(extra)} thread(s) still running 5 s after the test ended: {named}",
                    pytrace=False)


def random_frame(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


HOLD = ("import sys; from drivevision.io.claims import claim_folder; "
        "claim = claim_folder(sys.argv[1]); print('held', flush=True); sys.stdin.read()")


@pytest.fixture
def held_by_another_run():
    """``hold(folder)``: another process claims ``folder`` as a run writing into it does,
    until the test ends."""
    import subprocess

    holders = []

    def hold(folder: Path) -> int:
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE)
        holders.append(proc)
        assert proc.stdout.readline() == "held\n"
        return proc.pid

    yield hold
    for proc in holders:
        proc.stdin.close()
        proc.wait(timeout=30)
