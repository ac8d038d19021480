"""DriveVision: real-time object detection on driving video.

    from drivevision import Detector, DetectorConfig, detect_video
"""

from __future__ import annotations

import importlib

from drivevision.config import DetectorConfig, PipelineConfig
from drivevision.detections import Detections

__version__ = "0.1.0"

# torch-heavy names load on first use, so `import drivevision` stays light
_LAZY = {"Detector": "drivevision.detector", "detect_video": "drivevision.pipeline.runner",
         "open_source": "drivevision.io.sources", "annotate": "drivevision.render",
         "load_model": "drivevision.model"}

__all__ = ["Detections", "DetectorConfig", "PipelineConfig", "__version__", *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'drivevision' has no attribute {name!r}")
