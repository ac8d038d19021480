"""The tracking stage keeps each source's trails in frame order, and the pipeline draws them."""

from __future__ import annotations

from standins import ArraySource

from drivevision.detections import Detections
from drivevision.labels import COCO_NAMES, track_colour
from drivevision.pipeline import Pipeline
from drivevision.pipeline.track_stage import TrackStage
from drivevision.tracking import create_tracker


class MovingCar:
    """One car moving 4 px right a frame; ArraySource's pixel values say the frame index."""

    names = COCO_NAMES

    def infer_timed(self, images):
        boxes = [[20 + 4 * int(im[0, 0, 0]), 100, 50 + 4 * int(im[0, 0, 0]), 140]
                 for im in images]
        return [Detections([b], [0.9], [3]) for b in boxes], {"inference": 0.0}


def test_the_pipeline_draws_each_tracks_trail_from_its_past_centres():
    stage = TrackStage(create_tracker("bytetrack"))
    pipeline = Pipeline(ArraySource(15, h=240, w=320), MovingCar(), stages=[stage], draw=True)
    last = list(pipeline.results())[-1]
    assert last.detections.track_ids.tolist() == [1]
    # 100 ms a frame: the last second holds frames 4..14, centres x = 35 + 4 * frame
    assert last.trails[1][:, 0].tolist() == [35.0 + 4 * f for f in range(4, 15)]
    along = last.annotated[120, 52:86]  # from frame 4's centre to the box's left edge
    assert (along == track_colour(1)).all(axis=1).all()
    stage.reset()
    assert stage.trails.paths() == {}
