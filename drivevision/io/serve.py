"""The annotated stream as MJPEG over HTTP, so an edge device can be watched from a browser.

``MjpegServer`` runs ``http.server`` on a thread of its own. ``/`` is a page showing every
stream, ``/stream`` (= ``/stream/0``) and ``/stream/N`` are multipart MJPEG streams,
``/snapshot.jpg`` and ``/snapshot/N.jpg`` single frames. There is no authentication: the
default address is loopback only, and binding elsewhere gives a warning.
"""

from __future__ import annotations

import ipaddress
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

_BOUNDARY = "drivevision-frame"
_PATH = re.compile(r"^/(stream|snapshot)(?:/(\d+))?(?:\.jpg)?/?$")


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
    """The newest frame of one stream, JPEG-encoded at most once, on first request."""

    def __init__(self, quality: int):
        self._cond = threading.Condition()
        self._quality = quality
        self._image: np.ndarray | None = None
        self._seq = 0
        self._jpeg: tuple[int, bytes] | None = None

    def publish(self, image: np.ndarray) -> None:
        with self._cond:
            self._image, self._seq = image, self._seq + 1
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    def newer_than(self, seq: int, timeout: float) -> tuple[int, bytes] | None:
        """(seq, JPEG bytes) of a frame newer than ``seq``, or None after ``timeout`` s."""
        with self._cond:
            if self._seq <= seq:
                self._cond.wait(timeout)
            if self._seq <= seq or self._image is None:
                return None
            if self._jpeg is None or self._jpeg[0] != self._seq:
                ok, data = cv2.imencode(".jpg", self._image,
                                        [cv2.IMWRITE_JPEG_QUALITY, self._quality])
                self._jpeg = (self._seq, data.tobytes())
            return self._jpeg


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
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{port}/stream/{stream}"

    def publish(self, stream: int, image: np.ndarray) -> None:
        """Make ``image`` the newest frame of ``stream``; it is not copied, so do not change
        it afterwards (the pipeline's annotated frames are new arrays)."""
        self._feeds[stream].publish(image)

    def start(self) -> MjpegServer:
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving: streaming clients are ended, the port is released."""
        self._http.closing.set()
        for feed in self._feeds:
            feed.wake()
        if self._thread.is_alive():
            self._http.shutdown()
            self._thread.join(5.0)
        self._http.server_close()

    def __enter__(self) -> MjpegServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.close()


class ServeSink:
    """A pipeline sink that publishes each annotated frame to one stream of a server."""

    needs_annotated = True

    def __init__(self, server: MjpegServer, stream: int = 0):
        self.server, self.stream = server, stream
        self.notes: list[str] = []
        self.frames = 0

    def write(self, frame, detections, annotated: np.ndarray | None) -> None:
        self.server.publish(self.stream, frame.image if annotated is None else annotated)
        self.frames += 1

    def close(self, complete: bool = True) -> None:
        pass

    def __enter__(self) -> ServeSink:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
