"""A source's URL as shown, logged and written: its password and tokens masked
(``display_uri``, ``Source.name``); what is opened keeps them."""

from __future__ import annotations

import socket

import pytest
from mjpeg_server import MjpegTestServer

from drivevision.errors import SourceError
from drivevision.io.sources import open_source
from drivevision.io.uri import display_uri, parse_uri


@pytest.mark.parametrize("uri, shown", [
    ("rtsp://admin:s3cret@192.168.1.20:554/stream1", "rtsp://admin:***@192.168.1.20:554/stream1"),
    ("rtsps://admin:s3cret@cam/live", "rtsps://admin:***@cam/live"),
    ("rtsp://:s3cret@cam/live", "rtsp://:***@cam/live"),
    ("rtsp://admin@cam:554/live", "rtsp://admin@cam:554/live"),  # a user name alone is kept
    ("rtsp://admin:p%40ss%3Aw0rd@cam/live", "rtsp://admin:***@cam/live"),  # percent-encoded
    ("rtsp://admin:p@ss:w0rd@cam:554/live", "rtsp://admin:***@cam:554/live"),  # @ unescaped
    ("rtsp://admin:pa/ss@cam/live", "rtsp://admin:***@cam/live"),  # / unescaped: no port
    ("rtsp://user:s3cret@[fe80::1]:554/s", "rtsp://user:***@[fe80::1]:554/s"),
    ("http://[::1]:8080/cam@front/live", "http://[::1]:8080/cam@front/live"),
    ("http://cam:8080/a%40b/live", "http://cam:8080/a%40b/live"),  # an @ in the path
    # digits, then a bare # ? or /: host admin, port 12 to FFmpeg, so masked to the last @
    ("rtsp://admin:12#x@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://admin:12?x@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://admin:12/x@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://admin:#x@cam/live", "rtsp://admin:***@cam/live"),
    ("rtsp://admin:12#x@y@cam:554/live", "rtsp://admin:***@cam:554/live"),
    ("http://cam:8080/a@b/live", "http://cam:***@b/live"),  # the same shape: masked too
    ("rtsp://me@mail.com:s3cret@cam/live", "rtsp://me@mail.com:***@cam/live"),  # @ in the user
    ("rtsp://me@mail.com:12#x@cam/live", "rtsp://me@mail.com:***@cam/live"),
    ("gst:rtspsrc location=rtsp://a:s3cret@cam ! c. rtspsrc location=rtsp://b:12#x@cam2 ! c. "
     "compositor name=c ! appsink",
     "gst:rtspsrc location=rtsp://a:***@cam ! c. rtspsrc location=rtsp://b:***@cam2 ! c. "
     "compositor name=c ! appsink"),  # each URL of a pipeline
    ("https://cdn/live/index.m3u8?token=abc123&channel=2",
     "https://cdn/live/index.m3u8?token=***&channel=2"),
    ("http://cam/video?user=admin&PassWord=s3cret&pwd=x&passwd=y&pass=z",
     "http://cam/video?user=admin&PassWord=***&pwd=***&passwd=***&pass=***"),
    ("https://s3/clip.ts?X-Amz-Signature=ab&X-Amz-Credential=cd&sig=1&api_key=2&apikey=3"
     "&access_token=4&Auth=5&secret=6&key=7&keyframe=1",
     "https://s3/clip.ts?X-Amz-Signature=***&X-Amz-Credential=***&sig=***&api_key=***"
     "&apikey=***&access_token=***&Auth=***&secret=***&key=***&keyframe=1"),
    ("http://u:p@127.0.0.1:99999/x?token=t", "http://u:***@127.0.0.1:99999/x?token=***"),
    ("rtsp://cam.local:8554/front?transport=udp", "rtsp://cam.local:8554/front?transport=udp"),
    ("gst:rtspsrc location=rtsp://admin:s3cret@cam/live ! appsink",
     "gst:rtspsrc location=rtsp://admin:***@cam/live ! appsink"),
    ("/videos/cam@front/a?token=b.mp4", "/videos/cam@front/a?token=b.mp4"),  # a path: a name
    ("file:///videos/a?token=b.mp4", "file:///videos/a?token=b.mp4"),
    ("clip.mp4", "clip.mp4"),
    ("0", "0"),
    ("/dev/video0", "/dev/video0"),
    ("csi://0", "csi://0"),
])
def test_display_uri_masks_passwords_and_secret_query_values(uri, shown):
    assert display_uri(uri) == shown


@pytest.mark.parametrize("uri", [
    "http://admin:s3cret@127.0.0.1:99999/x",  # port out of range
    "http://admin:s3cret@[::1/x",  # unclosed IPv6 bracket
    "rtsp://admin:s3cret@/x",  # no host
    "rtsp://admin:s3/cret@cam/x",  # a / left unescaped in the password
    "rtsp://admin:12#s3cret@cam/x",  # digits then a bare #: read as host admin, port 12
    "rtsp://admin:12?s3cret@cam/x",
    "rtsp://admin:12/s3cret@cam/x",
    "http://admin:#s3cret@cam/x",
    "rtsp://admin:12#s3@x@cam/x",
    "ftp://admin:s3cret@host/x",  # unknown scheme
])
def test_a_malformed_url_is_refused_without_its_password(uri):
    with pytest.raises(ValueError) as info:
        parse_uri(uri)
    assert "s3" not in str(info.value) and "admin:***@" in str(info.value)


def test_a_bare_hash_after_digits_is_refused_saying_how_to_write_it():
    with pytest.raises(ValueError) as info:
        parse_uri("rtsp://admin:12#s3cret@cam/live")
    assert str(info.value) == (
        "Expected rtsp://USER:PASSWORD@HOST:PORT/PATH, but got 'rtsp://admin:***@cam/live': a "
        "/, ? or # in a password must be written percent-encoded (%2F, %3F, %23), else what "
        "comes before it reads as the host and port; an @ in a path or query, as %40")
    assert parse_uri("rtsp://admin:12%23s3cret@cam/live").target == \
        "rtsp://admin:12%23s3cret@cam/live"  # percent-encoded: opened as written


@pytest.mark.parametrize("uri", [
    "rtsp://admin:s3 cret@cam/live",
    "http://admin:s3cret@cam/my live?token=s3",
    "rtsp://admin:s3\tcret@cam/live",  # a tab would be dropped from the password unseen
])
def test_a_url_with_a_space_is_refused_without_showing_it(uri):
    with pytest.raises(ValueError) as info:
        parse_uri(uri)
    assert "s3" not in str(info.value) and "%20" in str(info.value)


def test_a_stream_that_cannot_be_opened_is_named_without_its_password():
    with socket.socket() as closed:  # bound, not listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        with pytest.raises(SourceError) as info:
            open_source(f"rtsp://admin:s3cret@127.0.0.1:{port}/stream1?token=t0k")
    assert str(info.value).startswith(
        f"Cannot open rtsp://admin:***@127.0.0.1:{port}/stream1?token=***: no stream there")


def test_a_source_opens_its_url_and_is_named_without_the_password():
    with MjpegTestServer(fps=30) as server:
        url = server.url.replace("http://", "http://admin:s3cret@") + "?token=t0k"
        with open_source(url) as source:
            assert next(iter(source)).image.size  # opened with the credentials given
            assert source.uri == url
            assert source.name == server.url.replace("http://", "http://admin:***@") + \
                "?token=***"
