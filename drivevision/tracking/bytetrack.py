"""ByteTrack: every detection box counts, low-score ones included; optionally with the camera's
motion taken out of the predictions first (BoT-SORT's camera-motion compensation).

Each update: predict every track with its Kalman filter over the frames gone by since the
previous update (more than one when the source dropped frames) and move the predictions by
the camera's motion; match high-score detections to the confirmed tracks, tracked or lost
(``1 - IoU`` at most ``match_thresh``); match low-score detections to the tracks still
unmatched that were seen in the previous update (IoU >= 0.5), which keeps objects through
blur and partial occlusion; match what is left of the high-score detections to tracks born
in the previous update (IoU >= 0.3, of boxes grown by 0.3 of their size per frame dropped
in between), which confirms them and gives them their ids (1, 2, 3, ... in the order
confirmed, so a box seen once takes none). High-score detections left over
start tracks; tracks unseen for more than ``track_buffer`` frames end. Matches happen only
within a class; a track's class is the most frequent one among its matched detections.
"""

from __future__ import annotations

import numpy as np

from drivevision.detections import Detections
from drivevision.ops.frames import frame_kind
from drivevision.tracking import kalman
from drivevision.tracking.matching import assign_pairs, overlapping
from drivevision.tracking.motion import CameraMotion

_LOW_MAX_COST, _NEW_MAX_COST = 0.5, 0.7
# A new track has no velocity yet: after frames were dropped its second sighting is matched
# with both boxes grown by this share of their size on every side, per frame dropped (the
# buffered IoU of C-BIoU, Yang et al., 2023); with none dropped, plain IoU.
_NEW_MARGIN = 0.3


class ByteTracker:
    """Tracks of one video stream; ``update`` once per frame, in order.

    Args:
        track_thresh: detections scoring at least this are "high" (may start tracks).
        track_buffer: frames a lost track is kept, to be found again with its id.
        match_thresh: the largest ``1 - IoU`` at which a high-score detection matches a track.
        low_thresh: detections scoring under this are ignored.
        motion: a ``CameraMotion`` estimator, or None for no camera-motion compensation.
    """

    def __init__(self, *, track_thresh: float = 0.5, track_buffer: int = 30,
                 match_thresh: float = 0.8, low_thresh: float = 0.1,
                 motion: CameraMotion | None = None):
        if not 0 <= low_thresh <= track_thresh <= 1:
            raise ValueError(f"Expected 0 <= low_thresh <= track_thresh <= 1, but got "
                             f"{low_thresh=}, {track_thresh=}")
        if not 0 < match_thresh <= 1:
            raise ValueError(f"Expected 0 < match_thresh <= 1 (a 1 - IoU distance), but got "
                             f"{match_thresh}")
        if track_buffer < 0:
            raise ValueError(f"Expected track_buffer >= 0 frames, but got {track_buffer}")
        self.track_thresh, self.track_buffer = track_thresh, track_buffer
        self.match_thresh, self.low_thresh = match_thresh, low_thresh
        self.motion = motion
        self.reset()

    def __repr__(self) -> str:  # one line, its settings; as a call that would make it again
        motion = "" if self.motion is None else f", motion={self.motion!r}"
        return (f"ByteTracker(track_thresh={self.track_thresh!r}, track_buffer="
                f"{self.track_buffer!r}, match_thresh={self.match_thresh!r}, "
                f"low_thresh={self.low_thresh!r}{motion})")

    def reset(self) -> None:
        """Forget every track; ids start again from 1 (a new run)."""
        self._frame, self._next_id = 0, 1  # _frame: this update's frame, counted from 1
        self._prev, self._index = 0, None  # the previous update's frame; its frame_index
        self._mean, self._cov = np.zeros((0, 8)), np.zeros((0, 8, 8))
        self._ids = np.zeros(0, np.int64)
        self._last = np.zeros(0, np.int64)  # frame number of the last match
        self._confirmed = np.zeros(0, bool)
        self._votes = np.zeros((0, 0), np.int64)  # matches per (track, class column)
        self._columns: dict[int, int] = {}  # class id -> column of _votes
        if self.motion is not None:
            self.motion.reset()

    def update(self, detections: Detections, frame: np.ndarray | None = None,
               frame_index: int | None = None) -> Detections:
        """This frame's detections -> those of the tracks seen in it, with ``track_ids``.

        Args:
            detections: every detection of the frame, low scores included.
            frame: the uint8 (H, W, 3) BGR image, for camera-motion compensation (when this
                tracker has it); without it the camera is taken to be still.
            frame_index: the frame's index in its stream. Frames skipped since the previous
                update (a live source drops frames a slow detector cannot take) count as
                frames gone by: motion is predicted over them and ``track_buffer`` counts
                them. None, or an index not after the previous one: the next frame.

        Returns the detections matched to confirmed tracks, in their input order, each box
        and score as detected.
        """
        _check_inputs(detections, frame)
        step = 1
        if frame_index is not None and self._index is not None:
            step = max(int(frame_index) - self._index, 1)
        self._index = None if frame_index is None else int(frame_index)
        self._prev, self._frame = self._frame, self._frame + step
        keep = detections.scores >= self.low_thresh
        dets = detections[keep]
        self._expire()
        kinds, inverse = np.unique(dets.class_ids, return_inverse=True)
        classes = np.array([self._column(int(c)) for c in kinds], np.intp)[inverse.ravel()]
        self._predict(frame, dets.xyxy)
        matches = self._associate(dets, classes)
        self._correct(matches, dets, classes)
        shown = [(d, int(self._ids[t])) for t, d in matches]  # all confirmed by now
        born = self._start(dets, classes, matches)
        shown += [(d, i) for d, i in born if self._frame == 1]
        self._end()
        shown.sort()
        index = np.flatnonzero(keep)[[d for d, _ in shown]]
        out = detections[index]
        return Detections(out.xyxy, out.scores, out.class_ids, [i for _, i in shown])

    def _column(self, class_id: int) -> int:
        if class_id not in self._columns:
            self._columns[class_id] = len(self._columns)
            self._votes = np.pad(self._votes, ((0, 0), (0, 1)))
        return self._columns[class_id]

    def _predict(self, frame: np.ndarray | None, boxes: np.ndarray) -> None:
        affine = None
        if self.motion is not None and frame is not None:
            affine = self.motion.estimate(frame, boxes)
        if not len(self._ids):
            return
        lost = self._last < self._prev
        self._mean[lost, 7] = 0.0  # a lost box keeps its size
        self._mean, self._cov = kalman.predict(self._mean, self._cov, self._frame - self._prev)
        if affine is not None:
            self._mean, self._cov = kalman.warp(self._mean, self._cov, affine)

    def _associate(self, dets: Detections, classes: np.ndarray) -> list[tuple[int, int]]:
        """(track row, detection row) pairs of the three matching rounds."""
        track_class = self._votes.argmax(1) if len(self._ids) else np.zeros(0, np.intp)
        # the pairs of one class that overlap at all, once for every round (after dropped
        # frames, those of grown boxes for the third): (P,) arrays
        boxes = kalman.xyxy(self._mean)
        pairs = overlapping(boxes, track_class, dets.xyxy, classes)
        new_pairs = pairs
        dropped = self._frame - self._prev - 1
        if dropped:
            margin = _NEW_MARGIN * dropped
            new_pairs = overlapping(_grown(boxes, margin), track_class,
                                    _grown(dets.xyxy, margin), classes)
        high = dets.scores >= self.track_thresh
        free_tracks = np.ones(len(self._ids), bool)
        free_dets = np.ones(len(dets), bool)
        matches: list[tuple[int, int]] = []
        rounds = ((pairs, self._confirmed, high, self.match_thresh),
                  (pairs, self._confirmed & (self._last == self._prev), ~high, _LOW_MAX_COST),
                  (new_pairs, ~self._confirmed, high, _NEW_MAX_COST))
        for (t, d, value), tracks, wanted, max_cost in rounds:
            cost = 1.0 - value
            ok = (tracks & free_tracks)[t] & (wanted & free_dets)[d] & (cost <= max_cost)
            rows, cols = assign_pairs(t[ok], d[ok], cost[ok])
            free_tracks[rows] = False
            free_dets[cols] = False
            matches += zip(rows.tolist(), cols.tolist())
        return matches

    def _correct(self, matches: list[tuple[int, int]], dets: Detections,
                 classes: np.ndarray) -> None:
        if not matches:
            return
        t, d = (np.array(v, np.intp) for v in zip(*matches))
        self._mean[t], self._cov[t] = kalman.update(self._mean[t], self._cov[t],
                                                    kalman.xyah(dets.xyxy[d]))
        self._last[t] = self._frame
        fresh = np.sort(t[~self._confirmed[t]])  # confirmed now: their ids, in birth order
        self._ids[fresh] = self._new_ids(len(fresh))
        self._confirmed[t] = True
        self._votes[t, classes[d]] += 1

    def _start(self, dets: Detections, classes: np.ndarray,
               matches: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """New tracks from the unmatched high-score detections: (detection row, id) pairs."""
        free = np.ones(len(dets), bool)
        free[[d for _, d in matches]] = False
        d = np.flatnonzero(free & (dets.scores >= self.track_thresh))
        if not len(d):
            return []
        mean, cov = kalman.initiate(kalman.xyah(dets.xyxy[d]))
        # an id only for a track that is shown (confirmed): one-off boxes leave no gaps
        ids = self._new_ids(len(d)) if self._frame == 1 else np.zeros(len(d), np.int64)
        votes = np.zeros((len(d), self._votes.shape[1]), np.int64)
        votes[np.arange(len(d)), classes[d]] = 1
        self._mean, self._cov = np.concatenate([self._mean, mean]), np.concatenate([self._cov, cov])
        self._ids = np.concatenate([self._ids, ids])
        self._last = np.concatenate([self._last, np.full(len(d), self._frame)])
        self._confirmed = np.concatenate([self._confirmed, np.full(len(d), self._frame == 1)])
        self._votes = np.concatenate([self._votes, votes])
        return list(zip(d.tolist(), ids.tolist()))

    def _new_ids(self, n: int) -> np.ndarray:
        ids = np.arange(self._next_id, self._next_id + n, dtype=np.int64)
        self._next_id += n
        return ids

    def _expire(self) -> None:
        """Before matching: drop the tracks unseen for more than ``track_buffer`` frames by
        now, which frames skipped since the last update (dropped, strided, an outage) can
        make of a track ``_end`` kept."""
        if len(self._ids):
            self._keep(self._frame - self._last - 1 <= self.track_buffer)

    def _end(self) -> None:
        """Drop tracks born and not confirmed by the next frame, and those lost too long."""
        age = self._frame - self._last
        self._keep(np.where(self._confirmed, age <= self.track_buffer, age == 0))

    def _keep(self, keep: np.ndarray) -> None:
        for name in ("_mean", "_cov", "_ids", "_last", "_confirmed", "_votes"):
            setattr(self, name, getattr(self, name)[keep])


def _grown(xyxy: np.ndarray, margin: float) -> np.ndarray:
    """float (N, 4) xyxy boxes grown by ``margin`` times their width and height on each side."""
    xyxy = np.asarray(xyxy, np.float64)
    size = np.tile(xyxy[:, 2:] - xyxy[:, :2], 2)
    return xyxy + margin * size * np.array([-1.0, -1.0, 1.0, 1.0])


def _check_inputs(detections: Detections, frame: np.ndarray | None) -> None:
    """TypeError, naming what came and the fix, for what ``update`` cannot take."""
    if not isinstance(detections, Detections):
        swapped = isinstance(detections, np.ndarray) and isinstance(frame, Detections)
        raise TypeError(f"Expected Detections (what the detector returns) first, but found "
                        f"{type(detections).__name__}"
                        + ("; the order is update(detections, frame)" if swapped else ""))
    if frame is not None and not isinstance(frame, np.ndarray):
        raise TypeError(f"Expected the frame as a uint8 (H, W, 3) BGR numpy image or None, but "
                        f"found {frame_kind(frame)}")
