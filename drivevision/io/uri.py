"""Source URIs: one convention for every command, and the GStreamer strings they imply.

=====================  ==========================================================
``0``, ``1``           camera by index (V4L2 on Linux), unless such a path exists
``/dev/videoN``        V4L2 camera device
``rtsp://...``         RTSP stream (``?transport=udp`` or ``tcp``; default tcp)
``http(s)://...``      MJPEG or HLS stream over HTTP
``csi://N``            Jetson CSI camera N (nvarguscamerasrc -> nvvidconv -> appsink)
``gst:PIPELINE``       a raw GStreamer pipeline ending in appsink
``file://PATH``, path  video file, image file or folder of images
=====================  ==========================================================
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from fractions import Fraction
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

KINDS = ("path", "camera", "rtsp", "http", "csi", "gst")
TRANSPORTS = ("tcp", "udp")
URI_HELP = ("a file, a folder, a camera index (0), /dev/videoN, rtsp://..., http(s)://..., "
            "csi://N or gst:PIPELINE")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_DEV_VIDEO = re.compile(r"^/dev/video\d+$")
MASK = "***"
# scheme://user:password@ anywhere in the text (a gst: pipeline may hold a URL): the password
# runs to the last @ before the host, as FFmpeg reads an unescaped @ in it; the user name may
# hold an @ too (an e-mail address), as the password starts at the first ":"
_USERINFO = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^:/?#\s]*):"
                       r"[^/?#\s]*@")
# the same with /, ? or # left unescaped in the password, which FFmpeg cannot read either:
# masked to the last @. Digits before them read as a port (admin:12#x@cam is host admin,
# port 12), so host:PORT/path@x is this shape too: only an escaped @ (%40) tells them apart
_RAW_PASSWORD = re.compile(r"(?<![A-Za-z0-9+.-])([A-Za-z][A-Za-z0-9+.-]*://[^:/?#\s\[\]]*):"
                           r"\S*@")
# key=value in a URL's query or fragment, the key one that names a secret (api_key, X-Amz-
# Signature, auth_token, ... too)
_SECRET_ITEM = re.compile(r"([?&;#](?:[^=&;#]*[_.-])?(?:password|passwd|pwd|pass|token|key|"
                          r"secret|auth|sig|signature|access_token|apikey|credential))="
                          r"[^&;#]*", re.IGNORECASE)


@dataclass(frozen=True)
class SourceURI:
    """A parsed source URI.

    ``target`` is what the capture backend opens: a path, a camera index (int), a URL with
    our own query options removed, a sensor id (int, csi) or a pipeline string (gst).
    ``transport`` is set for rtsp only.
    """

    uri: str
    kind: str
    target: str | int
    transport: str | None = None

    @property
    def network(self) -> bool:
        return self.kind in ("rtsp", "http")


def parse_uri(uri: str, *, transport: str | None = None) -> SourceURI:
    """Classify ``uri``; raises ValueError for an unknown scheme or a malformed URI.

    An all-digit ``uri`` is a camera index unless a file or folder of that name exists
    (relative to the working directory): an existing path wins, so a dashcam's date folder
    ``20231015`` opens as a folder; write ``./0`` for a path named like a camera.
    ``file://`` URIs are percent-decoded (``file:///tmp/a%20b.mp4`` is ``/tmp/a b.mp4``).
    ``transport`` ("tcp" or "udp") is the RTSP default; a ``transport=`` query in the URI
    wins over it.
    """
    text = str(uri).strip()
    if not text:
        raise ValueError(f"Expected a source ({URI_HELP}), but got an empty string")
    if text.isdigit() and not os.path.exists(text):
        return SourceURI(text, "camera", int(text))
    if _DEV_VIDEO.match(text):
        return SourceURI(text, "camera", text)
    if text.startswith("gst:"):
        return SourceURI(text, "gst", _check_gst(text[4:].strip()))
    match = _SCHEME.match(text)
    if match is None:
        return SourceURI(text, "path", text)
    scheme = match.group(1).lower()
    if scheme in ("rtsp", "rtsps", "http", "https"):
        _check_url(text, scheme)
    if scheme in ("rtsp", "rtsps"):
        url, found = _pop_transport(text)
        chosen = _check_transport(found or transport or "tcp")
        return SourceURI(text, "rtsp", url, chosen)
    if scheme in ("http", "https"):
        return SourceURI(text, "http", text)
    if scheme == "csi":
        rest = text[len("csi://"):]
        if not rest.isdigit():
            raise ValueError(f"Expected csi://N with a sensor number N, but got {text!r}")
        return SourceURI(text, "csi", int(rest))
    if scheme == "file":
        return SourceURI(text, "path", _file_path(text))
    raise ValueError(f"Unknown source scheme {scheme + '://'!r} in {display_uri(text)!r}; "
                     f"expected {URI_HELP}")


def display_uri(uri: str) -> str:
    """``uri`` as it may be shown, logged or written into an output: a URL's password and
    the values of its query items that name a secret (``token``, ``password``, ``key``,
    ``sig``, ``api_key``, ... in any case) replaced by ``***``; its scheme, user name, host,
    port and path kept. ``rtsp://admin:s3cret@cam:554/live?token=abc&channel=1`` is shown
    as ``rtsp://admin:***@cam:554/live?token=***&channel=1``. Paths, cameras and URLs
    without secrets come back unchanged; a malformed URL is masked all the same. What is
    opened is always ``uri`` itself.
    """
    text = re.sub(r"\S+", _mask_password, str(uri))  # each URL of a gst: pipeline alone
    match = _SCHEME.match(text)
    if match is None or match.group(1).lower() == "file":  # a path's "?" is part of a name
        return text
    start = text.find("?")
    if start < 0:
        return text
    return text[:start] + _SECRET_ITEM.sub(rf"\1={MASK}", text[start:])


def _mask_password(word: re.Match) -> str:
    userinfo = _USERINFO if _USERINFO.search(word.group()) else _RAW_PASSWORD
    return userinfo.sub(rf"\1:{MASK}@", word.group())


def _check_url(text: str, scheme: str) -> None:
    """ValueError naming ``text`` (its password masked) for a network URL whose host or port
    cannot be read, or whose password could be read as its host, port or path."""
    if re.search(r"\s", text):  # not shown: where a password with a space ends is unknown
        raise ValueError("Expected a URL without spaces, tabs or line breaks (write a space in "
                         f"a password or path as %20), but got a {scheme}:// URL with them")
    if not _USERINFO.search(text) and _RAW_PASSWORD.search(text):
        raise ValueError(f"Expected {scheme}://USER:PASSWORD@HOST:PORT/PATH, but got "
                         f"{display_uri(text)!r}: a /, ? or # in a password must be written "
                         "percent-encoded (%2F, %3F, %23), else what comes before it reads as "
                         "the host and port; an @ in a path or query, as %40")
    try:
        parts = urlsplit(text)
        port = parts.port  # a port out of range or not a number raises here
    except ValueError as e:
        raise ValueError(f"Expected {scheme}://HOST:PORT/PATH (a port from 1 to 65535, an IPv6 "
                         f"host in brackets), but got {display_uri(text)!r}: {e}") from None
    if not parts.hostname or port == 0:
        raise ValueError(f"Expected a host in {display_uri(text)!r} (like "
                         f"{scheme}://HOST:PORT/PATH)" if not parts.hostname else
                         f"Expected a port from 1 to 65535 in {display_uri(text)!r}, but got 0")


def _file_path(text: str) -> str:
    """The path of a ``file://`` URI, percent-decoded; ``file://localhost/p`` is ``/p``."""
    rest = text[len("file://"):]
    if rest.startswith("localhost/"):
        rest = rest[len("localhost"):]
    return unquote(rest)


def _check_transport(value: str) -> str:
    if value.lower() not in TRANSPORTS:
        raise ValueError(f"Expected RTSP transport tcp or udp, but got {value!r}")
    return value.lower()


def _pop_transport(url: str) -> tuple[str, str | None]:
    """The URL without its ``transport=`` query item, and that item's value (or None)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    found = [v for k, v in query if k == "transport"]
    rest = urlencode([(k, v) for k, v in query if k != "transport"])
    return urlunsplit(parts._replace(query=rest)), (found[-1] if found else None)


def _check_gst(pipeline: str) -> str:
    if "appsink" not in pipeline:
        raise ValueError("Expected a GStreamer pipeline that ends in appsink (e.g. gst:videotestsrc"
                         f" ! videoconvert ! appsink), but got {display_uri(pipeline)!r}")
    return pipeline


def _rate(fps: float) -> str:
    """A GStreamer fraction; 29.97 and the other NTSC rates become N*1000/1001."""
    ntsc = round(fps * 1.001)
    if abs(fps - round(fps)) > 0.005 and abs(fps - ntsc / 1.001) < 0.005:
        return f"{ntsc * 1000}/1001"
    rate = Fraction(fps).limit_denominator(1001)
    return f"{rate.numerator}/{rate.denominator}"


def csi_pipeline(sensor_id: int = 0, *, width: int = 1280, height: int = 720,
                 fps: float = 30.0, flip: int = 0) -> str:
    """GStreamer pipeline for a Jetson CSI camera, giving BGR frames to OpenCV's appsink.

    The sensor is asked for ``width`` x ``height`` at ``fps`` in NVMM memory; nvvidconv
    converts (and flips, ``flip`` 0-7) on the VIC; appsink keeps only the newest buffer.
    """
    if width < 1 or height < 1 or fps <= 0 or not 0 <= flip <= 7:
        raise ValueError(f"Expected a positive size and fps and flip in 0..7, but got "
                         f"{width}x{height} at {fps} fps, flip {flip}")
    return (f"nvarguscamerasrc sensor-id={sensor_id} ! "
            f"video/x-raw(memory:NVMM), width={width}, height={height}, "
            f"framerate={_rate(fps)}, format=NV12 ! "
            f"nvvidconv flip-method={flip} ! video/x-raw, width={width}, height={height}, "
            "format=BGRx ! videoconvert ! video/x-raw, format=BGR ! "
            "appsink drop=true max-buffers=1 sync=false")


def ffmpeg_capture_options(transport: str | None, existing: str | None = None) -> str | None:
    """The ``OPENCV_FFMPEG_CAPTURE_OPTIONS`` value for an RTSP transport.

    Options are ``key;value`` pairs joined by ``|``; the user's own ``existing`` options are
    kept, and their ``rtsp_transport`` wins over ours.
    """
    pairs = [p for p in (existing or "").split("|") if p]
    if transport and not any(p.split(";")[0] == "rtsp_transport" for p in pairs):
        pairs.append(f"rtsp_transport;{transport}")
    return "|".join(pairs) or None
