"""Photos and frame dumps as phones, cameras and file shares leave them: hidden files beside
the images, damaged JPEGs, EXIF orientation."""

from __future__ import annotations

import json

import cv2
import numpy as np
from standins import FixedDetector

from drivevision.pipeline.runner import detect_video

# the start of a macOS resource fork ("AppleDouble"), which Finder writes as ._NAME beside
# each file it copies to a drive without macOS metadata (FAT/exFAT cards, SMB shares)
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "


def grey_png(path, level: int, size=(48, 64)) -> None:
    cv2.imwrite(str(path), np.full((*size, 3), level, np.uint8))


def test_hidden_files_in_a_folder_of_images_are_not_read_as_images(tmp_path):
    folder = tmp_path / "card"
    folder.mkdir()
    grey_png(folder / "IMG_0001.png", 30)
    grey_png(folder / "IMG_0002.png", 60)
    (folder / "._IMG_0001.png").write_bytes(APPLE_DOUBLE)
    (folder / ".DS_Store.jpg").write_bytes(b"Bud1")
    jsonl = tmp_path / "d.jsonl"
    summary = detect_video(folder, jsonl=jsonl, detector=FixedDetector())
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    assert [(line["frame"], line["file"]) for line in lines] == [
        (0, "IMG_0001.png"), (1, "IMG_0002.png")]
    assert summary.notes == []  # before: "skipped 1 of 3 images that could not be decoded"
