"""``Source.keep_range``: a video seeks to the keyframe before the start and stops at the end,
and every frame keeps the index and time a full read gives it; a folder maps time to images
by its frame rate."""

import re
from fractions import Fraction

import av
import cv2
import numpy as np
import pytest

from drivevision.errors import SourceError
from drivevision.io.sources import open_source
from drivevision.io.streams import Reconnect, StreamSource


def write_gop_clip(path, n_frames: int, *, rate: Fraction, gop: int) -> None:
    """An H.264 clip with three B-frames and a keyframe every ``gop`` frames: the frames
    come out of the decoder in another order than their packets, which a seek must get right."""
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=rate, width=64, height=48, pix_fmt="yuv420p",
                                options={"g": str(gop), "keyint_min": str(gop), "bf": "3",
                                         "sc_threshold": "0"})
        for i in range(n_frames):
            image = np.full((48, 64, 3), (i * 4) % 256, np.uint8)
            image[:, i % 64] = 255  # motion, so B-frames are worth it to the encoder
            out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        out.mux(stream.encode())


@pytest.fixture(scope="module", params=[("mp4", Fraction(10), 60),
                                        ("mkv", Fraction(10), 60),
                                        ("mp4", Fraction(30000, 1001), 180)],
                ids=["mp4-10fps", "mkv-10fps", "mp4-29.97fps"])
def gop_clip(request, tmp_path_factory):
    suffix, rate, n = request.param
    path = tmp_path_factory.mktemp("gop") / f"clip.{suffix}"
    write_gop_clip(path, n, rate=rate, gop=10)
    with av.open(str(path)) as container:  # the premise: B-frames and several keyframes
        packets = [p for p in container.demux(container.streams.video[0]) if p.size]
    pts = [p.pts for p in packets]
    assert pts != sorted(pts) and sum(p.is_keyframe for p in packets) >= 6
    return str(path)


def read(path, start=None, end=None, stride=1):
    with open_source(path) as source:
        source.keep_every(stride)
        if start is not None or end is not None:
            source.keep_range(start, end)
        frames = [(f.index, f.timestamp_ms) for f in source]
    return frames, source


@pytest.mark.parametrize("start, end", [(2.0, None), (2.35, 2.95), (None, 1.5), (4.5, 5.9),
                                        (0.0, 0.35)])
def test_a_range_has_the_indices_and_times_of_the_same_frames_in_a_full_read(
        gop_clip, start, end):
    full, _ = read(gop_clip)
    frames, source = read(gop_clip, start, end)
    expected = [(i, ms) for i, ms in full
                if (start is None or ms >= start * 1000) and (end is None or ms < end * 1000)]
    assert frames == expected and len(expected) >= 3
    assert source.span == (expected[0][0], expected[-1][0])
    assert source.notes == []  # a range is not a truncated file


def test_a_range_with_a_stride_keeps_the_multiples_of_the_stride_on_the_input_indices(
        gop_clip):
    full, _ = read(gop_clip)
    frames, source = read(gop_clip, 2.35, 4.0, stride=4)
    in_range = [(i, ms) for i, ms in full if 2350 <= ms < 4000]
    assert frames == [(i, ms) for i, ms in in_range if i % 4 == 0]
    assert source.passed == len(in_range) - len(frames) and source.span[0] == in_range[0][0]


def test_a_late_start_seeks_instead_of_decoding_the_beginning(gop_clip):
    frames, source = read(gop_clip, 1.75)
    # decoded before the start: the frames from the keyframe before it, less than a GOP
    # (a read from the beginning would decode all the frames before the start)
    assert frames[0][0] > 10 and source.lead_in < 10


class LateSeek:
    """A container whose first seek lands a second after the time asked for."""

    def __init__(self, container):
        self.container, self.seeks = container, []

    def seek(self, offset, *, stream, **kwargs):
        late = 0 if self.seeks else int(1 / stream.time_base)
        self.seeks.append(offset)
        return self.container.seek(offset + late, stream=stream, **kwargs)

    def __getattr__(self, name):
        return getattr(self.container, name)


def test_a_seek_that_lands_after_the_start_reads_from_the_beginning_instead(gop_clip):
    full, _ = read(gop_clip)
    with open_source(gop_clip) as source:
        source._container = LateSeek(source._container)
        source.keep_range(2.35, 4.0)
        frames = [(f.index, f.timestamp_ms) for f in source]
        assert len(source._container.seeks) == 2  # the late seek, then back to the beginning
    assert frames == [(i, ms) for i, ms in full if 2350 <= ms < 4000]


def test_a_seek_that_finds_no_keyframe_reads_from_the_beginning_instead(tmp_path):
    """An MPEG-TS recording with its only keyframe first (a dashcam's .ts): the seek to the
    start lands past it and nothing decodes; the range was "no frame could be decoded"."""
    path = tmp_path / "drive.ts"
    write_gop_clip(path, 30, rate=Fraction(10), gop=100)
    with open_source(str(path)) as whole:
        everything = [(f.index, f.timestamp_ms) for f in whole]
    with open_source(str(path)) as source:
        source.keep_range(1.0, 1.5)
        ranged = [(f.index, f.timestamp_ms) for f in source]
    assert ranged == [(i, t) for i, t in everything if 1000 <= t < 1500] and len(ranged) == 5


def test_a_range_that_ends_stops_reading_there(tmp_path):
    """The packets after the end are never read: a file damaged only after the range gives
    no note about it, while a full read of it does."""
    path = tmp_path / "damaged.mkv"  # Matroska: the frames' packets lie in file order
    write_gop_clip(path, 60, rate=Fraction(10), gop=10)
    data = bytearray(path.read_bytes())
    cut = slice(int(len(data) * 0.7), int(len(data) * 0.8))
    data[cut] = np.random.default_rng(0).integers(0, 256, cut.stop - cut.start, np.uint8).tobytes()
    path.write_bytes(bytes(data))
    _, whole = read(str(path))
    assert any("damaged" in note for note in whole.notes)  # the damage shows on a full read
    frames, ranged = read(str(path), None, 2.0)
    assert frames[-1][0] == 19 and ranged.notes == []


def test_a_folder_maps_time_to_images_by_its_frame_rate(tmp_path):
    for i in range(10):
        cv2.imwrite(str(tmp_path / f"f{i}.png"), np.full((8, 8, 3), i, np.uint8))
    with open_source(str(tmp_path), fps=5.0) as folder:  # image i is at i/5 s
        folder.keep_range(0.4, 1.2)
        frames = [(f.index, f.file, f.timestamp_ms) for f in folder]
    assert frames == [(2, "f2.png", 400.0), (3, "f3.png", 600.0), (4, "f4.png", 800.0),
                      (5, "f5.png", 1000.0)]
    assert folder.span == (2, 5) and folder.notes == []


@pytest.mark.parametrize("start, end, message", [
    (-1.0, None, "Expected a start time >= 0 seconds, but got -1.0"),
    (None, float("nan"), "Expected a end time >= 0 seconds, but got nan"),
    (2.0, 2.0, "Expected the end after the start, but got start 0:02 and end 0:02"),
    (3.0, 1.0, "Expected the end after the start, but got start 0:03 and end 0:01"),
    (1.2, None, "The start, 0:01.2, is at or past the end of {clip}, which lasts 0:01.2"),
    (0.51, 0.55, "No frame of {clip} lies in 0:00.51 to 0:00.55: it has a frame every 0.1 s"),
])
def test_a_range_that_cannot_hold_a_frame_is_refused(clip_path, start, end, message):
    with open_source(clip_path) as source:  # 12 frames at 10 fps
        with pytest.raises(ValueError, match=re.escape(message.format(clip=clip_path))):
            source.keep_range(start, end)
        assert len(list(source)) == 12  # a refused range leaves the source whole


def test_a_range_with_no_frame_the_stride_keeps_is_refused_before_reading(clip_path):
    with open_source(clip_path) as source:  # 12 frames at 10 fps
        source.keep_every(5)
        with pytest.raises(ValueError, match=re.escape(
                f"No frame of {clip_path} in 0:00.6 to 0:00.9 is one the frame stride keeps: "
                "the range holds frames 6-8, the stride keeps multiples of 5")):
            source.keep_range(0.6, 0.9)
        assert [f.index for f in source] == [0, 5, 10]  # a refused range leaves the source whole


def test_a_range_with_no_frame_the_stride_keeps_says_so_after_reading_when_its_length_is_unknown(
        clip_path):
    with open_source(clip_path) as source:  # 12 frames at 10 fps
        source.frame_count = None  # as a file that stores no frame count
        source.keep_every(5)
        source.keep_range(1.1)  # frame 11 only
        with pytest.raises(SourceError, match=re.escape(
                f"No frame of {clip_path} in 0:01.1 to the end is one the frame stride keeps: "
                "the range holds frame 11, the stride keeps multiples of 5")):
            list(source)


def test_a_range_is_refused_for_live_sources(clip_path):
    with open_source(clip_path, realtime=True) as paced:  # a file paced: it keeps its range
        paced.keep_range(1.0)
        assert [f.index for f in paced][0] == 10
    stream = StreamSource("rtsp://cam", cv2.VideoCapture, Reconnect())
    with pytest.raises(ValueError, match="rtsp://cam is read live"):
        stream.keep_range(None, 5.0)
