"""Accuracy of detections and tracks against ground truth, by maintained implementations
(pycocotools for COCO box AP, TrackEval for HOTA, motmetrics for MOTA and IDF1), and reports
of it."""

from drivevision.evaluation.annotations import Annotations, FrameBoxes
from drivevision.evaluation.readers import read_predictions, read_truth
from drivevision.evaluation.score import Evaluation, evaluate, parse_class_map

__all__ = ["Annotations", "Evaluation", "FrameBoxes", "evaluate", "parse_class_map",
           "read_predictions", "read_truth"]
