"""What the engine tests share: a cache folder per module (exported ONNX pieces, built
engines and calibrations never go to ~/.cache, and calibrating once serves every test of
the module that reuses the set) and the demo model."""

from pathlib import Path

import pytest

from drivevision.model import load_model

DEMO_MODEL = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"


@pytest.fixture(scope="module", autouse=True)
def _engine_cache(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("DRIVEVISION_CACHE", str(tmp_path_factory.mktemp("engine-cache")))
    yield
    mp.undo()


@pytest.fixture(scope="module")
def loaded():
    """The demo model (tiny-fpn trained on generated scenes)."""
    return load_model("tiny-fpn", DEMO_MODEL)
