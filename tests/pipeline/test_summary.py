"""What a run's summary says, for runs at the edges."""

import numpy as np

from drivevision.detections import Detections
from drivevision.pipeline.stats import RunSummary, StageStats, TrackStats


def test_a_tracked_run_in_which_no_object_became_a_track_says_so():
    """The tracker ran (detections carry track ids) but confirmed no track: the summary
    counts none, with no median length, instead of failing the finished run."""
    tracks = TrackStats()
    empty = Detections.empty()
    tracks.add(0, Detections(empty.xyxy, empty.scores, empty.class_ids,
                             track_ids=np.zeros(0, np.int32)))
    assert tracks  # the run was tracked
    summary = RunSummary(5, 1.0, {}, StageStats(), [], tracks=tracks.per_class(["car"]),
                         median_track_length=tracks.median_length())
    assert "0 tracks" in summary.format().splitlines()
