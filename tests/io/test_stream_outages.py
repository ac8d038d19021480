"""A live stream's outages: reopened after a stall, given up after its reconnects, woken
by an interrupt; frame indices and times across a gap (scripted streams, fake clock)."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest
from mjpeg_server import MjpegTestServer

from drivevision.io.sources import open_source
from drivevision.io.streams import Reconnect, StreamSource

FAST = Reconnect(stall_timeout=0.5, backoff_initial=0.05, backoff_max=0.2)


def test_frozen_stream_is_reopened_after_the_stall_timeout():
    with MjpegTestServer(fps=30, freeze_after=4) as server, \
            open_source(server.url, reconnect=FAST) as source:
        frames = []
        for frame in source:
            frames.append(frame)
            if len(frames) == 9:
                break
    assert source.reconnects >= 2
    indices = [f.index for f in frames]
    assert indices[:4] == list(range(4)) and indices == sorted(set(indices))
    gap = source.gaps[0]
    assert gap.reason == "no frame for 0.5 s" and 0.4 < gap.seconds < 3.0
    assert gap.next_index - gap.last_index > 5  # 30 fps: the frames of 0.5 s and more lost


def command_policy(**settings) -> Reconnect:
    """The policy ``drivevision live --stall-timeout S --max-reconnects N`` runs."""
    from argparse import Namespace

    from drivevision.cli.live import reconnect_policy

    return replace(reconnect_policy(Namespace(**settings)), backoff_initial=0.05)


@pytest.mark.parametrize("make, named", [
    (lambda: Reconnect(stall_timeout=1.0, max_reconnects=2, backoff_initial=0.05),
     "max_reconnects=2"),  # the keyword as typed: a Python caller has no --max-reconnects
    (lambda: command_policy(stall_timeout=1.0, max_reconnects=2), "--max-reconnects 2"),
])
def test_stream_gone_for_good_ends_after_max_reconnects(make, named):
    policy = make()
    server = MjpegTestServer(fps=30).__enter__()
    source = open_source(server.url, reconnect=policy)
    frames = []
    start = time.monotonic()
    for frame in source:
        frames.append(frame)
        if len(frames) == 3:
            server.__exit__(None, None, None)
    source.close()
    assert time.monotonic() - start < 8.0
    assert source.gave_up and source.reconnects == 0
    last = source.gaps[-1]
    assert last.next_index is None and last.attempts == 2
    assert source.notes[-1].endswith(f"; gave up after 2 reconnect attempts ({named})")


def test_interrupt_ends_a_waiting_stream():
    policy = Reconnect(stall_timeout=1.0, backoff_initial=5.0, backoff_max=5.0)
    server = MjpegTestServer(fps=30).__enter__()
    source = open_source(server.url, reconnect=policy)
    it = iter(source)
    next(it)
    server.__exit__(None, None, None)
    start = time.monotonic()
    timer = threading.Timer(0.3, source.interrupt)
    timer.start()
    list(it)  # frames still buffered, then the outage: waits in the backoff until interrupted
    assert time.monotonic() - start < 3.0  # not the 5 s backoff
    timer.join()
    source.close()


def scripted(monkeypatch, runs, fps=0.0, max_reconnects=3):
    """A ``StreamSource`` reading a ``ScriptedStream`` on its fake clock, and its frames."""
    from standins import ScriptedStream

    from drivevision.io import streams

    stream = ScriptedStream(runs, fps)
    monkeypatch.setattr(streams, "time", stream.clock)
    policy = Reconnect(stall_timeout=5.0, max_reconnects=max_reconnects, backoff_initial=0.001)
    source = StreamSource("rtsp://cam", stream.opener, policy)
    return source, list(source)


def test_frame_indices_go_on_after_an_outage_by_the_frames_it_lost(monkeypatch):
    # 20 frames at 25 fps, then 2 s to reconnect: the next frame comes 2.04 s after the last
    source, frames = scripted(monkeypatch, [(20, 0.04, 0.0), (5, 0.04, 2.0)], fps=90000.0)
    assert [f.index for f in frames] == [*range(20), *range(70, 75)]  # 50 lost, 51 later
    gap = source.gaps[0]
    assert (gap.last_index, gap.next_index) == (19, 70)
    assert gap.seconds == pytest.approx(2.04)  # the stream's claim (90000 fps) is not used


def test_with_one_frame_before_an_outage_the_claimed_rate_counts_the_frames_lost(monkeypatch):
    _, frames = scripted(monkeypatch, [(1, 0.1, 0.0), (2, 0.1, 1.0)], fps=10.0)
    assert [f.index for f in frames] == [0, 11, 12]  # 1.1 s at 10 fps: 10 frames lost
    _, frames = scripted(monkeypatch, [(1, 0.1, 0.0), (2, 0.1, 1.0)], fps=0.0)
    assert [f.index for f in frames] == [0, 1, 2]  # no rate known: none counted


def test_a_stream_that_never_gave_a_frame_starts_at_index_zero(monkeypatch):
    source, frames = scripted(monkeypatch, [(0, 0.04, 0.0), (3, 0.04, 2.0)], fps=25.0)
    assert [f.index for f in frames] == [0, 1, 2] and source.gaps[0].next_index == 0


@pytest.mark.parametrize("uri, kept", [("http://cam/live.m3u8", 6), ("rtsp://cam/live", 11)])
def test_frames_a_reopened_stream_hands_over_again_are_left_out(monkeypatch, uri, kept):
    """A frozen HLS playlist, read anew, starts again at segments already read: the frames
    with the times of frames already handed out are left out, up to the first new one. An
    RTSP session's times start afresh, and may meet a short one's before: all are kept."""
    from standins import ScriptedStream

    from drivevision.io import streams

    stamps = [[0, 100, 200, 300], [100, 200, 300, 400, 500], [200, 300]]
    stream = ScriptedStream([(4, 0.1, 0.0), (5, 0.1, 1.0), (2, 0.1, 1.0)], stamps=stamps)
    monkeypatch.setattr(streams, "time", stream.clock)
    policy = Reconnect(stall_timeout=5.0, max_reconnects=3, backoff_initial=0.001)
    source = StreamSource(uri, stream.opener, policy, stream_clock=True)
    frames = list(source)
    assert len(frames) == kept  # HLS: 0-300, then 400 and 500; the third only replays
    assert source.reconnects == (1 if kept == 6 else 2)


def test_a_stream_with_its_own_timestamps_is_timed_by_them_not_by_their_bursts(monkeypatch):
    """HLS hands over a segment's frames at once: frames 100 ms apart on the stream's clock
    arrive 1 ms apart. A step back or a jump of an hour is not believed (the time between
    arrivals is taken), nor are timestamps across a reconnect (the outage's length is)."""
    from standins import ScriptedStream

    from drivevision.io import streams

    stamps = [[0, 100, 200, 300, 400, 500, 400, 3_600_400, 3_600_500], [7000, 7100, 7200]]
    stream = ScriptedStream([(9, 0.001, 0.0), (3, 0.001, 2.0)], stamps=stamps)
    monkeypatch.setattr(streams, "time", stream.clock)
    policy = Reconnect(stall_timeout=5.0, max_reconnects=3, backoff_initial=0.001)
    source = StreamSource("http://cam/live.m3u8", stream.opener, policy, stream_clock=True)
    frames = list(source)
    expected = [1, 101, 201, 301, 401, 501, 502, 503, 603, 2604, 2704, 2804]
    assert [f.timestamp_ms for f in frames] == pytest.approx(expected, abs=1e-6)
    # 2.001 s lost at the median 100 ms between frames: 20 frames' time, 19 besides the next
    assert [f.index for f in frames] == [*range(9), 28, 29, 30]
    gap = source.gaps[0]
    assert (gap.start_ms, gap.end_ms) == pytest.approx((603, 2604), abs=1e-6)

    stream = ScriptedStream([(9, 0.001, 0.0)], stamps=stamps[:1])
    monkeypatch.setattr(streams, "time", stream.clock)
    arrival = StreamSource("http://cam/stream", stream.opener, policy)  # MJPEG: no clock
    assert [f.timestamp_ms for f in arrival] == pytest.approx(range(1, 10), abs=1e-6)


@pytest.mark.parametrize("policy, message", [
    (dict(stall_timeout=0), "Expected stall_timeout > 0 s, but got 0"),
    (dict(max_reconnects=-1), "Expected max_reconnects >= 0, but got -1"),
])
def test_a_reconnect_policy_out_of_range_is_refused_naming_the_keyword(policy, message):
    """As its backoff keywords are; drivevision live names its --stall-timeout and
    --max-reconnects (tests/cli/test_live_refusals.py)."""
    with pytest.raises(ValueError) as refused:
        Reconnect(**policy)
    assert str(refused.value) == message
