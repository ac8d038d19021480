"""The one pipeline: N sources -> per-source policy -> batcher -> detector -> per-source
stages -> render -> sinks, on threads that cannot hang (``threads``), with what it accepts
checked first (``checks``), each frame's ``result`` and the steps that fill it in, per-source
``stats``, signals as stop requests (``signals``) and ``detect_video`` (``runner``) on top.

``Pipeline``, ``Result`` and ``Stage`` load on first use, so ``signals`` stays light.
"""

from __future__ import annotations

import importlib

_LAZY = {"Pipeline": "drivevision.pipeline.pipeline", "Result": "drivevision.pipeline.result",
         "Stage": "drivevision.pipeline.result"}

__all__ = list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'drivevision.pipeline' has no attribute {name!r}")
