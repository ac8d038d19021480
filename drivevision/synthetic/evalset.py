"""A labelled evaluation clip: generated drives the demo model never saw, with ground truth.

``scripts/train_fixture.py`` trained ``assets/tiny-fpn-synthetic.pt`` on drives 11-14 and
checked it on drive 99, all at 384x216; the evaluation clip joins stretches of drives
``EVAL_SEEDS`` (none of those) at that size, so its scores measure the model, not its
memory. Ground truth is this project's JSONL (``write_ground_truth``).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from drivevision.synthetic.scenes import Scene, SceneGenerator, write_scenes

EVAL_SEEDS = (101, 102, 103)
EVAL_SIZE = (384, 216)  # width, height: the demo model's training size
_ID_STRIDE = 1_000_000  # track ids of drive k start at k * stride: unique over the clip


def write_ground_truth(path: str | Path, scenes: list[Scene], *, track_ids: bool = True) -> None:
    """One JSON line per scene: ``frame``, ``width``, ``height``, ``boxes`` (xyxy pixels,
    rounded to 0.01 px so the text is stable), ``labels`` and, when the scenes carry them
    and ``track_ids`` is set, ``track_ids``."""
    with open(path, "w", encoding="utf-8") as f:
        for i, scene in enumerate(scenes):
            h, w = scene.image.shape[:2]
            record = {"frame": i, "width": w, "height": h,
                      "boxes": [[round(float(v), 2) for v in box] for box in scene.boxes],
                      "labels": list(scene.labels)}
            if track_ids and scene.ids is not None:
                record["track_ids"] = scene.ids.tolist()
            f.write(json.dumps(record) + "\n")


def eval_scenes(seeds: tuple[int, ...] = EVAL_SEEDS, frames_per_seed: int = 30, *,
                size: tuple[int, int] = EVAL_SIZE, fps: float = 10.0) -> list[Scene]:
    """Frames ``0 .. frames_per_seed - 1`` of each drive in ``seeds``, one after another;
    object ids offset per drive so that no two objects share one."""
    scenes = []
    for k, seed in enumerate(seeds):
        for s in SceneGenerator(*size, seed=seed, fps=fps).clip(frames_per_seed):
            ids = None if s.ids is None else s.ids + np.int64(k * _ID_STRIDE)
            scenes.append(Scene(s.image, s.boxes, s.labels, ids))
    return scenes


def write_eval_clip(video: str | Path, truth: str | Path, *,
                    seeds: tuple[int, ...] = EVAL_SEEDS, frames_per_seed: int = 30,
                    size: tuple[int, int] = EVAL_SIZE, fps: float = 10.0) -> list[Scene]:
    """Write the evaluation clip (H.264 MP4) and its ground truth (JSONL); returns the scenes.
    Defaults: 90 frames at 384x216, 10 fps, about 1,000 boxes."""
    if not seeds or frames_per_seed < 1:
        raise ValueError(f"Expected seeds and frames_per_seed >= 1, but got {seeds=}, "
                         f"{frames_per_seed=}")
    scenes = eval_scenes(seeds, frames_per_seed, size=size, fps=fps)
    write_scenes(video, scenes, fps=fps)
    write_ground_truth(truth, scenes)
    return scenes
