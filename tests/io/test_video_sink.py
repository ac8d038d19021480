"""The annotated video as players see it: the container its suffix names."""

from __future__ import annotations

import av
import pytest
from standins import FixedDetector, count_frames

from drivevision.pipeline.runner import detect_video

BRANDS = {b"isom": "mp4", b"iso2": "mp4", b"mp41": "mp4", b"mp42": "mp4",  # browsers' MP4
          b"qt  ": "quicktime"}


def container_kind(path) -> str:
    """"mp4", "quicktime" or "matroska" from a file's first bytes (else those bytes)."""
    head = path.read_bytes()[:12]
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "matroska"
    if head[4:8] == b"ftyp" and head[8:12] in BRANDS:
        return BRANDS[head[8:12]]
    return repr(head)


def top_boxes(path) -> list[bytes]:
    """The four-letter types of an ISO BMFF / QuickTime file's top-level boxes, in order."""
    data, pos, kinds = path.read_bytes(), 0, []
    while pos + 8 <= len(data):
        kinds.append(data[pos + 4:pos + 8])
        pos += int.from_bytes(data[pos:pos + 4], "big")
    return kinds


@pytest.mark.parametrize("name, kind", [("out.mp4", "mp4"), ("OUT.MP4", "mp4"),
                                        ("out.mov", "quicktime"), ("out.mkv", "matroska")])
def test_finished_video_is_the_container_its_suffix_names(tmp_path, clip_path, name, kind):
    out = tmp_path / name
    detect_video(clip_path, out, detector=FixedDetector())
    assert container_kind(out) == kind
    assert count_frames(out) == 12
    if kind != "matroska":  # copied out of its fragments: index first, frame count stored
        boxes = top_boxes(out)
        assert b"moof" not in boxes and boxes.index(b"moov") < boxes.index(b"mdat")
        with av.open(str(out)) as container:
            assert container.streams.video[0].frames == 12
