"""What the two int8 test modules share: calibration sets of generated scenes and the check
that int8 detections match fp32's on the trained demo model."""

from __future__ import annotations

import torch
from torchvision.ops import box_iou

from drivevision.engines.int8 import CalibrationSet
from drivevision.synthetic import SceneGenerator


def generated(seed: int, count: int = 6, calls: list | None = None) -> CalibrationSet:
    """``count`` generated 384x216 scenes of drives the demo model never saw; ``calls``
    counts how often the frames were asked for (a cache hit asks for none)."""
    def frames():
        if calls is not None:
            calls.append(seed)
        gen = SceneGenerator(384, 216, seed=seed)
        return [gen.frame(i * 7).image for i in range(count)]

    return CalibrationSet(f"seed {seed}", f"test-seed{seed}-{count}", frames)


def assert_int8_matches_fp32(fp32, int8) -> None:
    """On held-out scenes, every confident (>= 0.7) fp32 detection has an int8 one of the
    same class at IoU >= 0.7 (90% of them at least), and the counts agree."""
    gen = SceneGenerator(384, 216, seed=99)
    matched = total = 0
    for i in (5, 40, 75, 110):
        frame = gen.frame(i).image
        want, got = fp32(frame), int8(frame)
        assert abs(len(got) - len(want)) <= max(2, len(want) // 4)
        sure = want[want.scores >= 0.7]
        if len(sure) == 0 or len(got) == 0:
            total += len(sure)
            continue
        iou = box_iou(torch.from_numpy(sure.xyxy), torch.from_numpy(got.xyxy)).numpy()
        same = sure.class_ids[:, None] == got.class_ids[None, :]
        matched += int(((iou >= 0.7) & same).any(axis=1).sum())
        total += len(sure)
    assert total >= 8 and matched >= 0.9 * total, (matched, total)
