"""A small MJPEG-over-HTTP camera for the live tests, on 127.0.0.1 only.

Every frame carries its sequence number as 16 black/white 8x8 blocks along the top row and
a per-server tint (BGR) below, so a test can tell which stream a frame came from and in
which order. Run as a process (``python tests/mjpeg_server.py --port 0 --fps 30``; it
prints ``listening PORT``) so that a test can kill it mid-stream and start it again.
"""

from __future__ import annotations

import argparse
import itertools
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2
import numpy as np

BOUNDARY = "drivevisionframe"
TINTS = ((40, 40, 200), (200, 60, 40), (40, 180, 40))  # BGR: red, blue, green
_BITS, _BLOCK = 16, 8


def make_frame(seq: int, tint: int, width: int = 160, height: int = 120) -> np.ndarray:
    """(height, width, 3) uint8 BGR: ``seq`` as blocks on the top row, ``tint`` below."""
    image = np.empty((height, width, 3), np.uint8)
    image[:] = TINTS[tint]
    image[:_BLOCK * 2] = 128
    for bit in range(_BITS):
        on = (seq >> bit) & 1
        image[:_BLOCK, bit * _BLOCK:(bit + 1) * _BLOCK] = 255 if on else 0
    cv2.rectangle(image, (20 + seq % (width - 60), 40), (50 + seq % (width - 60), 90),
                  (230, 230, 230), -1)
    return image


def read_seq(image: np.ndarray) -> int:
    """The sequence number drawn by ``make_frame`` (survives JPEG and resizing to >= 128 px)."""
    scale = image.shape[1] / 160.0
    seq = 0
    for bit in range(_BITS):
        x = int((bit * _BLOCK + _BLOCK / 2) * scale)
        if image[int(_BLOCK / 2 * scale), x].mean() > 128:
            seq |= 1 << bit
    return seq


def read_tint(image: np.ndarray) -> int:
    """Index into ``TINTS`` of the colour nearest to the frame's bottom-left corner."""
    corner = image[-10:, :10].reshape(-1, 3).mean(axis=0)
    return int(np.argmin([np.abs(corner - np.array(t)).sum() for t in TINTS]))


def read_parts(response, count: int) -> list[np.ndarray]:
    """The first ``count`` JPEG images of a multipart MJPEG response."""
    images, buffer = [], b""
    while len(images) < count:
        chunk = response.read1(65536)
        if not chunk:
            break
        buffer += chunk
        while len(images) < count and b"\xff\xd9" in buffer:
            end = buffer.index(b"\xff\xd9") + 2
            start = buffer.index(b"\xff\xd8")
            images.append(cv2.imdecode(np.frombuffer(buffer[start:end], np.uint8),
                                       cv2.IMREAD_COLOR))
            buffer = buffer[end:]
    return images


class _Handler(BaseHTTPRequestHandler):
    server: MjpegTestServer

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.path.split("?")[0] != "/stream":
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        srv = self.server
        period = 1.0 / srv.fps
        next_due = time.monotonic()
        sent = 0
        while not srv.closing.is_set():
            next_due += period
            srv.closing.wait(max(0.0, next_due - time.monotonic()))
            if srv.freeze_after is not None and sent >= srv.freeze_after:
                continue  # keep the connection open, send nothing: a frozen camera
            seq = next(srv.counter)
            ok, jpeg = cv2.imencode(".jpg", make_frame(seq, srv.tint, srv.width, srv.height),
                                    [cv2.IMWRITE_JPEG_QUALITY, 90])
            part = (f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                    f"Content-Length: {len(jpeg)}\r\n\r\n").encode() + jpeg.tobytes() + b"\r\n"
            try:
                self.wfile.write(part)
                self.wfile.flush()
            except OSError:
                return  # the client went away
            sent += 1

    def log_message(self, *args) -> None:
        pass


class MjpegTestServer(ThreadingHTTPServer):
    """``/stream`` at ``fps`` frames per second, numbered from 0 across all connections;
    after ``freeze_after`` frames a connection stays open but gets nothing more."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, port: int = 0, *, fps: float = 30.0, tint: int = 0, width: int = 160,
                 height: int = 120, freeze_after: int | None = None):
        super().__init__(("127.0.0.1", port), _Handler)
        self.fps, self.tint, self.width, self.height = fps, tint, width, height
        self.freeze_after = freeze_after
        self.counter = itertools.count()  # next() is atomic: frame numbers never repeat
        self.closing = threading.Event()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="mjpeg-test-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/stream"

    def __enter__(self) -> MjpegTestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
        self._thread.join(5)


def start_process(port: int = 0, **options) -> tuple[subprocess.Popen, int]:
    """This server in a child process; returns it and its port once it listens."""
    args = [sys.executable, str(Path(__file__).resolve()), "--port", str(port)]
    for key, value in options.items():
        args += [f"--{key.replace('_', '-')}", str(value)]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline().split()
    if len(line) != 2 or line[0] != "listening":
        proc.kill()
        raise RuntimeError(f"test MJPEG server did not start: {line}")
    return proc, int(line[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--fps", type=float, default=30.0)
    parser.add_argument("--tint", type=int, default=0)
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    args = parser.parse_args()
    server = MjpegTestServer(args.port, fps=args.fps, tint=args.tint, width=args.width,
                             height=args.height)
    print(f"listening {server.server_address[1]}", flush=True)
    try:
        server.serve_forever(poll_interval=0.05)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
