"""The threaded pipeline's runs: every frame kept in order through real video I/O, with
batches, the stage times, a folder of images, and the threads it starts."""

import json
import os
import threading

import cv2
import numpy as np
import pytest
from standins import ArraySource, FixedDetector, count_frames

from drivevision.config import PipelineConfig
from drivevision.detector import Detector
from drivevision.io.sources import open_source
from drivevision.pipeline import Pipeline
from drivevision.pipeline.runner import detect_video


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
