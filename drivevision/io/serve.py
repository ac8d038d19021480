"""The annotated stream as MJPEG over HTTP, so an edge device can be watched from a browser.

``MjpegServer`` runs ``http.server`` on a thread of its own. ``/`` is a page showing every
stream, ``/stream`` (= ``/stream/0``) and ``/stream/N`` are multipart MJPEG streams,
``/snapshot.jpg`` and ``/snapshot/N.jpg`` single frames. There is no authentication: the
default address is loopback only, and binding elsewhere gives a warning.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

from drivevision.detections import Detections
from drivevision.io.frames import Frame
from drivevision.io.sinks import Sink
from drivevision.labels import counted

_BOUNDARY = "drivevision-frame"
_PATH = re.compile(r"^/(stream|snapshot)(?:/(\d{1,6}))?(?:\.jpg)?/?$")
_log = logging.getLogger(__name__)
# Errors of the viewers' connections are the viewers' business: counted, and one line at
# most this often, never a traceback on the operator's terminal.
ERROR_LOG_INTERVAL_S = 10.0


def parse_bind(text: str, default_host: str = "127.0.0.1") -> tuple[str, int]:
    """``HOST:PORT``, ``:PORT``, ``PORT`` or ``[IPV6]:PORT`` -> (host, port)."""
    text = text.strip()
    if text.startswith("["):
        match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\]:(\d+)", text)
        host, port = match.groups() if match else ("", "")
    elif text.isdigit():
        host, port = default_host, text
    else:
        host, _, port = text.rpartition(":")
        host = "" if ":" in host else (host or default_host)
    if not host or not port.isdigit() or int(port) > 65535:
        raise ValueError(f"Expected HOST:PORT for --serve (e.g. 127.0.0.1:8090), but got {text!r}")
    return host, int(port)


def is_loopback(host: str) -> bool:
    """True when ``host`` only accepts connections from this machine."""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


class _Feed:
    """The newest frame of one stream, JPEG-encoded at most once, on first request.

    Encoding runs on the requesting client's thread outside the lock, so ``publish`` (the
    pipeline's write stage) never waits for it; one client encodes a frame while others wait
    for the result. A frame that fails to encode is counted in ``failures`` and viewers are
    sent the previous frame's JPEG in its place: never broken bytes.
    """

    def __init__(self, quality: int):
        self._cond = threading.Condition()
        self._quality = quality
        self._image: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes | None] | None = None  # (seq, newest good JPEG up to it)
        self._encoding = 0  # seq being encoded by a client now, 0 for none
        self._closed = False
        self.failures = 0

    def publish(self, image: np.ndarray) -> None:
        with self._cond:
            self._image, self._seq = image, self._seq + 1
            self._cond.notify_all()

    def close(self) -> None:
        """End every wait now: the server is closing."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def newer_than(self, seq: int, timeout: float) -> tuple[int, bytes] | None:
        """(seq, JPEG bytes) of a frame newer than ``seq`` (the newest, or the one this call
        has just encoded), or None after ``timeout`` s (at once when the feed is closed)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while not self._closed:
                jpeg = self._jpeg
                newest = jpeg is not None and jpeg[0] == self._seq
                if newest and jpeg[0] > seq and jpeg[1] is not None:
                    return jpeg  # type: ignore[return-value]
                if self._seq > seq and not newest and self._encoding != self._seq:
                    jpeg = self._encode_newest()
                    if jpeg[1] is not None:
                        return jpeg  # type: ignore[return-value]
                    continue
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            return None

    def _encode_newest(self) -> tuple[int, bytes | None]:
        """Encode the newest frame with the lock released (held on entry and on return);
        returns it (even when a newer one came meanwhile: a fast publisher must not keep a
        client encoding forever)."""
        image, seq, data = self._image, self._seq, None
        self._encoding = seq
        self._cond.release()
        try:
            data = self._encode(image)
        finally:
            self._cond.acquire()
            data = self._store(seq, data)
        return seq, data

    def _encode(self, image: np.ndarray) -> bytes | None:
        try:
            ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, self._quality])
        except cv2.error:
            return None
        return data.tobytes() if ok else None

    def _store(self, seq: int, data: bytes | None) -> bytes | None:
        """Keep ``data`` as frame ``seq``'s JPEG; a failed one (None) keeps the previous,
        which is returned in its place."""
        if self._encoding == seq:
            self._encoding = 0
        if data is None:
            self.failures += 1
            data = self._jpeg[1] if self._jpeg is not None else None
        if self._jpeg is None or self._jpeg[0] < seq:
            self._jpeg = (seq, data)
        self._cond.notify_all()
        return data


class _Handler(BaseHTTPRequestHandler):
    server: _HttpServer
    timeout = 5.0  # a client that stops reading is dropped, never blocks shutdown for long

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] == "/":
            return self._index()
        match = _PATH.match(self.path.split("?")[0])
        index = int(match.group(2) or 0) if match else -1
        if not 0 <= index < len(self.server.feeds):
            return self.send_error(404, "Try /, /stream, /stream/N or /snapshot.jpg")
        if match.group(1) == "snapshot":
            return self._snapshot(self.server.feeds[index])
        return self._stream(self.server.feeds[index])

    def _index(self) -> None:
        images = "".join(f'<img src="/stream/{i}" style="max-width:100%">'
                         for i in range(len(self.server.feeds)))
        body = f"<!doctype html><title>DriveVision</title><body>{images}</body>".encode()
        self._send(200, "text/html; charset=utf-8", body)

    def _snapshot(self, feed: _Feed) -> None:
        got = feed.newer_than(0, 2.0)
        if got is None:
            return self.send_error(503, "No frame yet")
        self._send(200, "image/jpeg", got[1])

    def _send(self, code: int, kind: str, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, feed: _Feed) -> None:
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={_BOUNDARY}")
        self.send_header("Cache-Control", "no-cache, no-store")
        self.end_headers()
        seq = 0
        while not self.server.closing.is_set():
            got = feed.newer_than(seq, 0.5)
            if got is None:
                continue
            seq, jpeg = got
            head = (f"--{_BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n").encode()
            try:
                self.wfile.write(head + jpeg + b"\r\n")
                self.wfile.flush()
            except OSError:
                return  # the viewer went away

    def log_message(self, *args) -> None:
        pass


class _HttpServer(ThreadingHTTPServer):
    daemon_threads = False  # joined on close; each is bounded by the handler's timeout
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], feeds: list[_Feed]):
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.feeds = feeds
        self.closing = threading.Event()
        self.client_errors = 0
        self._logged_at = -ERROR_LOG_INTERVAL_S
        self._unlogged = 0
        self._errors_lock = threading.Lock()

    def handle_error(self, request, client_address) -> None:
        """A request that failed (a viewer that went away, a broken request): counted, and
        logged as one line at most every ``ERROR_LOG_INTERVAL_S`` s, not as socketserver's
        traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, (BrokenPipeError, ConnectionResetError, TimeoutError)):
            return  # a viewer that closed its tab or stopped reading: nothing to report
        with self._errors_lock:
            self.client_errors += 1
            self._unlogged += 1
            now = time.monotonic()
            if now - self._logged_at < ERROR_LOG_INTERVAL_S:
                return
            count, self._unlogged, self._logged_at = self._unlogged, 0, now
        _log.warning(f"serve: {counted(count, 'request')} failed since the last report, the "
                     f"last from {client_address[0]}: {type(error).__name__}: "
                     f"{str(error).splitlines()[0][:120] if str(error) else ''}")


class MjpegServer:
    """Publishes (H, W, 3) uint8 BGR frames of ``streams`` streams on ``host:port``.

    ``port`` 0 picks a free port (see ``address``). ``warning`` is set when the address
    is reachable from other machines. Use as a context manager, or ``start``/``close``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8090, *, streams: int = 1,
                 quality: int = 80):
        self._feeds = [_Feed(quality) for _ in range(streams)]
        try:
            self._http = _HttpServer((host, port), self._feeds)
        except OSError as e:
            raise ValueError(f"Cannot serve on {host}:{port}: {e.strerror or e}") from e
        self.warning = None if is_loopback(host) else (
            f"serving the video on {host}:{self.address[1]} without authentication: anyone "
            "who can reach this address can watch it")
        self._thread = threading.Thread(target=self._http.serve_forever,
                                        kwargs={"poll_interval": 0.1},
                                        name="drivevision-serve", daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        return self._http.server_address[:2]

    def url(self, stream: int = 0) -> str:
        """The stream's address to open; served on every interface (0.0.0.0, ::), it names
        this machine (its host name), as ``http://0.0.0.0:PORT`` opens nothing elsewhere."""
        host, port = self.address
        if ipaddress.ip_address(host.split("%")[0]).is_unspecified:
            host = socket.gethostname()
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/stream/{stream}"

    def publish(self, stream: int, image: np.ndarray) -> None:
        """Make ``image`` the newest frame of ``stream``; it is not copied, so do not change
        it afterwards (the pipeline's annotated frames are new arrays)."""
        self._feeds[stream].publish(image)

    def encode_failures(self, stream: int) -> int:
        """How many frames of ``stream`` could not be JPEG-encoded (viewers were sent the
        frame before in their place)."""
        return self._feeds[stream].failures

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: streaming clients are ended, the port is released."""
        self._http.closing.set()
        for feed in self._feeds:
            feed.close()
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join(5.0)
        self._http.server_close()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class ServeSink(Sink):
    """A pipeline sink that publishes each annotated frame to one stream of a server.

    It writes no file (``path`` is None); closing it leaves the server running and notes
    frames that could not be JPEG-encoded.
    """

    needs_annotated = True

    def __init__(self, server: MjpegServer, stream: int = 0):
        super().__init__()
        self.server, self.stream = server, stream

    def _write(self, frame: Frame, detections: Detections, annotated: np.ndarray | None) -> None:
        self.server.publish(self.stream, frame.image if annotated is None else annotated)

    def _finish(self) -> None:
        failures = self.server.encode_failures(self.stream)
        if failures:
            self.notes.append(f"{self.server.url(self.stream)}: {counted(failures, 'frame')} "
                              "could not be JPEG-encoded; viewers were sent the frame before "
                              "instead")
