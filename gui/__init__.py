"""DriveVision viewer: a PyQt6 desktop app that plays files and cameras with detections overlaid.

Qt lives here only; the ``drivevision`` library never imports this package. Start it with
``drivevision-gui [SOURCE]``, ``python -m gui [SOURCE]`` or ``drivevision view SOURCE``.
"""
