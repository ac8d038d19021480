"""What a pipeline or ``detect_video`` refuses before anything runs, each error saying
what was expected and how to make it: sources, detectors, sinks, stages, outputs."""

from pathlib import Path

import numpy as np
import pytest
from standins import ArraySource, FixedDetector

from drivevision.config import DetectorConfig
from drivevision.io.sources import open_source
from drivevision.pipeline import Pipeline
from drivevision.pipeline.runner import detect_video
from drivevision.tracking import create_tracker


def test_detect_video_refuses_to_write_over_its_input(tmp_path, clip_path):
    video = tmp_path / "in.mp4"
    video.write_bytes(Path(clip_path).read_bytes())
    before = video.read_bytes()
    with pytest.raises(ValueError, match=r"An output path is an input \(.*in.mp4\)"):
        detect_video(str(video), video, detector=FixedDetector())
    with open_source(str(video)) as source, pytest.raises(ValueError, match="is an input"):
        detect_video(source, jsonl=tmp_path / "." / "in.mp4", detector=FixedDetector())
    assert video.read_bytes() == before


def test_detect_video_refuses_two_outputs_of_one_path(tmp_path):
    with pytest.raises(ValueError, match="Two outputs have the same path: .*d.txt"):
        detect_video(ArraySource(3), jsonl=tmp_path / "d.txt", csv=str(tmp_path / "d.txt"),
                     detector=FixedDetector())
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("sources, message", [
    ("clip.mp4", r"found a path \('clip.mp4'\); open it with drivevision.open_source"),
    (["clip.mp4"], "Expected a Source .*, but found str"),
    (np.zeros((4, 4, 3), np.uint8), "Expected a Source .*, but found ndarray"),
])
def test_a_pipeline_of_something_other_than_sources_is_refused(sources, message):
    with pytest.raises(TypeError, match=message):
        Pipeline(sources, FixedDetector())


def test_a_pipeline_without_a_detector_is_refused():
    with pytest.raises(TypeError, match="Expected a Detector, but found NoneType"):
        Pipeline(ArraySource(3), None)


def test_a_pipeline_given_a_config_for_its_detector_says_how_to_build_one():
    with pytest.raises(TypeError, match=r"^Expected a Detector, but found a DetectorConfig; "
                                        r"build one with Detector.from_config\(config\)$"):
        Pipeline(ArraySource(3), DetectorConfig())


@pytest.mark.parametrize("sinks, found", [
    ("out.mp4", r"a path \('out.mp4'\)"),
    ([Path("d.jsonl")], r"a path \('d.jsonl'\)"),
    ([print], "builtin_function_or_method"),
])
def test_sinks_that_are_not_sinks_are_refused_saying_how_to_make_one(sinks, found):
    # (was: AttributeError, 'str' object has no attribute 'needs_annotated')
    message = (r"^Expected a sink, an opened output \(JsonlSink\(path, detector.names\), "
               r"CsvSink\(path, detector.names\) in drivevision.io.sinks, VideoSink\(path, "
               r"fps\) in drivevision.io.video_sink; each in a with block\), but found "
               + found)
    with pytest.raises(TypeError, match=message):
        Pipeline(ArraySource(3), FixedDetector(), sinks)
    with pytest.raises(TypeError, match=message):
        Pipeline([ArraySource(3), ArraySource(3)], FixedDetector(), [[], sinks])


@pytest.mark.parametrize("stages, message", [
    ("botsort", r"found a str \('botsort'\); for a tracker: stages=track_stages\('botsort'\)"),
    (["bytetrack"], r"found a str \('bytetrack'\); .*track_stages\('bytetrack'\)"),
    ([create_tracker("bytetrack")], r"found ByteTracker, a tracker: .*TrackStage\(tracker\)"),
])
def test_stages_that_are_not_stages_are_refused_before_anything_runs(tmp_path, stages,
                                                                     message):
    with pytest.raises(TypeError, match=message):
        Pipeline(ArraySource(3), FixedDetector(), stages=stages)
    with pytest.raises(TypeError, match=message):
        Pipeline([ArraySource(3), ArraySource(3)], FixedDetector(), stages=[[], stages])
    missing = DetectorConfig(weights=str(tmp_path / "none.pt"))  # loading it would fail
    with pytest.raises(TypeError, match=message):
        detect_video(ArraySource(3), tmp_path / "out.mp4", detector=missing, stages=stages)
    assert list(tmp_path.iterdir()) == []


def test_track_stages_given_uncalled_says_to_call_it(tmp_path):
    from drivevision.pipeline.track_stage import track_stages

    with pytest.raises(TypeError, match=r"got the source position 0: pass "
                                        r"stages=track_stages\('botsort'\) \(what it returns\)"):
        detect_video(ArraySource(3), tmp_path / "out.mp4", detector=FixedDetector(),
                     stages=track_stages)
    assert list(tmp_path.iterdir()) == []


def test_detect_video_with_a_path_as_detector_says_how_to_load_it(tmp_path):
    with pytest.raises(TypeError, match=r"Expected a Detector, a DetectorConfig or None, but "
                                        r"found a path \('w.pt'\); .*weights=path"):
        detect_video(ArraySource(3), tmp_path / "out.mp4", detector="w.pt")
    assert list(tmp_path.iterdir()) == []


def test_a_mot_file_without_a_tracker_is_refused_before_the_model_loads(tmp_path, clip_path):
    from drivevision.config import DetectorConfig
    from drivevision.pipeline.track_stage import track_stages

    missing = DetectorConfig(weights=str(tmp_path / "none.pt"))  # loading it would fail
    with pytest.raises(ValueError, match="Expected stages with a tracker for mot="):
        detect_video(clip_path, mot=tmp_path / "m.txt", detector=missing)
    assert list(tmp_path.iterdir()) == []
    summary = detect_video(clip_path, mot=tmp_path / "m.txt", detector=FixedDetector(),
                           stages=track_stages("bytetrack"))
    assert summary.frames == 12 and (tmp_path / "m.txt").exists()


def test_detect_video_refuses_a_frame_for_its_source_before_anything_runs(tmp_path):
    frame = np.zeros((4, 6, 3), np.uint8)
    with pytest.raises(TypeError, match=r"found a numpy array of shape \(4, 6, 3\); for "
                                        r"frames in memory use detector\(frame\)"):
        detect_video(frame, tmp_path / "out.mp4", detector=FixedDetector())
    assert list(tmp_path.iterdir()) == []
