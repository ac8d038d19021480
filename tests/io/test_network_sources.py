"""Sources over HTTP on loopback: an MJPEG stream read live, and recordings (HLS, MP4,
MPEG-TS) read once to their end as files."""

from __future__ import annotations

from pathlib import Path

import pytest
from mjpeg_server import MjpegTestServer, read_seq, read_tint
from written_media import served

from drivevision.io.sources import open_source
from drivevision.io.streams import StreamSource


def test_mjpeg_stream_frames_in_order():
    with MjpegTestServer(fps=30, tint=2) as server, open_source(server.url) as source:
        assert isinstance(source, StreamSource) and source.live
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 10:
                break
    assert [f.index for f in frames] == list(range(10))
    seqs = [read_seq(f.image) for f in frames]
    assert seqs == sorted(seqs) and len(set(seqs)) == 10
    assert all(read_tint(f.image) == 2 and f.image.shape == (120, 160, 3) for f in frames)
    assert all(b.timestamp_ms > a.timestamp_ms for a, b in zip(frames, frames[1:]))


def test_hls_playlist_over_http_is_read_once_to_its_end(tmp_path):
    """HLS: a finished (VOD) playlist and MPEG-TS segments written here: a recording, so its
    end is the input's end, not an outage to reconnect after (which replayed it)."""
    import av
    from mjpeg_server import make_frame

    options = {"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"}
    with av.open(str(tmp_path / "index.m3u8"), "w", format="hls", options=options) as out:
        stream = out.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(60):
            out.mux(stream.encode(av.VideoFrame.from_ndarray(make_frame(i, 1), format="bgr24")))
        out.mux(stream.encode(None))

    with served(tmp_path) as url, open_source(f"{url}/index.m3u8") as source:
        assert not source.live  # every frame kept, as for a file
        seqs = [read_seq(frame.image) for frame in source]  # across segment boundaries
    assert seqs == list(range(60))
    assert source.reconnects == 0 and not source.gaps


def test_a_video_file_over_http_is_read_as_a_file(clip_path):
    with served(Path(clip_path).parent) as url, \
            open_source(f"{url}/{Path(clip_path).name}") as source:
        assert not source.live and source.frame_count == 12
        frames = list(source)
    assert [f.index for f in frames] == list(range(12))
    with open_source(clip_path) as local:
        assert [f.timestamp_ms for f in local] == [f.timestamp_ms for f in frames]


@pytest.mark.timeout(30)
def test_a_ts_recording_served_without_range_requests_is_read_once_as_a_file(tmp_path):
    """MPEG-TS stores no duration, and a server without range requests lets FFmpeg find
    none: its known length (Content-Length) still tells a recording from a live stream. It
    was read as one, reopened at its end and replayed from its start, and never ended."""
    from fractions import Fraction

    from tests.io.test_source_ranges import write_gop_clip

    write_gop_clip(tmp_path / "drive.ts", 20, rate=Fraction(10), gop=10)
    with served(tmp_path) as url, open_source(f"{url}/drive.ts") as source:
        assert not source.live
        frames = list(source)
    assert [f.index for f in frames] == list(range(20))
