"""MJPEG over HTTP of the annotated stream, and the live status line."""

from __future__ import annotations

import io
import threading
import time
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from mjpeg_server import read_parts

from drivevision.detections import Detections
from drivevision.io.frames import Frame, Source
from drivevision.io.serve import MjpegServer, ServeSink, is_loopback, parse_bind
from drivevision.io.sinks import Sink
from drivevision.pipeline.rates import ArrivalRate
from drivevision.pipeline.stats import Snapshot, SourceStats


@pytest.mark.parametrize("text, expected", [
    ("127.0.0.1:8090", ("127.0.0.1", 8090)),
    ("0.0.0.0:80", ("0.0.0.0", 80)),
    (":9000", ("127.0.0.1", 9000)),
    ("9000", ("127.0.0.1", 9000)),
    ("[::1]:8090", ("::1", 8090)),
    ("localhost:0", ("localhost", 0)),
])
def test_parse_bind(text, expected):
    assert parse_bind(text) == expected


@pytest.mark.parametrize("text", ["", "host:", "127.0.0.1:99999", "a:b:c"])
def test_parse_bind_rejects(text):
    with pytest.raises(ValueError, match="Expected HOST:PORT"):
        parse_bind(text)


@pytest.mark.parametrize("host, loopback", [("127.0.0.1", True), ("localhost", True),
                                            ("::1", True), ("0.0.0.0", False),
                                            ("192.168.1.20", False)])
def test_only_loopback_counts_as_private(host, loopback):
    assert is_loopback(host) is loopback


def test_served_on_every_interface_the_address_shown_names_this_machine():
    import socket

    server = MjpegServer("0.0.0.0", port=0)
    try:
        port = server.address[1]
        assert server.url(1) == f"http://{socket.gethostname()}:{port}/stream/1"
        assert server.warning and "without authentication" in server.warning
    finally:
        server.close()


@pytest.mark.timeout(30)
def test_clients_receive_published_frames_and_close_ends_them():
    server = MjpegServer(port=0, streams=2).start()
    assert server.warning is None and server.address[0] == "127.0.0.1"
    stop = threading.Event()

    def publish():
        i = 0
        while not stop.is_set():
            server.publish(0, np.full((60, 80, 3), (i * 20) % 256, np.uint8))
            server.publish(1, np.zeros((30, 40, 3), np.uint8))
            i += 1
            time.sleep(0.02)

    publisher = threading.Thread(target=publish)
    publisher.start()
    try:
        with urllib.request.urlopen(server.url(0), timeout=5) as response:
            assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
            images = read_parts(response, 4)
        assert len(images) == 4 and all(im.shape == (60, 80, 3) for im in images)
        assert len({int(im.mean()) for im in images}) == 4  # four different frames
        with urllib.request.urlopen(server.url(1).replace("/stream/1", "/snapshot/1.jpg"),
                                    timeout=5) as response:
            snapshot = cv2.imdecode(np.frombuffer(response.read(), np.uint8), cv2.IMREAD_COLOR)
        assert snapshot.shape == (30, 40, 3)
        with pytest.raises(urllib.error.HTTPError, match="404"):
            urllib.request.urlopen(server.url(2), timeout=5)
        response = urllib.request.urlopen(server.url(0), timeout=5)
        read_parts(response, 1)
        start = time.monotonic()
        server.close()  # a client is still streaming
        assert time.monotonic() - start < 3.0
        assert len(read_parts(response, 1000)) < 1000  # the stream ends instead of hanging
        response.close()
    finally:
        stop.set()
        publisher.join()
        server.close()


def _write(sink: ServeSink, value: int) -> None:
    image = np.full((48, 64, 3), value, np.uint8)
    sink.write(Frame(0, 0.0, image, time.monotonic()), Detections.empty(), image)


def _snapshot(server: MjpegServer) -> np.ndarray | None:
    url = server.url(0).replace("/stream/0", "/snapshot.jpg")
    with urllib.request.urlopen(url, timeout=10) as response:
        return cv2.imdecode(np.frombuffer(response.read(), np.uint8), cv2.IMREAD_COLOR)


@pytest.mark.timeout(30)
def test_writing_a_frame_never_waits_for_a_viewers_jpeg_encoding(monkeypatch):
    encoding, release, real = threading.Event(), threading.Event(), cv2.imencode

    def slow(*args):
        encoding.set()
        release.wait(5.0)
        return real(*args)

    monkeypatch.setattr(cv2, "imencode", slow)
    with MjpegServer(port=0) as server:
        sink = ServeSink(server)
        _write(sink, 100)
        seen = []
        viewer = threading.Thread(target=lambda: seen.append(_snapshot(server)))
        viewer.start()
        assert encoding.wait(5.0)
        start = time.monotonic()
        _write(sink, 200)  # the pipeline's write stage, while the viewer's JPEG is encoded
        took = time.monotonic() - start
        release.set()
        viewer.join(10.0)
    assert took < 0.5
    assert abs(seen[0].mean() - 100) < 3  # the viewer got the frame it asked for


@pytest.mark.timeout(30)
@pytest.mark.parametrize("failure", ["flag", "raise"])
def test_a_frame_that_fails_to_encode_is_never_served(monkeypatch, failure):
    real = cv2.imencode

    def imencode(ext, image, params):
        if image[0, 0, 0] != 7:
            return real(ext, image, params)
        if failure == "raise":
            raise cv2.error("cannot encode")
        return False, np.frombuffer(b"not a jpeg", np.uint8)

    monkeypatch.setattr(cv2, "imencode", imencode)
    with MjpegServer(port=0) as server:
        sink = ServeSink(server)
        _write(sink, 200)
        assert abs(_snapshot(server).mean() - 200) < 3
        _write(sink, 7)
        served = _snapshot(server)  # the frame before, not broken bytes
        _write(sink, 50)
        after = _snapshot(server)
        sink.close()
    assert served is not None and abs(served.mean() - 200) < 3
    assert abs(after.mean() - 50) < 3
    assert len(sink.notes) == 1 and "1 frame could not be JPEG-encoded" in sink.notes[0]


def test_serve_sink_is_a_sink_that_writes_no_file(monkeypatch):
    monkeypatch.setattr(cv2, "imencode", lambda *args: (False, np.zeros(0, np.uint8)))
    with MjpegServer(port=0) as server:
        with ServeSink(server) as sink:
            _write(sink, 9)
            assert server._feeds[0].newer_than(0, 0.1) is None  # encoding fails, no frame
        sink.close()  # closed twice (by the run and its exit stack): one warning
    assert isinstance(sink, Sink) and sink.needs_annotated
    assert sink.frames == 1 and sink.path is None and sink.final_path is None
    assert len(sink.notes) == 1


def test_port_in_use_is_one_clear_error():
    with MjpegServer(port=0) as first, pytest.raises(ValueError, match="Cannot serve on"):
        MjpegServer(port=first.address[1])


def test_status_line_text():
    snap = Snapshot(29.9, 9.8, captured=300, processed=98, dropped=202, latency_p50=131.0,
                    latency_p95=148.4, reconnects=1, lost_s=2.26)
    assert snap.dropped_pct == pytest.approx(67.33, abs=0.01)
    assert snap.format() == ("in 29.9 fps  det  9.8 fps  dropped  67%  latency p50/p95 131/148 "
                             "ms  reconnects 1 (2.3 s lost)")
    assert "latency p50/p95 -" in Snapshot(0, 0, 0, 0, 0, None, None).format()
    lost = Snapshot(0, 0, 9, 9, 0, 80.0, 90.0, state="LOST 3 s, reconnecting")
    assert lost.format().endswith("latency p50/p95 80/90 ms  LOST 3 s, reconnecting")


def test_source_stats_windows_and_whole_run():
    stats = SourceStats(window_s=1.0)
    now = time.monotonic()
    for i in range(30):
        stats.on_capture(now - 0.9 + i * 0.03)
    for ms in (100, 110, 120, 400):
        stats.on_result(ms, now - 0.5)
    stats.on_drop()
    snap = stats.snapshot()
    assert 25 < snap.input_fps < 40 and snap.dropped == 1 and snap.processed == 4
    assert snap.latency_p50 == pytest.approx(115.0)
    assert stats.run_latency(50) == 110.0 and stats.run_latency(100) == 400.0
    old = SourceStats(window_s=1.0)
    old.on_result(100, now - 5.0)
    assert old.snapshot().latency_p50 is None and old.run_latency(95) == 100.0


@pytest.mark.parametrize("backlog", [0, 5, 40, 125])
def test_input_rate_is_unknown_until_it_settles_never_a_bursts_rate(backlog):
    """A 10 fps stream whose ``backlog`` frames, buffered while it opened and the model
    loaded, are read 4 ms apart (decoding), then one frame per 0.1 s: as each frame comes,
    the rate is unknown (None) or 10, never the burst's 250 fps; it is known once a second
    of the stream's own flow came, and stays so."""
    meter = ArrivalRate(window_s=2.0)
    start = 100.0
    arrivals = [start + i * 0.004 for i in range(backlog)]
    flow = (arrivals[-1] if arrivals else start) + 0.1
    arrivals += [flow + i * 0.1 for i in range(40)]
    rates = []
    for t in arrivals:
        meter.tick(t)
        rates.append((round(t - flow, 3), meter.rate(t)))
    assert all(rate is None or rate == pytest.approx(10.0) for _, rate in rates), rates
    assert all(rate is None for at, rate in rates if at < 0.85), rates
    assert all(rate == pytest.approx(10.0) for at, rate in rates if at >= 1.0), rates


def test_a_settled_input_rate_stays_known_through_an_outage_until_it_falls_to_zero():
    """A 10 fps stream that stops (an outage, the end of a run): the status line goes on
    showing 10 fps and then 0, never back to "-" as if the rate had never been known."""
    meter = ArrivalRate(window_s=2.0)
    last = 100.0 + 3.9
    for i in range(40):
        meter.tick(100.0 + i * 0.1)
    polls = [(round(t, 2), meter.rate(last + t)) for t in np.arange(0.0, 4.0, 0.25)]
    assert all(rate is not None for _, rate in polls), polls
    assert all(rate == pytest.approx(10.0) for t, rate in polls if t < 2.0), polls
    assert all(rate == 0.0 for t, rate in polls if t > 2.0), polls


def test_a_stream_back_after_an_outage_shows_its_rate_not_one_read_across_the_gap():
    """A 10 fps stream lost for 5 s, then back at 10 fps: as each frame comes the rate is
    10 (the last known, then the new frames'), never the gap's 0.4 fps (it was, for about a
    second after the stream came back)."""
    meter = ArrivalRate(window_s=2.0)
    for i in range(40):
        meter.tick(100.0 + i * 0.1)
        meter.rate(100.0 + i * 0.1)  # the status line asks every frame
    back = 100.0 + 3.9 + 5.0
    rates = []
    for i in range(30):
        meter.tick(back + i * 0.1)
        rates.append((i, meter.rate(back + i * 0.1)))
    assert all(rate == pytest.approx(10.0) for _, rate in rates), rates


def test_an_unknown_input_rate_reads_as_a_dash():
    """Before the rate settles the status line says "-" where the rate goes, as latency
    does before the first result, and ``print(stats)`` too."""
    assert Snapshot(None, 0.0, 2, 0, 0, None, None).format() == (
        "in    - fps  det  0.0 fps  dropped   0%  latency p50/p95 -")
    stats = SourceStats()
    assert stats.snapshot().input_fps is None  # no frame yet
    stats.on_capture()
    assert "input_fps=-," in repr(stats)


def test_input_rate_of_a_stream_with_its_own_times_is_theirs_not_its_bursts():
    now = time.monotonic()
    # HLS at 10 fps in 0.5 s segments: each segment's 5 frames arrive within 2 ms
    frames = [(now - 1.9 + (i // 5) * 0.5 + (i % 5) * 0.0005, i * 0.1) for i in range(20)]
    timed, arrivals = SourceStats(), SourceStats()
    for arrived, stamp in frames:
        timed.on_capture(arrived, stamp)
        arrivals.on_capture(arrived)
    assert timed.snapshot().input_fps == pytest.approx(10.0)
    assert arrivals.snapshot().input_fps > 1000  # what the arrivals alone read as
    assert timed.input_rate.rate(now + 3.0) == 0.0  # still falls to 0 when frames stop


def test_input_rate_falls_to_zero_once_frames_stop_coming():
    meter = ArrivalRate(window_s=2.0)
    now = time.monotonic()
    for i in range(20):
        meter.tick(now - 10.0 + i * 0.1)
    assert meter.rate(now - 8.0) == pytest.approx(10.0)
    assert meter.rate(now) == 0.0
    slow = ArrivalRate(window_s=2.0)  # one frame every 3 s: older frames still count
    for i in range(4):
        slow.tick(now - 9.0 + i * 3.0)
    assert slow.rate(now) == pytest.approx(1 / 3)


def test_status_line_writes_every_second_and_stops_the_run_after_duration():
    from drivevision.cli.status import StatusLine

    class Stub:
        sources = [Source("stub://", live=True)]
        stats = [SourceStats()]
        stopped = False

        def stop(self):
            self.stopped = True

    out, stub = io.StringIO(), Stub()
    with StatusLine(stub, duration=1.0, stream=out):
        time.sleep(2.3)
    lines = out.getvalue().splitlines()
    # once a second: 2 lines in 2.3 s, give or take one on a loaded machine
    assert 1 <= len(lines) <= 3 and all("dropped" in line for line in lines) and stub.stopped
