"""The one pipeline: N sources -> per-source policy -> muxer -> detector -> per-source stages
-> render -> sinks, on threads that cannot hang (``threads``), with per-source ``stats`` and
``detect_video`` (``runner``) on top."""

from drivevision.pipeline.pipeline import Pipeline, Result

__all__ = ["Pipeline", "Result"]
