"""DriveVision: real-time object detection on driving video.

    from drivevision import Detector, DetectorConfig, detect_video
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# every name loads on first use, so `import drivevision` (and the command's start) stays light
_LAZY = {"Detections": "drivevision.detections", "DetectorConfig": "drivevision.config",
         "PipelineConfig": "drivevision.config", "Detector": "drivevision.detector",
         "detect_video": "drivevision.pipeline.runner", "open_source": "drivevision.io.sources",
         "annotate": "drivevision.render", "load_model": "drivevision.model"}

__all__ = ["__version__", *_LAZY]


def __dir__() -> list[str]:
    return sorted(__all__)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'drivevision' has no attribute {name!r}")
