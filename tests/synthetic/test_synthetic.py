"""The synthetic dashcam generator: determinism, box validity, motion and the MP4 writer."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from drivevision.synthetic import COCO_LABEL_IDS, MIN_BOX_PX, Scene, SceneGenerator, write_clip

W, H = 160, 96


@pytest.fixture(scope="module")
def scenes() -> list[Scene]:
    return SceneGenerator(W, H, seed=3).clip(30)


def test_same_seed_and_index_give_identical_scenes():
    a, b = SceneGenerator(W, H, seed=5).frame(17), SceneGenerator(W, H, seed=5).frame(17)
    assert np.array_equal(a.image, b.image)
    assert np.array_equal(a.boxes, b.boxes)
    assert a.labels == b.labels


def test_frames_can_be_rendered_in_any_order():
    gen = SceneGenerator(W, H, seed=5)
    late = gen.frame(40)
    gen.clip(5)
    assert np.array_equal(gen.frame(40).image, late.image)


def test_seeds_differ():
    a, b = SceneGenerator(W, H, seed=0).frame(3), SceneGenerator(W, H, seed=1).frame(3)
    assert not np.array_equal(a.image, b.image)


def test_scene_types_and_shapes(scenes):
    for scene in scenes:
        assert scene.image.shape == (H, W, 3) and scene.image.dtype == np.uint8
        assert scene.boxes.dtype == np.float32 and scene.boxes.shape == (len(scene.labels), 4)
        assert set(scene.labels) <= set(COCO_LABEL_IDS)


def test_boxes_are_xyxy_inside_the_image_and_big_enough(scenes):
    boxes = np.concatenate([s.boxes for s in scenes])
    assert len(boxes) > 20, "the scenes should be populated"
    x1, y1, x2, y2 = boxes.T
    assert (x1 >= 0).all() and (y1 >= 0).all() and (x2 <= W).all() and (y2 <= H).all()
    assert (x2 - x1 >= MIN_BOX_PX - 1).all() and (y2 - y1 >= MIN_BOX_PX - 1).all()


def test_sample_drive_shows_every_kind_of_object():
    gen = SceneGenerator(640, 360, seed=0)  # what scripts/make_sample.py renders
    labels = {label for i in range(0, 40, 3) for label in gen.frame(i).labels}
    assert labels == set(COCO_LABEL_IDS)


def test_objects_and_lanes_move_between_frames(scenes):
    moved = [not np.array_equal(a.boxes, b.boxes) for a, b in zip(scenes, scenes[1:])]
    assert all(moved)
    road = np.s_[int(H * 0.6):int(H * 0.85)]  # lane dashes, not only the sensor noise
    diff = np.abs(scenes[0].image[road].astype(int) - scenes[1].image[road].astype(int))
    assert (diff > 40).sum() > 10


def test_write_clip_round_trip(tmp_path):
    path = tmp_path / "clip.mp4"
    scenes = write_clip(path, 6, width=96, height=64, fps=10.0, seed=2)
    cap = cv2.VideoCapture(str(path))
    frames = []
    while (frame := cap.read()[1]) is not None:
        frames.append(frame)
    cap.release()
    assert len(scenes) == len(frames) == 6
    assert all(f.shape == (64, 96, 3) for f in frames)
    # H.264 at crf 28 is lossy, but the decoded frame must still be the generated one
    assert np.abs(frames[3].astype(int) - scenes[3].image).mean() < 12


@pytest.mark.parametrize("kwargs", [{"width": 97}, {"height": 63}, {"n_frames": 0}])
def test_write_clip_rejects_bad_sizes(tmp_path, kwargs):
    args = {"n_frames": 2, "width": 96, "height": 64} | kwargs
    with pytest.raises(ValueError, match="Expected"):
        write_clip(tmp_path / "x.mp4", args.pop("n_frames"), **args)


@pytest.mark.parametrize("kwargs", [{"width": 8}, {"fps": 0}, {"seed": -1}, {"shake": -1}])
def test_generator_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError, match="Expected"):
        SceneGenerator(**({"width": W, "height": H} | kwargs))


def test_negative_frame_index_is_rejected():
    with pytest.raises(ValueError, match="index"):
        SceneGenerator(W, H).frame(-1)


def test_every_box_has_an_object_id_that_stays_with_its_object(scenes):
    for scene in scenes:
        assert scene.ids.dtype == np.int64 and scene.ids.shape == (len(scene.labels),)
        assert len(set(scene.ids.tolist())) == len(scene.ids) and (scene.ids >= 0).all()
    label_of = {}
    for scene in scenes:  # an id never changes class
        for ident, label in zip(scene.ids.tolist(), scene.labels):
            assert label_of.setdefault(ident, label) == label
    for a, b in zip(scenes, scenes[1:]):  # the same id's box moves a little per frame
        common = set(a.ids.tolist()) & set(b.ids.tolist())
        assert common
        for ident in common:
            box_a, box_b = a.boxes[a.ids == ident][0], b.boxes[b.ids == ident][0]
            assert np.abs(box_a - box_b).max() < W / 4


def test_shake_moves_the_whole_view_and_its_boxes_but_not_the_bonnet():
    steady, shaken = SceneGenerator(640, 360, seed=4), SceneGenerator(640, 360, seed=4, shake=12)
    offsets = []
    for index in (5, 6, 7):
        a, b = steady.frame(index), shaken.frame(index)
        common = [i for i in b.ids.tolist() if i in a.ids.tolist()]
        delta = np.array([b.boxes[b.ids == i][0] - a.boxes[a.ids == i][0] for i in common])
        inner = (delta[:, 0] != 0) & (delta[:, 2] != 0)  # boxes not clipped at an edge
        offsets.append(np.median(delta[inner][:, [0, 2]]))
        assert image_shift(a.image, b.image)[0] == pytest.approx(offsets[-1], abs=1.0)
        bonnet = np.s_[340:356, 250:390]
        assert np.abs(a.image[bonnet].astype(int) - b.image[bonnet]).mean() < 8
    assert max(abs(o) for o in offsets) > 2 and len(set(np.round(offsets))) > 1


def image_shift(a: np.ndarray, b: np.ndarray) -> tuple[int, int]:
    """The whole-pixel (dx, dy) that best moves the skyline of ``a`` (no traffic there) onto
    ``b``'s."""
    grey_a, grey_b = a.mean(2), b.mean(2)
    ref = grey_a[100:160, 100:540]
    errors = {(dx, dy): np.abs(grey_b[100 + dy:160 + dy, 100 + dx:540 + dx] - ref).mean()
              for dx in range(-30, 31) for dy in range(-10, 11)}
    return min(errors, key=errors.get)


def test_make_eval_clip_makes_the_folders_it_is_told_to_write_into(tmp_path, monkeypatch,
                                                                   capsys):
    """As make_sample.py does: ``--out eval/clip.mp4 --gt gt/clip.jsonl`` into a new
    folder writes both, not a traceback from the video writer."""
    import runpy
    import sys
    from pathlib import Path

    script = Path(__file__).parents[2] / "scripts" / "make_eval_clip.py"
    video, truth = tmp_path / "eval" / "clip.mp4", tmp_path / "gt" / "clip.jsonl"
    monkeypatch.setattr(sys, "argv", [script.name, "--out", str(video), "--gt", str(truth),
                                      "--seeds", "101", "--frames", "2"])
    runpy.run_path(str(script), run_name="__main__")
    assert f"{video}, {truth}: 2 frames" in capsys.readouterr().out
    assert video.stat().st_size > 0 and len(truth.read_text().splitlines()) == 2
