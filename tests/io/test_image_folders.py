"""Folders of photos and frame dumps as phones, cameras and file shares leave them: hidden
files beside the images, no images at all, images of several sizes, natural order, links
to missing images."""

from __future__ import annotations

import json

import av
import pytest
from standins import FixedDetector
from written_images import grey_png

from drivevision.errors import SourceError
from drivevision.io.sources import open_source
from drivevision.pipeline.runner import detect_video

# the start of a macOS resource fork ("AppleDouble"), which Finder writes as ._NAME beside
# each file it copies to a drive without macOS metadata (FAT/exFAT cards, SMB shares)
APPLE_DOUBLE = b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        "


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


NO_IMAGES = "No images (.bmp, .jpeg, .jpg, .png, .tif, .tiff, .webp) in folder {}"


@pytest.mark.parametrize("names, held", [
    ([], ": it is empty"),
    ([".DS_Store", "._IMG_0001.jpg"], ": it is empty"),
    (["IMG_0001.HEIC", "IMG_0002.heic", "clip.gif", "README"],
     ": it holds 4 other files (.gif, .heic, no suffix)"),
    (["2026-11-28/", "2026-11-29/", "notes.txt"],
     ": it holds 2 subfolders and 1 other file (.txt); drivevision batch {} takes the videos "
     "and folders of images in it and under it"),
    (["front.MP4", "rear.mp4"], ": it holds 2 other files (.mp4); drivevision batch {} takes "
     "the videos and folders of images in it and under it"),
])
def test_a_folder_without_images_says_what_it_holds_instead(tmp_path, names, held):
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in names:
        if name.endswith("/"):
            (folder / name).mkdir()
        else:
            (folder / name).write_bytes(b"x")
    with pytest.raises(SourceError) as refused:
        open_source(folder)
    # before: only the first part, whatever the folder held
    assert str(refused.value) == NO_IMAGES.format(folder) + held.format(folder)


def test_a_folder_video_has_the_size_most_images_have_not_a_first_thumbnail_s(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    grey_png(folder / "a0.png", 90, size=(1, 1))  # a stray thumbnail, first in order
    for i in range(1, 4):
        grey_png(folder / f"a{i}.png", 30 * i, size=(96, 128))
    grey_png(folder / "a4.png", 200, size=(128, 96))  # a portrait one
    video = tmp_path / "dump.mp4"
    summary = detect_video(folder, video, detector=FixedDetector())
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        assert (stream.width, stream.height) == (128, 96)  # before: 1x1 (and MPEG-4)
        assert stream.codec_context.name == "h264"
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(stream)]
    assert len(frames) == 5
    assert abs(frames[2].mean() - 60) < 4  # a 128x96 image fills its frame
    portrait = frames[4][40:]  # below the stand-in's box: bars beside the image
    assert portrait[:, :24].max() < 20 and portrait[:, 40:88].mean() > 150
    assert [n for n in summary.notes if "letterboxed" in n] == [
        f"{video}: frames of another size than the video's (1x1, not 128x96) are "
        "letterboxed into it, aspect ratio kept"]


def test_a_folder_sorts_naturally_also_with_superscript_digits_in_a_name(tmp_path):
    for name in ("img10.png", "img2.png", "IMG1.png", "m1²2.png", "m1².png"):
        grey_png(tmp_path / name, 50)
    with open_source(tmp_path) as source:  # before: ValueError: invalid literal for int()
        assert source.names == ["IMG1.png", "img2.png", "img10.png", "m1²2.png", "m1².png"]


def test_links_to_missing_images_and_loops_of_links_are_named_and_skipped(tmp_path):
    folder = tmp_path / "dump"
    folder.mkdir()
    grey_png(folder / "a.png", 30)
    (folder / "b.png").symlink_to(tmp_path / "card" / "b.png")  # a card no longer mounted
    (folder / "c.png").symlink_to("d.png")
    (folder / "d.png").symlink_to("c.png")
    (folder / "e.png").symlink_to(tmp_path / "e_elsewhere.png")
    grey_png(tmp_path / "e_elsewhere.png", 60)  # a link to an image is read as it
    with open_source(folder) as source:
        frames = list(source)
    assert [(f.index, f.file) for f in frames] == [(0, "a.png"), (4, "e.png")]
    # before: b, c and d were left out without a word
    assert source.notes == [
        f"{folder}: skipped 3 of 5 images that could not be read: b.png (a link to "
        f"{tmp_path / 'card' / 'b.png'}: No such file or directory); c.png (a link to d.png: "
        "Too many levels of symbolic links); d.png (a link to c.png: Too many levels of "
        "symbolic links)"]


def test_a_folder_of_only_links_to_missing_images_says_so_in_one_line(tmp_path):
    (tmp_path / "a.jpg").symlink_to("/nonexistent/a.jpg")
    with open_source(tmp_path) as source, pytest.raises(SourceError) as failed:
        list(source)
    assert str(failed.value) == (f"{tmp_path}: its only image could not be read: a.jpg (a "
                                 "link to /nonexistent/a.jpg: No such file or directory)")


def test_a_folder_holding_only_a_nas_s_folders_says_so(tmp_path):
    (tmp_path / "@eaDir" / "IMG_0001.jpg").mkdir(parents=True)
    (tmp_path / "#recycle").mkdir()
    with pytest.raises(SourceError) as refused:
        open_source(tmp_path)
    # before: "it holds 2 subfolders; drivevision batch ... takes the videos and folders of
    # images in it and under it", which finds none either
    assert str(refused.value) == NO_IMAGES.format(tmp_path) + (
        ": it holds only folders a NAS or the system keeps (#recycle, @eaDir)")
