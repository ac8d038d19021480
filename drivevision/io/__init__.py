"""Frames in and results out: ``Frame``/``Source`` (frames), URIs, file and stream sources,
sinks (video, JSONL, CSV), live sinks and the MJPEG server.

Import what you need from its module (``drivevision.io.sources.open_source``): this package
imports nothing, so the light modules (``frames``) stay light.
"""
