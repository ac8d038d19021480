"""Ending a threaded pipeline early: stop, close, a break out of its results, a with
block left, Ctrl-C; every thread ends and the outputs stay playable and complete."""

import json
import os
import signal
import threading
import time

import pytest
from standins import ArraySource, FixedDetector, count_frames

from drivevision.detector import Detector
from drivevision.io.sinks import JsonlSink
from drivevision.pipeline import Pipeline
from drivevision.pipeline.runner import detect_video


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
