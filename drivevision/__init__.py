"""DriveVision: real-time object detection on driving video."""

from drivevision.detections import Detections

__version__ = "0.1.0"

__all__ = ["Detections", "__version__"]
