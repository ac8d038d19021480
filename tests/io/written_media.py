"""Media the source tests write or serve: a folder over HTTP, a video holding two video
streams, a raw elementary stream (also used by the CLI's tests)."""

from __future__ import annotations

import contextlib
import functools
import threading
from pathlib import Path

import av
import numpy as np


@contextlib.contextmanager
def served(folder: Path):
    """``folder`` served over HTTP on loopback (Python's http.server); yields its base URL."""
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=folder))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def write_two_streams(path: Path) -> None:
    """A video holding two video streams: 160x120 dark frames, then 320x240 bright ones."""
    with av.open(str(path), "w") as out:
        streams = [out.add_stream("libx264", rate=10) for _ in range(2)]
        for stream, (w, h) in zip(streams, [(160, 120), (320, 240)]):
            stream.width, stream.height, stream.pix_fmt = w, h, "yuv420p"
        for _ in range(6):
            for stream, value in zip(streams, (40, 200)):
                image = np.full((stream.height, stream.width, 3), value, np.uint8)
                out.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")))
        for stream in streams:
            out.mux(stream.encode())


def write_raw(path: Path, codec: str, fps: int, frames: int = 12) -> None:
    """A raw elementary stream (no container): ``codec`` at ``fps``, as the encoder states it
    (x264 and x265 write it in the SPS)."""
    pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
    with av.open(str(path), "w", format={"libx264": "h264", "libx265": "hevc"}.get(
            codec, codec)) as out:
        stream = out.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, pix_fmt
        for i in range(frames):
            image = np.full((120, 160, 3), i * 20, np.uint8)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24").reformat(format=pix_fmt)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
