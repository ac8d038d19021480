"""The threaded pipeline: order, completeness, real video I/O, and failure in every stage."""

import json
import os
import signal
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from standins import ArraySource, FixedDetector, count_frames

from drivevision.config import DetectorConfig, PipelineConfig
from drivevision.detector import Detector
from drivevision.errors import StageError
from drivevision.io.sinks import JsonlSink, Sink
from drivevision.io.sources import open_source
from drivevision.io.video_sink import VideoSink
from drivevision.pipeline import Pipeline
from drivevision.pipeline.runner import detect_video
from drivevision.tracking import create_tracker


def test_real_decode_detect_encode_keeps_every_frame_in_order(tmp_path, clip_path, tiny_loaded):
    detector = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")
    out, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    summary = detect_video(clip_path, out, jsonl=jsonl, detector=detector, batch=3)
    n_in = count_frames(clip_path)
    assert summary.frames == n_in == count_frames(out) == 12
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [line["frame"] for line in lines] == list(range(n_in))
    stamps = [line["timestamp_ms"] for line in lines]
    assert all(b > a for a, b in zip(stamps, stamps[1:]))
    assert sum(len(line["detections"]) for line in lines) > 0
    cap = cv2.VideoCapture(str(out))
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (160, 96)
    assert cap.get(cv2.CAP_PROP_FPS) == pytest.approx(10.0, rel=0.01)
    assert set(summary.stages.stages()) >= {"decode", "preprocess", "inference",
                                            "postprocess", "render", "write"}


@pytest.mark.parametrize("batch", [1, 4])
def test_order_and_count_kept_with_batches(batch):
    pipeline = Pipeline(ArraySource(23), FixedDetector(0.001),
                        config=PipelineConfig(batch_size=batch, queue_size=2))
    results = list(pipeline.results())
    assert [r.frame.index for r in results] == list(range(23))
    # the stand-in's box encodes the frame's pixel value: results meet their own frames
    assert all(r.detections.xyxy[0, 2] == 10 + r.frame.index for r in results)


class CompilingDetector(FixedDetector):
    """Its first call takes ``first_s`` (compiling for the frame size), the others 1 ms."""

    def __init__(self, first_s: float):
        super().__init__(first_s)

    def infer_timed(self, frames):
        try:
            return super().infer_timed(frames)
        finally:
            self.delay_s = 0.001


@pytest.mark.parametrize("batch", [1, 3])
def test_the_summary_keeps_the_first_calls_one_off_work_out_of_the_stage_times(batch):
    summary = detect_video(ArraySource(9), detector=CompilingDetector(0.6), batch=batch)
    assert summary.frames == 9
    # the frames after the first call took about 1 ms (shared by the batch) to detect
    assert summary.stages.mean("inference") < 100
    assert summary.stages.p95("inference") < 100
    assert len(summary.stages.first) == batch
    assert summary.stages.first_ms() >= 600 / batch
    what = "first frame," if batch == 1 else f"first {batch} frames,"
    assert f"(not in the table: the {what}" in summary.format()


def test_a_run_of_one_frame_reports_that_frames_stage_times():
    summary = detect_video(ArraySource(1), detector=CompilingDetector(0.3))
    assert summary.stages.mean("inference") >= 300
    assert summary.stages.p95("inference") >= 300
    assert "not in the table" not in summary.format()


class BrokenSink(Sink):
    def __init__(self, path):
        super().__init__(path)

    def _write(self, frame, detections, annotated):
        if frame.index == 3:
            raise OSError("disk full")


def broken_render(image, detections):
    raise ValueError("bad colour")


@pytest.mark.parametrize("stage, make", [
    ("capture", lambda tmp: dict(source=ArraySource(50, fail_at=5))),
    ("infer", lambda tmp: dict(detector=FixedDetector(fail_on_call=4))),
    ("render", lambda tmp: dict(render=broken_render, draw=True)),
    ("write", lambda tmp: dict(sinks=[BrokenSink(tmp / "x.jsonl")])),
])
def test_a_failing_stage_stops_the_run_and_is_named(stage, make, tmp_path):
    parts = dict(source=ArraySource(10_000), detector=FixedDetector(0.001), sinks=[])
    parts.update(make(tmp_path))
    pipeline = Pipeline(parts.pop("source"), parts.pop("detector"), parts.pop("sinks"),
                        config=PipelineConfig(queue_size=2), **parts)
    start = time.monotonic()
    with pytest.raises(StageError) as info:
        pipeline.run()
    took = time.monotonic() - start
    for sink in pipeline.sinks[0]:
        sink.close(complete=False)  # the caller's to close (the stage threads are not)
    assert info.value.stage == stage
    assert took < 5
    assert not any(t.name.startswith("drivevision-") for t in threading.enumerate())


def test_stop_finishes_what_was_detected_and_closes_cleanly(tmp_path):
    pipeline = Pipeline(ArraySource(10_000), FixedDetector(0.002),
                        [JsonlSink(tmp_path / "d.jsonl", FixedDetector.names)])
    seen = []
    for result in pipeline.results():
        seen.append(result.frame.index)
        if len(seen) == 10:
            pipeline.stop()
    pipeline.sinks[0][0].close()
    lines = (tmp_path / "d.jsonl").read_text().splitlines()
    assert seen == list(range(len(seen))) and len(lines) == len(seen) < 10_000


@pytest.mark.timeout(60)
def test_a_stop_starts_no_detector_call_and_finishes_the_one_running(tmp_path):
    """A stop ran one more detector call on every live source's last frame: with 3 sources
    on a loaded CPU the exit took seconds. The call under way when it came still ends in
    the outputs."""
    gate = threading.Event()  # holds the first call until the stop
    detector = FixedDetector(gate=gate)
    sources = [ArraySource(100_000, live=True, period=0.005) for _ in range(3)]
    sinks = [[JsonlSink(tmp_path / f"{i}.jsonl", FixedDetector.names)] for i in range(3)]
    pipeline = Pipeline(sources, detector, sinks)

    def stop_during_the_first_call():
        deadline = time.monotonic() + 20  # every source has frames waiting by then
        while time.monotonic() < deadline and not (
                detector.calls == 1 and all(s.captured >= 30 for s in pipeline.stats)):
            time.sleep(0.01)
        pipeline.stop()
        gate.set()

    stopper = threading.Thread(target=stop_during_the_first_call)
    stopper.start()
    results = list(pipeline.results())
    stopper.join()
    for sink in (ss[0] for ss in sinks):
        sink.close()
    assert all(s.captured >= 30 for s in pipeline.stats)
    assert detector.calls == 1 and list(pipeline.batch_sizes) == [len(results)] and results
    for i, stats in enumerate(pipeline.stats):
        mine = [r.frame.index for r in results if r.frame.source_id == i]
        lines = [json.loads(line)["frame"] for line in
                 (tmp_path / f"{i}.jsonl").read_text().splitlines()]
        assert lines == mine and stats.processed == len(mine)
        assert stats.processed + stats.dropped == stats.captured  # the rest: dropped
    assert not any(t.name.startswith("drivevision-") for t in threading.enumerate())


def test_breaking_out_of_results_stops_every_thread():
    pipeline = Pipeline(ArraySource(10_000), FixedDetector())
    for result in pipeline.results():
        if result.frame.index == 5:
            break


def _stage_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("drivevision-")]


def test_leaving_a_with_block_ends_a_half_read_run_and_gives_ctrl_c_back():
    before = signal.getsignal(signal.SIGINT)
    with Pipeline(ArraySource(10_000), FixedDetector()) as pipeline:
        it = pipeline.results()
        assert next(it).frame.index == 0
        assert _stage_threads()  # kept by `it`, which is still referenced
        assert signal.getsignal(signal.SIGINT) is not before  # taken over while it runs
    assert _stage_threads() == []
    assert signal.getsignal(signal.SIGINT) is before
    assert list(it) == []  # closed: nothing more comes
    assert pipeline.stats[0].processed < 10_000


def test_an_exception_in_a_with_block_ends_every_thread_and_is_raised_unchanged():
    with pytest.raises(ZeroDivisionError), Pipeline(ArraySource(10_000),
                                                    FixedDetector()) as pipeline:
        it = pipeline.results()
        next(it)
        raise ZeroDivisionError
    assert _stage_threads() == []
    assert list(it) == []  # still referenced until here, and closed


def test_a_with_block_left_before_results_is_read_ends_the_started_threads():
    with Pipeline(ArraySource(10_000), FixedDetector()) as pipeline:
        it = pipeline.results()  # starts the threads; never iterated
    assert _stage_threads() == []
    assert list(it) == []


def test_close_from_another_thread_ends_the_loop_reading_the_results():
    pipeline = Pipeline(ArraySource(10_000), FixedDetector(0.002))
    closer = threading.Timer(0.3, pipeline.close)
    closer.start()
    seen = sum(1 for _ in pipeline.results())
    closer.join()
    assert 0 < seen < 10_000
    assert _stage_threads() == []


@pytest.mark.parametrize("first", ["run", "break"])
def test_a_pipeline_that_has_run_refuses_to_run_again_rather_than_yield_nothing(first):
    pipeline = Pipeline(ArraySource(20), FixedDetector())
    if first == "run":
        assert pipeline.run() == 20
    else:
        assert next(iter(pipeline.results())).frame.index == 0
    for again in (pipeline.results, pipeline.run):
        with pytest.raises(RuntimeError, match="Expected a new Pipeline: this one has run"):
            again()
    assert len(list(Pipeline(ArraySource(20), FixedDetector()).results())) == 20


def test_interrupt_keeps_a_playable_video_and_complete_jsonl(tmp_path, clip_path, tiny_loaded):
    """Ctrl-C (KeyboardInterrupt on the caller's thread) ends the run with valid outputs."""
    detector = Detector(tiny_loaded, device="cpu", conf=0.0, classes="all")
    out, jsonl = tmp_path / "out.mp4", tmp_path / "out.jsonl"
    calls = []

    def interrupt_after_three(result):
        calls.append(result)
        if len(calls) == 3:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        detect_video(clip_path, out, jsonl=jsonl, detector=detector,
                     on_result=interrupt_after_three)
    lines = jsonl.read_text().splitlines()
    assert len(lines) >= 3 and [json.loads(x)["frame"] for x in lines] == list(range(len(lines)))
    assert count_frames(out) == len(lines)


def test_an_interrupted_strided_run_counts_the_input_read_up_to_its_last_frame(tmp_path):
    """The reader runs ahead of the detector: frames it read past the last one detected
    when Ctrl-C came are not counted as read (nor in the input's frames per second)."""
    from drivevision.synthetic import write_clip

    clip, jsonl = tmp_path / "clip.mp4", tmp_path / "d.jsonl"
    write_clip(clip, 200, width=64, height=48, fps=10.0, seed=1)
    seen = []

    def ctrl_c_at_the_third(result):
        seen.append(result.frame.index)
        if len(seen) == 3:
            time.sleep(0.5)  # the reader fills its queue meanwhile
            os.kill(os.getpid(), signal.SIGINT)

    summary = detect_video(clip, jsonl=jsonl, detector=FixedDetector(0.002), frame_stride=4,
                           on_result=ctrl_c_at_the_third)
    last = json.loads(jsonl.read_text().splitlines()[-1])["frame"]
    assert summary.interrupted and summary.read == last + 1 < 200
    assert f"{last + 1} frames read, every 4th detected" in summary.format()


class _FailsOnceWritten(ArraySource):
    """Fails at frame ``fail_at`` only once the sink ``written`` reports a frame written (at
    most 10 s later), so that the failed run has something to keep."""

    def __init__(self, n: int, fail_at: int, written: threading.Event):
        super().__init__(n)
        self.fail_at_, self.written = fail_at, written

    def __iter__(self):
        for frame in super().__iter__():
            if frame.index == self.fail_at_:
                self.written.wait(10.0)
                raise OSError("camera unplugged")
            yield frame


class _SignallingVideoSink(VideoSink):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.written = threading.Event()

    def write(self, frame, detections, annotated):
        super().write(frame, detections, annotated)
        self.written.set()


def test_failed_run_keeps_partial_outputs_under_a_partial_name(tmp_path):
    out = tmp_path / "out.mp4"
    out.write_bytes(b"precious")
    with pytest.raises(StageError), _SignallingVideoSink(out, 10.0) as video:
        source = _FailsOnceWritten(40, fail_at=20, written=video.written)
        Pipeline(source, FixedDetector(), [video]).run()
    assert out.read_bytes() == b"precious"  # what the user had is not lost
    partial = tmp_path / "out.partial.mp4"
    assert partial.exists() and 0 < count_frames(partial) <= 20


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


def test_detect_video_skips_an_image_too_thin_for_the_model_as_the_command_does(
        tmp_path, tiny_loaded):
    folder = tmp_path / "frames"
    folder.mkdir()
    cv2.imwrite(str(folder / "a.png"), np.zeros((48, 64, 3), np.uint8))
    cv2.imwrite(str(folder / "b.png"), np.zeros((3, 3000, 3), np.uint8))
    detector = Detector(tiny_loaded, device="cpu")
    summary = detect_video(str(folder), jsonl=tmp_path / "d.jsonl", detector=detector)
    assert summary.frames == 1 and any("b.png" in note and "too thin" in note
                                       for note in summary.notes)


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


def test_a_folder_of_images_is_read_in_natural_order(tmp_path):
    for i in (10, 2, 1):
        cv2.imwrite(str(tmp_path / f"frame{i}.png"), ArraySource(1).__iter__().__next__().image)
    source = open_source(tmp_path)
    assert [p.name for p in source.paths] == ["frame1.png", "frame2.png", "frame10.png"]


def _tasks() -> set[str]:
    return set(os.listdir("/proc/self/task"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux's /proc")
def test_starting_a_pipeline_ends_the_idle_openmp_team_of_the_thread_starting_it():
    """The thread that loaded and warmed up the model keeps an idle OpenMP team; while it
    exists, libgomp has the detector's own team (on the infer thread) sleep at every
    barrier instead of spinning, which cost the pipeline 5-10% on two cores."""
    torch = pytest.importorskip("torch")
    with open("/proc/self/maps") as maps:
        if "libgomp" not in maps.read():
            pytest.skip("torch here does not use GNU OpenMP")
    seen: dict[str, object] = {}

    def loading_thread():  # a fresh thread, so that its team is made here
        threads = torch.get_num_threads()
        torch.set_num_threads(2)
        try:
            before = _tasks()
            torch.ones(2**22).add_(1)  # a parallel region: a team of this thread and one
            seen["team"] = _tasks() - before
            results = list(Pipeline(ArraySource(5), FixedDetector(0.001)).results())
            seen["frames"] = len(results)
            seen["after"] = _tasks()
        finally:
            torch.set_num_threads(threads)

    thread = threading.Thread(target=loading_thread)
    thread.start()
    thread.join(30)
    assert len(seen["team"]) == 1  # the worker of the team
    assert seen["frames"] == 5
    assert not seen["team"] & seen["after"]  # ended when the pipeline started


def test_a_printed_summary_shows_the_stage_means_not_an_object_address():
    from drivevision.pipeline.stats import RunSummary, StageStats

    stages = StageStats(warmup=0)
    stages.add({"decode": 2.0, "inference": 10.0})
    stages.add({"decode": 4.0, "inference": 30.0})
    text = repr(RunSummary(2, 1.0, {"car": 3}, stages, []))
    assert "object at 0x" not in text
    assert "stages=StageStats(mean ms: decode=3.0, inference=20.0)" in text


def test_a_printed_source_stats_shows_its_counts_on_one_line():
    from drivevision.pipeline.stats import SourceStats

    stats = SourceStats()
    for _ in range(3):
        stats.on_capture()
    stats.on_drop()
    stats.on_result(12.0)
    text = repr(stats)
    assert text.startswith("SourceStats(captured=3, processed=1, dropped=1, input_fps=")
    assert ", detector_fps=" in text and "\n" not in text


def test_a_printed_result_shows_the_frame_image_as_its_shape_not_its_pixels(clip_path):
    with open_source(clip_path) as source:
        result = next(iter(Pipeline(source, FixedDetector(), draw=True).results()))
    assert result.annotated.shape == (96, 160, 3)
    assert repr(result.frame) == ("Frame(index=0, timestamp_ms=0.0, image=<uint8 (96, 160, 3)>, "
                                  "source_id=0, file=None)")
    text = repr(result)
    assert text.startswith(f"Result(frame={result.frame!r}, detections=Detections(xyxy=")
    assert "annotated" not in text and len(text) < 600


def test_a_printed_tracked_result_shows_its_trails_as_a_count_not_their_points():
    from drivevision.detections import Detections
    from drivevision.io.frames import Frame
    from drivevision.pipeline import Result

    frame = Frame(0, 0.0, np.zeros((96, 160, 3), np.uint8), 0.0)
    trails = {t: np.full((30, 2), 5.0 * t, np.float32) for t in range(1, 13)}
    result = Result(frame, Detections.empty(), trails=trails)
    text = repr(result)
    assert text.endswith(", trails=<12 tracks>)") and "\n" not in text and len(text) < 400
    assert repr(Result(frame, Detections.empty())).endswith(", trails=None)")


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
