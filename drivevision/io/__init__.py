"""Frames in and results out: ``Frame``/``Source`` (frames), URIs, file and stream sources,
sinks (JSONL and CSV in ``sinks``, video in ``video_sink``), live sinks and the MJPEG server.

Import what you need from its module (``drivevision.io.sources.open_source``): this package
imports nothing, so the light modules (``frames``) stay light.
"""
