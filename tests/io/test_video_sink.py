"""The annotated video as players see it: the container its suffix names, and in AVI (one
frame rate, no timestamps) the input's frame rate and frame count."""

from __future__ import annotations

import av
import cv2
import numpy as np
import pytest
from standins import FixedDetector, count_frames

from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.io.live_sinks import LiveVideoSink
from drivevision.pipeline.runner import detect_video
from drivevision.synthetic import write_clip

BRANDS = {b"isom": "mp4", b"iso2": "mp4", b"mp41": "mp4", b"mp42": "mp4",  # browsers' MP4
          b"qt  ": "quicktime"}


def container_kind(path) -> str:
    """"mp4", "quicktime" or "matroska" from a file's first bytes (else those bytes)."""
    head = path.read_bytes()[:12]
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[4:8] == b"ftyp" and head[8:12] in BRANDS:
        return BRANDS[head[8:12]]
    return repr(head)


def top_boxes(path) -> list[bytes]:
    """The four-letter types of an ISO BMFF / QuickTime file's top-level boxes, in order."""
    data, pos, kinds = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        kinds.append(data[pos + 4:pos + 8])
        pos += int.from_bytes(data[pos:pos + 4], "big")
    return kinds


@pytest.mark.parametrize("name, kind", [("out.mp4", "mp4"), ("OUT.MP4", "mp4"),
                                        ("out.mov", "quicktime"), ("out.mkv", "matroska")])
def test_finished_video_is_the_container_its_suffix_names(tmp_path, clip_path, name, kind):
    out = tmp_path / name
    detect_video(clip_path, out, detector=FixedDetector())
    assert container_kind(out) == kind
    assert count_frames(out) == 12
    if kind != "matroska":  # copied out of its fragments: index first, frame count stored
        boxes = top_boxes(out)
        assert b"moof" not in boxes and boxes.index(b"moov") < boxes.index(b"mdat")
        with av.open(str(out)) as container:
            assert container.streams.video[0].frames == 12


def read_avi(path) -> tuple[float, int, list[float]]:
    """Frame rate and frame count from the AVI's header, and each decoded frame's time (ms)
    as OpenCV reports it."""
    capture = cv2.VideoCapture(str(path))
    fps, count, times = capture.get(cv2.CAP_PROP_FPS), capture.get(cv2.CAP_PROP_FRAME_COUNT), []
    while capture.read()[0]:
        times.append(capture.get(cv2.CAP_PROP_POS_MSEC))
    capture.release()
    return fps, int(count), times


@pytest.mark.parametrize("fps", [10.0, 30000 / 1001])
def test_avi_has_the_input_frame_rate_and_frame_count(tmp_path, fps):
    clip, out = tmp_path / "clip.mp4", tmp_path / "out.avi"
    write_clip(clip, 8, width=160, height=96, fps=fps, seed=1)
    detect_video(clip, out, detector=FixedDetector())
    rate, count, times = read_avi(out)
    assert rate == pytest.approx(fps, rel=1e-4) and count == 8
    assert times == pytest.approx([i * 1000.0 / fps for i in range(8)], abs=0.5)  # from 0


@pytest.mark.parametrize("name", ["out.mp4", "out.avi"])
def test_a_stride_past_the_clip_writes_its_first_frame(tmp_path, clip_path, name):
    """--frame-stride 99999 on a 10 fps clip: a video of 1/9999.9 fps, which rounded to a
    frame rate of denominator <= 1001 is 0, and the writer failed dividing by it."""
    out = tmp_path / name
    summary = detect_video(clip_path, out, detector=FixedDetector(), frame_stride=99999)
    assert summary.frames == 1 and count_frames(out) == 1


@pytest.mark.parametrize("width, height", [(64, 48), (65, 49)])  # H.264; MPEG-4 fallback
def test_live_avi_is_constant_rate_at_the_measured_fps(tmp_path, width, height):
    """A live run's frames come at uneven times; AVI has one rate: the kept frames follow one
    another at the rate of the median time between them (0.1 s here)."""
    out = tmp_path / "live.avi"
    captured = [0.0, 0.04, 0.5, 0.52, 1.9, 2.0]
    with LiveVideoSink(out, fps=10.0) as sink:
        for i, t in enumerate(captured):
            image = np.full((height, width, 3), 30 * i, np.uint8)
            sink.write(Frame(i, t * 1000.0, image, captured_at=t), Detections.empty(), image)
    rate, count, times = read_avi(out)
    assert rate == pytest.approx(10.0) and count == len(captured)
    assert times == pytest.approx([100.0 * i for i in range(len(captured))], abs=0.5)


@pytest.mark.parametrize("count", [40, 5])  # a measurement's worth and more; fewer
def test_live_avi_takes_the_rate_measured_on_the_first_frames_not_the_claimed_one(tmp_path,
                                                                                  count):
    """OpenCV claims 25 fps for any MJPEG stream; a detector that keeps 5 frames a second
    would have made the AVI play 5x too fast."""
    out = tmp_path / "live.avi"
    with LiveVideoSink(out, fps=25.0) as sink:
        for i in range(count):
            image = np.full((48, 64, 3), 5 * i, np.uint8)
            t = 0.2 * i + (1.5 if i else 0.0)  # the first frame's detection took longer
            sink.write(Frame(i, t * 1000.0, image, captured_at=t), Detections.empty(), image)
    rate, frames, times = read_avi(out)
    assert rate == pytest.approx(5.0) and frames == count
    assert times == pytest.approx([200.0 * i for i in range(count)], abs=0.5)
    assert sink.notes == [f"{out}: AVI has one frame rate: 5 fps, measured on the first "
                          f"{min(count, 16)} frames kept (not the source's 25); MP4 or MKV "
                          "keep each frame's time"]


@pytest.mark.parametrize("suffix", ["mp4", "avi"])
def test_live_video_of_a_stream_with_its_own_times_follows_them_not_the_arrivals(tmp_path,
                                                                                 suffix):
    """HLS hands over a segment at once: frames 0.2 s apart on the stream's clock (every
    other frame of a 10 fps stream kept) arrive in bursts; the video shows them 0.2 s apart."""
    out = tmp_path / f"live.{suffix}"
    arrived = [0.0, 0.001, 0.002, 1.0, 1.001, 1.002, 2.0, 2.001]
    with LiveVideoSink(out, fps=10.0, stream_time=True) as sink:
        for i, t in enumerate(arrived):
            image = np.full((48, 64, 3), 30 * i, np.uint8)
            sink.write(Frame(2 * i, 5000.0 + 200.0 * i, image, captured_at=t),
                       Detections.empty(), image)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        shown = [float(f.pts * stream.time_base) for f in container.decode(stream)]
    steps = [b - a for a, b in zip(shown, shown[1:])]
    assert steps == pytest.approx([0.2] * (len(arrived) - 1), abs=0.002)
    assert sink.notes == ([] if suffix == "mp4" else [
        f"{out}: AVI has one frame rate: 5 fps, measured on the first 8 frames kept (not the "
        "source's 10); MP4 or MKV keep each frame's time"])


def test_live_avi_of_one_frame_has_the_nominal_rate(tmp_path):
    out = tmp_path / "live.avi"
    image = np.zeros((48, 64, 3), np.uint8)
    with LiveVideoSink(out, fps=25.0) as sink:
        sink.write(Frame(0, 0.0, image, captured_at=3.0), Detections.empty(), image)
    assert read_avi(out)[:2] == (pytest.approx(25.0), 1) and sink.notes == []


def test_live_mp4_frames_reach_the_part_file_as_they_are_made(tmp_path):
    """A killed live run keeps its part file: the encoder may not hold frames back (x264's
    lookahead kept 11, many seconds at a CPU detector's rate), so each closed fragment (one a
    second) plays; the finished file lasts to its last frame."""
    out, rng = tmp_path / "live.mp4", np.random.default_rng(0)
    captured = [0.0, 0.5, 1.0, 1.5, 2.0, 2.5]
    with LiveVideoSink(out, fps=25.0) as sink:
        for i, t in enumerate(captured):
            image = rng.integers(0, 255, (96, 128, 3), np.uint8)
            sink.write(Frame(i, t * 1000.0, image, captured_at=t), Detections.empty(), image)
        with av.open(str(sink.tmp)) as part:  # what a SIGKILL now would leave
            assert sum(1 for _ in part.decode(video=0)) >= 4
    with av.open(str(out)) as finished:
        times = [frame.time for frame in finished.decode(video=0)]
        assert times == pytest.approx(captured, abs=0.01)
        assert finished.duration / 1e6 >= captured[-1]
