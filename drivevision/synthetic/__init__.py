"""Generated dashcam scenes with ground truth: the sample clip, test inputs, the demo model."""

from drivevision.synthetic.scenes import (
    COCO_LABEL_IDS,
    MIN_BOX_PX,
    Scene,
    SceneGenerator,
    write_clip,
)

__all__ = ["COCO_LABEL_IDS", "MIN_BOX_PX", "Scene", "SceneGenerator", "write_clip"]
