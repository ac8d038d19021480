"""Generated dashcam scenes with ground truth: the sample clip, test inputs, the demo model."""

from drivevision.synthetic.evalset import EVAL_SEEDS, write_eval_clip, write_ground_truth
from drivevision.synthetic.scenes import (
    COCO_LABEL_IDS,
    MIN_BOX_PX,
    Scene,
    SceneGenerator,
    write_clip,
    write_scenes,
)

__all__ = ["COCO_LABEL_IDS", "MIN_BOX_PX", "Scene", "SceneGenerator", "write_clip",
           "write_scenes", "EVAL_SEEDS", "write_eval_clip", "write_ground_truth"]
