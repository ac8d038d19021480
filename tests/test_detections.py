import numpy as np
import pytest

from drivevision.detections import Detections


def make(n: int) -> Detections:
    xyxy = np.stack([np.arange(n), np.arange(n), np.arange(n) + 10, np.arange(n) + 5], 1)
    return Detections(xyxy, np.linspace(0.1, 0.9, n), np.arange(n))


def test_fields_are_converted_to_the_documented_dtypes():
    d = make(3)
    assert d.xyxy.dtype == np.float32 and d.xyxy.shape == (3, 4)
    assert d.scores.dtype == np.float32 and d.class_ids.dtype == np.int32
    assert len(d) == 3


@pytest.mark.parametrize("kwargs, message", [
    (dict(xyxy=np.zeros((2, 3)), scores=np.zeros(2), class_ids=np.zeros(2)), "xyxy of shape"),
    (dict(xyxy=np.zeros((2, 4)), scores=np.zeros(3), class_ids=np.zeros(2)), "scores of shape"),
    (dict(xyxy=np.zeros((2, 4)), scores=np.zeros(2), class_ids=np.zeros((2, 1))), "class_ids"),
    (dict(xyxy=np.zeros((2, 4)), scores=np.zeros(2), class_ids=np.zeros(2),
          track_ids=np.zeros(1)), "track_ids"),
])
def test_mismatched_shapes_are_rejected_with_what_was_expected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Detections(**kwargs)


def test_empty_has_zero_rows_of_each_field():
    d = Detections.empty()
    assert len(d) == 0 and d.xyxy.shape == (0, 4) and d.scores.shape == (0,)
    assert Detections([], [], []) == d


def test_mask_slice_and_index_return_new_detections():
    d = make(4)
    high = d[d.scores > 0.5]
    assert len(high) == 2 and np.all(high.scores > 0.5)
    assert np.array_equal(d[1:3].class_ids, [1, 2])
    assert np.array_equal(d[np.array([3, 0])].class_ids, [3, 0])
    assert len(d[2]) == 1 and d[2].class_ids[0] == 2
    assert len(d) == 4  # the original is untouched


def test_track_ids_follow_indexing_and_area_is_per_box():
    d = Detections([[0, 0, 10, 5], [2, 2, 4, 4]], [0.9, 0.8], [3, 1], track_ids=[7, 8])
    assert d[d.class_ids == 1].track_ids.tolist() == [8]
    assert d.area.tolist() == [50.0, 4.0]


def test_detections_are_frozen():
    with pytest.raises(AttributeError):
        make(1).scores = np.zeros(1)


def test_detections_are_unhashable_by_their_own_name():
    """Equal by value, so not hashable (arrays are mutable): the error names Detections,
    not the numpy array a generated __hash__ tripped over."""
    with pytest.raises(TypeError, match="unhashable type: 'Detections'"):
        hash(make(2))
    assert make(2) == make(2) and make(2) != make(1)


def overlapping() -> Detections:
    """A car and a truck on one object (IoU 0.91), that car again less sure, and a car apart."""
    return Detections([[0, 0, 10, 10], [0, 0, 10, 11], [40, 40, 50, 50], [0, 0, 10, 10]],
                      [0.5, 0.9, 0.3, 0.4], [3, 8, 3, 3], track_ids=[1, 2, 3, 4])


def test_class_agnostic_nms_keeps_the_best_box_of_an_object_whatever_its_class():
    kept = overlapping().with_nms(0.7)
    assert kept.class_ids.tolist() == [8, 3]  # the truck and the car apart, in their order
    assert kept.track_ids.tolist() == [2, 3]
    assert kept.scores.tolist() == pytest.approx([0.9, 0.3])


def test_nms_per_class_keeps_one_box_of_each_class_on_an_object():
    kept = overlapping().with_nms(0.7, class_agnostic=False)
    assert kept.class_ids.tolist() == [3, 8, 3]
    assert kept.scores.tolist() == pytest.approx([0.5, 0.9, 0.3])


def test_nms_keeps_boxes_overlapping_less_than_the_threshold():
    assert len(overlapping().with_nms(0.95)) == 3  # only the car's exact copy goes
    assert overlapping()[[2]].with_nms(0.7) == overlapping()[[2]]
    assert len(Detections.empty().with_nms()) == 0


def test_an_nms_threshold_outside_0_1_is_refused():
    with pytest.raises(ValueError, match=r"iou in \[0, 1\], but got 1.5"):
        overlapping().with_nms(1.5)
