"""Tracking in the viewer: the track toggle, ids and trails, a clicked box's track,
the tracker reset on a seek back, the tracking options of ``drivevision view``, trails
in a recording."""

from __future__ import annotations

import time

import av
import numpy as np
import pytest

pytest.importorskip("PyQt6.QtWidgets")
pytest.importorskip("pytestqt")

from standins import FixedDetector  # noqa: E402
from viewer_steps import CAR, near, painted_rgb, two_boxes, wait_for_frame  # noqa: E402

from drivevision.detections import Detections  # noqa: E402
from drivevision.labels import COCO_NAMES, colour_for, track_colour  # noqa: E402

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def tracked_window(qtbot, make_window, clip_path):
    """A viewer that tracks (botsort) two fixed boxes on the clip, stepped to its third frame."""
    from drivevision.pipeline.track_stage import track_stages

    detector = FixedDetector(detections=two_boxes())
    window = make_window(detector, conf=0.2,
                         tracking=track_stages("botsort", track_thresh=0.2, low_thresh=0.1))
    window.panel.overlay.labels_box.setChecked(False)
    window.panel.overlay.thickness.setValue(6)
    window.open_source(clip_path)
    wait_for_frame(qtbot, window, 0)
    for index in (1, 2):
        window.step(1)
        wait_for_frame(qtbot, window, index)
    return window


def test_the_track_toggle_reads_as_unavailable_without_a_tracker(qtbot, make_window):
    from drivevision.pipeline.track_stage import track_stages

    untracked = make_window(FixedDetector(detections=two_boxes())).panel.overlay.tracks_box
    assert not untracked.isChecked() and not untracked.isEnabled()
    assert "--track" in untracked.toolTip()
    tracked = make_window(FixedDetector(detections=two_boxes()),
                          tracking=track_stages("botsort")).panel.overlay.tracks_box
    assert tracked.isChecked() and tracked.isEnabled()


def test_track_ids_and_trails_show_and_hide_with_their_toggle(qtbot, tracked_window):
    window, car_edge = tracked_window, (20, 45)
    assert window.panel.detections.item(0).text().startswith("#1 car")
    assert near(painted_rgb(window, *car_edge), track_colour(1))
    window.panel.overlay.tracks_box.setChecked(False)  # class colours and no ids
    qtbot.wait(50)
    assert near(painted_rgb(window, *car_edge), colour_for(CAR, COCO_NAMES))
    assert window.panel.detections.item(0).text().startswith("car")


def test_clicking_a_box_selects_its_track_and_shows_its_span(qtbot, tracked_window):
    window = tracked_window
    assert window.panel.shown_table() == "classes"
    window.view.clicked.emit(150.0, 60.0)  # inside the person's box: track 2
    assert window.selected_track == 2 and window.highlight == 1
    assert window.panel.shown_table() == "detections"  # its row, selected, on show
    assert window.panel.track_info.text() == ("track #2: first frame 1, last frame 3, "
                                              "3 frames long (seen in 3)")
    window.step(1)
    wait_for_frame(qtbot, window, 3)
    qtbot.waitUntil(lambda: "last frame 4" in window.panel.track_info.text())
    assert window.highlight == 1  # still the selected track's box
    window.view.clicked.emit(5.0, 5.0)  # no box there
    assert window.selected_track is None and window.panel.track_info.text() == ""


@pytest.mark.parametrize("move", ["seek", "step back"])
def test_seeking_or_stepping_back_resets_the_tracker_and_says_so(qtbot, tracked_window, move):
    window = tracked_window
    window.view.clicked.emit(50.0, 45.0)
    assert window.selected_track == 1
    window.seek(10) if move == "seek" else window.step(-1)
    index = 10 if move == "seek" else 1
    wait_for_frame(qtbot, window, index)
    message = f"tracker reset: frame {index + 1} does not follow frame 3"
    qtbot.waitUntil(lambda: window.statusBar().currentMessage() == message)
    assert window.worker.track_span(1) == (index, index, 1)  # ids start again at 1
    assert window.panel.track_info.text().startswith(f"track #1: first frame {index + 1},")


def test_drivevision_view_passes_the_tracking_options_on(monkeypatch, clip_path):
    from drivevision import cli
    from drivevision.cli.tracking import track_options
    from gui import app
    from gui.app import build_parser

    calls = []
    monkeypatch.setattr(app, "main", lambda argv, prog: calls.append(argv) or 0)
    assert cli.main(["view", clip_path, "--track", "bytetrack", "--track-buffer", "12"]) == 0
    args = build_parser().parse_args(calls[0])
    assert args.track == "bytetrack"  # and the settings left out keep their defaults
    assert track_options(args) == {"track_thresh": 0.5, "track_buffer": 12, "match_thresh": 0.8}


def test_a_recording_draws_the_trails_the_viewer_shows(tmp_path):
    from drivevision.io.frames import Frame
    from drivevision.pipeline import Result
    from gui.overlay import OverlaySettings
    from gui.recording import Recording

    image = np.zeros((96, 160, 3), np.uint8)
    boxes = Detections(np.array([[100, 40, 120, 60]], np.float32), np.array([0.9], np.float32),
                       np.array([3], np.int32), track_ids=np.array([1], np.int64))
    trail = {1: np.array([[20.0, 50.0], [60.0, 50.0], [110.0, 50.0]], np.float32)}
    recording = Recording()
    recording.start(tmp_path / "rec.mkv", None, fps=10.0, names=COCO_NAMES)
    for i in range(3):
        result = Result(Frame(i, i * 100.0, image, time.monotonic()), boxes, trails=trail)
        recording.write(result, OverlaySettings(tracks=True), COCO_NAMES)
    recording.stop()
    with av.open(str(tmp_path / "rec.mkv")) as container:
        last = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)][-1]
    assert last[48:53, 30:50].max() > 100  # the trail, left of the box, is drawn
