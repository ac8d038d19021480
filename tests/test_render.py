"""Drawing: labels never cover each other, stay inside the frame and near their box, and
the input frame is never changed; tracks are labelled with their ids and drawn with trails."""

import numpy as np
import pytest
import torch

from drivevision.detections import Detections
from drivevision.labels import COCO_NAMES, track_colour
from drivevision.render import Trails, annotate, label_layout, label_texts, renderer


def crowd(n: int, width: int, height: int, seed: int) -> Detections:
    """Many overlapping boxes in a street-like band, some cut by the frame's edges."""
    rng = np.random.default_rng(seed)
    x1 = rng.uniform(-40, width - 10, n)
    y1 = rng.uniform(height * 0.3, height * 0.6, n)
    w, h = rng.uniform(15, 120, n), rng.uniform(20, 110, n)
    edges = np.array([[0, 0, 60, 40], [width - 50, 0, width, 30], [0, height - 30, 80, height],
                      [width - 70, height - 50, width, height],
                      [-20, -20, width + 20, height + 20]])
    xyxy = np.vstack([np.stack([x1, y1, x1 + w, y1 + h], axis=1), edges])
    xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
    classes = rng.choice([1, 2, 3, 4, 6, 8, 10, 13], len(xyxy)).astype(np.int32)
    return Detections(xyxy, rng.uniform(0.3, 1.0, len(xyxy)).astype(np.float32), classes)


def overlaps(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


@pytest.mark.parametrize("width, height, n, seed", [(640, 360, 40, 0), (1280, 720, 80, 1),
                                                    (320, 240, 25, 2), (1920, 1080, 150, 3)])
def test_labels_never_intersect_and_stay_inside_the_frame(width, height, n, seed):
    detections = crowd(n, width, height, seed)
    layout = label_layout((height, width, 3), detections, COCO_NAMES)
    rects = [r for r in layout if r is not None]
    assert len(rects) >= 0.8 * len(detections)  # a crowd, yet most boxes keep their label
    for i, a in enumerate(rects):
        assert 0 <= a[0] < a[2] <= width and 0 <= a[1] < a[3] <= height
        assert not [b for b in rects[i + 1:] if overlaps(a, b)]


def gap(rect, box) -> float:
    dx = max(0.0, rect[0] - box[2], box[0] - rect[2])
    dy = max(0.0, rect[1] - box[3], box[1] - rect[3])
    return float(np.hypot(dx, dy))


def test_each_label_is_on_or_beside_its_box_and_the_best_one_is_just_above_it():
    detections = crowd(20, 640, 360, seed=4)
    layout = label_layout((360, 640, 3), detections, COCO_NAMES)
    assert all(r is not None for r in layout)
    for rect, box in zip(layout, detections.xyxy):
        height = rect[3] - rect[1]
        assert gap(rect, box) <= 3 * height, (rect, box)
    best = int(np.argmax(detections.scores))
    x1, y1 = (int(round(v)) for v in detections.xyxy[best][:2])
    rect = layout[best]
    if y1 >= rect[3] - rect[1]:  # room above: the top label sits on the box's top edge
        assert (rect[0], rect[3]) == (min(x1, 640 - (rect[2] - rect[0])), y1)


def test_stacked_boxes_get_one_visible_label_each():
    # a truck and a bus detected on one vehicle: the same box twice, as on the sample clip
    box = [[300, 150, 400, 220]] * 2
    detections = Detections(np.array(box, np.float32), np.array([0.6, 0.5], np.float32),
                            np.array([8, 6], np.int32))
    first, second = label_layout((360, 640, 3), detections, COCO_NAMES)
    assert not overlaps(first, second)
    assert first[3] == 150  # the higher score keeps the place above


def test_annotate_draws_on_a_copy_and_leaves_the_frame_as_it_was():
    frame = np.full((360, 640, 3), 90, np.uint8)
    detections = crowd(10, 640, 360, seed=5)
    out = annotate(frame, detections, COCO_NAMES)
    assert out is not frame and (frame == 90).all()
    layout = label_layout(frame.shape, detections, COCO_NAMES)
    for rect in filter(None, layout):  # every label's place is painted
        assert (out[rect[1]:rect[3], rect[0]:rect[2]] != 90).any(axis=2).mean() > 0.9


def tracked(boxes, ids, classes=None) -> Detections:
    n = len(boxes)
    return Detections(np.array(boxes, np.float32), np.full(n, 0.87, np.float32),
                      np.array(classes or [3] * n, np.int32), np.array(ids, np.int32))


@pytest.mark.parametrize("channels", [None, 1, 4])
def test_grayscale_and_bgra_frames_are_drawn_on_in_colour(channels):
    """As the detector takes them: a BGR copy comes back, boxes in their class colour (on a
    BGRA frame cv2 drew them with alpha 0, on a grayscale one without colour)."""
    gray = np.full((60, 80), 50, np.uint8)
    frame = {None: gray, 1: gray[:, :, None], 4: np.dstack([gray] * 3 + [gray + 200])}[channels]
    before = frame.copy()
    dets = Detections([[10, 10, 50, 40]], [0.9], [3])
    out = annotate(frame, dets, COCO_NAMES, labels=False)
    reference = annotate(np.dstack([gray] * 3), dets, COCO_NAMES, labels=False)
    assert out.shape == (60, 80, 3) and np.array_equal(out, reference)
    assert np.array_equal(frame, before)


@pytest.mark.parametrize("frame, error, message", [
    (np.zeros((8, 8, 3), np.float32), TypeError, "but found float32"),
    ("frame.jpg", TypeError, r"but found a path \('frame.jpg'\); read the image first"),
    (None, TypeError, r"but found None \(cv2.imread gives None for a file it cannot read: "
     r"check the path\)$"),
    (torch.zeros((8, 8, 3), dtype=torch.uint8), TypeError, r"but found Tensor; .*\.numpy\(\)"),
    (np.zeros((0, 0, 3), np.uint8), ValueError, r"but found shape \(0, 0, 3\)"),
    (np.zeros((8, 8, 2), np.uint8), ValueError, r"but found shape \(8, 8, 2\)"),
    (np.zeros((3, 8, 9), np.uint8), ValueError,
     r"but found shape \(3, 8, 9\); .* frame.transpose\(1, 2, 0\)$"),
])
def test_annotate_refuses_what_is_not_an_image_saying_what_came(frame, error, message):
    dets = Detections([[1, 1, 5, 5]], [0.9], [3])
    with pytest.raises(error, match=f"Expected .* to draw on, {message}"):
        annotate(frame, dets, COCO_NAMES)


def test_tracked_boxes_are_labelled_with_their_id_and_coloured_by_track():
    frame = np.zeros((360, 640, 3), np.uint8)
    detections = tracked([[100, 100, 200, 180], [300, 100, 400, 180]], [12, 13])
    assert label_texts(detections, COCO_NAMES) == ["#12 car 0.87", "#13 car 0.87"]
    out = annotate(frame, detections, COCO_NAMES, labels=False, thickness=3)
    for box, track_id in zip(detections.xyxy, (12, 13)):  # same class, each its own colour
        x1, y1, _, y2 = (int(v) for v in box)
        assert tuple(out[(y1 + y2) // 2, x1]) == track_colour(track_id)
    assert track_colour(12) != track_colour(13)


def test_a_trail_is_drawn_along_the_tracks_past_centres_in_its_colour():
    trails, frame = Trails(seconds=1.0), np.zeros((360, 640, 3), np.uint8)
    for f in range(20):  # 20 frames at 30 fps: the box moves right 10 px a frame
        x = 50 + 10 * f
        paths = trails.add(f * 1000 / 30, tracked([[x, 200, x + 40, 260]], [7]))
    assert paths[7].shape == (20, 2) and paths[7][0].tolist() == [70, 230]
    out = annotate(frame, tracked([[240, 200, 280, 260]], [7]), COCO_NAMES, labels=False,
                   trails=paths)
    along = out[230, 80:230]  # behind the box: only the trail is there
    assert (along == track_colour(7)).all(axis=1).mean() > 0.9
    assert (out[200:220, 80:230] == 0).all()  # and nothing beside it


def test_trails_of_ended_tracks_disappear_after_a_second_and_a_seek_clears_them():
    trails = Trails(seconds=1.0)
    for f in range(10):
        trails.add(f * 100.0, tracked([[10 * f, 0, 10 * f + 20, 20]], [1]))
    trails.add(1000.0, tracked([[0, 0, 20, 20]], [2]))  # track 1 has ended
    assert sorted(trails.add(1800.0, Detections.empty())) == [1, 2]
    assert len(trails.paths()[1]) == 2  # only its points at 800 and 900 ms are that recent
    assert sorted(trails.add(1950.0, Detections.empty())) == [2]  # 1.05 s after its end
    assert trails.add(2100.0, Detections.empty()) == {}
    trails.add(2200.0, tracked([[0, 0, 20, 20]], [3]))
    assert trails.add(500.0, Detections.empty()) == {}  # time went back: a seek


def test_annotate_without_trails_or_track_ids_is_unchanged():
    frame = np.full((360, 640, 3), 90, np.uint8)
    detections = crowd(10, 640, 360, seed=6)
    assert np.array_equal(annotate(frame, detections, COCO_NAMES),
                          annotate(frame, detections, COCO_NAMES, trails={}))


def test_labels_without_scores_name_the_class_and_track_only():
    detections = Detections([[10, 10, 60, 50], [80, 10, 140, 60]], [0.91, 0.5], [3, 1],
                            track_ids=[7, 8])
    assert label_texts(detections, COCO_NAMES) == ["#7 car 0.91", "#8 person 0.50"]
    assert label_texts(detections, COCO_NAMES, scores=False) == ["#7 car", "#8 person"]
    with_scores = label_layout((200, 300, 3), detections, COCO_NAMES)
    without = label_layout((200, 300, 3), detections, COCO_NAMES, scores=False)
    assert all(b[2] - b[0] < a[2] - a[0] for a, b in zip(with_scores, without))


def test_a_draw_style_draws_as_annotate_with_its_options():
    from drivevision.config import DrawStyle

    frame = np.full((120, 200, 3), 90, np.uint8)
    detections = Detections([[20, 30, 90, 100]], [0.8], [3])
    plain = renderer(DrawStyle(), COCO_NAMES)(frame, detections)
    assert np.array_equal(plain, annotate(frame, detections, COCO_NAMES))
    boxes_only = renderer(DrawStyle(labels=False, line_width=6), COCO_NAMES)(frame, detections)
    assert np.array_equal(boxes_only, annotate(frame, detections, COCO_NAMES, labels=False,
                                               thickness=6))
    assert not np.array_equal(boxes_only, plain)
    def edge(image) -> int:  # pixels drawn across the box's left edge, halfway down
        return int((image[65, 5:40] != 90).any(axis=1).sum())

    assert edge(boxes_only) >= 6 > edge(plain)
    with pytest.raises(ValueError, match="line width of 1 to 64 pixels, but got 0"):
        DrawStyle(line_width=0)
