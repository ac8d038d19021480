"""A live HLS stream for the tests, on 127.0.0.1 only: MPEG-TS segments of the sample clip.

The segments are encoded once (the clip, looped, at its own 10 fps), then served by
``http.server`` behind a live playlist (no ``#EXT-X-ENDLIST``) that grows with the wall clock
as a camera's would: segment k is listed once ``(k + 1) * segment_s`` seconds have passed,
with the ``window`` newest before it. A player gets a whole segment's frames at once.
``down(seconds)`` answers every request with 503 for that long, an outage of the server;
the playlist's clock goes on meanwhile, so the segments of that time are missed.
``freeze()`` keeps serving the playlist as it is now, with no new segment: a frozen stream.
"""

from __future__ import annotations

import functools
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import av

SAMPLE = Path(__file__).resolve().parents[1] / "assets" / "sample.mp4"
FPS = 10  # the sample clip's rate


def write_segments(folder: Path, frames: int, segment_s: float, size=(320, 180)) -> int:
    """MPEG-TS segments ``seg000.ts``, ... of the sample clip looped to ``frames`` frames,
    one keyframe per segment; returns how many were written."""
    with av.open(str(SAMPLE)) as clip:
        images = [f.reformat(*size).to_ndarray(format="bgr24") for f in clip.decode(video=0)]
    options = {"hls_time": str(segment_s), "hls_list_size": "0", "hls_playlist_type": "vod",
               "hls_segment_filename": str(folder / "seg%03d.ts")}
    with av.open(str(folder / "all.m3u8"), "w", format="hls", options=options) as out:
        stream = out.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = *size, "yuv420p"
        stream.options = {"g": str(round(segment_s * FPS)), "preset": "ultrafast"}
        for i in range(frames):
            image = av.VideoFrame.from_ndarray(images[i % len(images)], format="bgr24")
            out.mux(stream.encode(image))
        out.mux(stream.encode(None))
    return len(list(folder.glob("seg*.ts")))


class LiveHlsServer:
    """A live HLS playlist at ``url`` over the segments in ``folder`` (see module doc)."""

    def __init__(self, folder: Path, *, frames: int = 160, segment_s: float = 0.5,
                 window: int = 3):
        self.folder, self.segment_s, self.window = Path(folder), segment_s, window
        self.folder.mkdir(parents=True, exist_ok=True)
        self.segments = write_segments(self.folder, frames, segment_s)
        self._t0 = time.monotonic()
        self._down_until = 0.0
        self._frozen: bytes | None = None
        handler = functools.partial(_Handler, self, directory=str(self.folder))
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        kwargs={"poll_interval": 0.05})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/live.m3u8"

    def down(self, seconds: float) -> None:
        self._down_until = time.monotonic() + seconds

    def freeze(self) -> None:
        self._frozen = self.playlist()

    def is_down(self) -> bool:
        return time.monotonic() < self._down_until

    def playlist(self) -> bytes:
        if self._frozen is not None:
            return self._frozen
        newest = min(self.segments - 1, int((time.monotonic() - self._t0) / self.segment_s))
        first = max(0, newest - self.window)
        lines = ["#EXTM3U", "#EXT-X-VERSION:3",
                 f"#EXT-X-TARGETDURATION:{max(1, round(self.segment_s))}",
                 f"#EXT-X-MEDIA-SEQUENCE:{first}"]
        for k in range(first, newest + 1):
            lines += [f"#EXTINF:{self.segment_s:.3f},", f"seg{k:03d}.ts"]
        return ("\n".join(lines) + "\n").encode()

    def __enter__(self) -> LiveHlsServer:
        self._t0 = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()


class _Handler(SimpleHTTPRequestHandler):
    def __init__(self, hls: LiveHlsServer, *args, **kwargs):
        self.hls = hls
        super().__init__(*args, **kwargs)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.hls.is_down():
            self.send_error(503)
        elif self.path.split("?")[0] == "/live.m3u8":
            body = self.hls.playlist()
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.apple.mpegurl")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            super().do_GET()

    def log_message(self, *args) -> None:
        pass
