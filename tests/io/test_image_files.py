"""Photos and frame dumps as phones, cameras and file shares leave them: hidden files beside
the images, damaged JPEGs, EXIF orientation."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import av
import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from standins import FixedDetector

from drivevision.cli import main
from drivevision.cli.exits import EXIT_INPUT_DAMAGED
from drivevision.errors import SourceError
from drivevision.io.images import image_size
from drivevision.io.sources import open_source
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


def photo(path, seed: int = 0, size=(96, 128)) -> bytes:
    """A JPEG of a textured scene (noise compresses to many bytes of entropy-coded data)."""
    image = np.random.default_rng(seed).integers(0, 255, (*size, 3), dtype=np.uint8)
    cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return path.read_bytes()


def test_a_truncated_jpeg_is_detected_as_it_decodes_with_a_note_naming_it(
        tmp_path, capsys, tiny_checkpoint):
    folder = tmp_path / "dump"
    folder.mkdir()
    photo(folder / "a.jpg", 0)
    whole = photo(folder / "b.jpg", 1)
    (folder / "b.jpg").write_bytes(whole[:len(whole) // 2])  # a copy cut off half way
    # a phone's motion photo: its video follows the JPEG's end; the JPEG is whole
    (folder / "c.jpg").write_bytes(photo(folder / "c.jpg", 2) + b"\x00\x00\x00\x18ftypmp42")
    jsonl = tmp_path / "d.jsonl"
    code = main(["detect", str(folder), "--jsonl", str(jsonl), "--weights", tiny_checkpoint,
                 "-q"])
    err = capsys.readouterr().err
    assert code == EXIT_INPUT_DAMAGED, err  # before: 0, and only libjpeg's line naming no file
    files = [json.loads(line)["file"] for line in jsonl.read_text().splitlines()]
    assert files == ["a.jpg", "b.jpg", "c.jpg"]  # what decodes is still detected
    notes = [line for line in err.splitlines() if line.startswith("drivevision: warning:")]
    assert len(notes) == 1, err
    assert "1 of 3 images decoded only in part" in notes[0]
    assert notes[0].endswith(": b.jpg (Premature end of JPEG file)")


def test_a_whole_jpeg_png_or_webp_has_no_damage_to_report(tmp_path):
    from drivevision.io.image_reading import decode_image

    photo(tmp_path / "a.jpg")
    grey_png(tmp_path / "b.png", 40)
    cv2.imwrite(str(tmp_path / "c.webp"), np.full((8, 8, 3), 9, np.uint8))
    cut = (tmp_path / "b.png").read_bytes()
    (tmp_path / "d.png").write_bytes(cut[:len(cut) // 2])
    cv2.imwrite(str(tmp_path / "e.jpg"), np.full((1, 1, 3), 9, np.uint8))
    assert [decode_image(tmp_path / n)[1] for n in ("a.jpg", "b.png", "c.webp", "e.jpg")
            ] == [None] * 4
    with pytest.raises(SourceError, match="d.png"):  # OpenCV refuses it: not partial
        decode_image(tmp_path / "d.png")


def upright_scene() -> np.ndarray:
    """96x128 BGR: a bright top-left quarter and a red bottom edge, so any turn or flip
    shows."""
    image = np.full((96, 128, 3), 40, np.uint8)
    image[:48, :64] = 230
    image[-8:] = (0, 0, 200)
    return image


@pytest.mark.parametrize("orientation, stored", [
    (3, Image.Transpose.ROTATE_180), (6, Image.Transpose.ROTATE_90),
    (8, Image.Transpose.ROTATE_270)])
def test_a_phone_photo_with_exif_orientation_is_detected_and_written_upright(
        tmp_path, orientation, stored):
    upright = upright_scene()
    folder = tmp_path / "phone"
    folder.mkdir()
    exif = Image.Exif()
    exif[0x0112] = orientation  # the pixels are stored turned; viewers turn them back
    Image.fromarray(upright[..., ::-1]).transpose(stored).save(folder / "IMG_0001.jpg",
                                                               exif=exif, quality=98)
    with open_source(folder) as source:
        (frame,) = list(source)
    assert frame.image.shape == upright.shape
    assert np.abs(frame.image.astype(int) - upright).mean() < 3  # as PIL's exif_transpose
    with Image.open(folder / "IMG_0001.jpg") as viewed:
        shown = np.asarray(ImageOps.exif_transpose(viewed))[..., ::-1]
    assert np.abs(frame.image.astype(int) - shown).mean() < 3

    yolo, crops, out = tmp_path / "ds", tmp_path / "crops", tmp_path / "annotated"
    detect_video(folder, out, yolo=yolo, crops=crops, detector=FixedDetector())
    for written in (yolo / "images" / "IMG_0001.jpg", out / "IMG_0001.jpg"):
        with Image.open(written) as image:  # upright pixels, no tag to turn them again
            assert image.size == (128, 96) and 0x0112 not in image.getexif()
    label = (yolo / "labels" / "IMG_0001.txt").read_text().split()
    x2 = 10 + float(upright.mean())  # the stand-in's box: [1, 1, 10 + mean pixel, 20]
    assert [float(v) for v in label[1:]] == pytest.approx(
        [(1 + x2) / 2 / 128, 10.5 / 96, (x2 - 1) / 128, 19 / 96], abs=2e-3)
    (crop,) = (crops / "car").iterdir()
    assert cv2.imread(str(crop)).shape[:2] == (19, round(x2) - 1)


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


def test_an_exif_turned_photo_counts_at_its_upright_size(tmp_path):
    from drivevision.io.images import image_size

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (128, 96)).save(tmp_path / "side.jpg", exif=exif)
    assert image_size(tmp_path / "side.jpg") == (96, 128)  # as OpenCV decodes it
    assert cv2.imread(str(tmp_path / "side.jpg")).shape[:2] == (128, 96)


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


@pytest.mark.parametrize("orientation, stored", [
    (6, Image.Transpose.ROTATE_90), (8, Image.Transpose.ROTATE_270)])
def test_a_tiff_turned_by_its_orientation_is_read_upright(tmp_path, orientation, stored):
    upright = upright_scene()
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / "scan.tif"
    Image.fromarray(upright[..., ::-1]).transpose(stored).save(path, exif=exif)
    assert cv2.imread(str(path)) is None  # OpenCV 5.0 fails on it
    with open_source(path) as source:  # before: "Cannot decode image (damaged or not an image)"
        (frame,) = list(source)
    assert np.array_equal(frame.image, upright)


def test_what_neither_decoder_reads_is_still_one_line(tmp_path):
    cut = tmp_path / "cut.png"
    grey_png(cut, 80)
    cut.write_bytes(cut.read_bytes()[:60])  # the header whole, the pixels gone
    with pytest.raises(SourceError, match=r"Cannot decode image .*cut.png \(damaged or not an "
                                          r"image\)$"):
        open_source(cut)


def test_a_photo_with_a_damaged_exif_block_is_read_without_pillow_s_warnings(tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(upright_scene()).save(tmp_path / "a.jpg", exif=exif)
    data = bytearray((tmp_path / "a.jpg").read_bytes())
    entry = data.index(b"Exif\x00\x00") + 6 + 8 + 2  # TIFF header, IFD entry count
    assert data[entry:entry + 2] == b"\x01\x12"  # the orientation's entry
    data[entry + 4] = 0xFF  # its value count: far past the end of the file
    (tmp_path / "a.jpg").write_bytes(bytes(data))
    code = ("import sys; from pathlib import Path; from drivevision.io.sources import "
            "open_source; print(len(list(open_source(Path(sys.argv[1])))))")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True,
                          text=True, timeout=60)
    assert done.stdout == "1\n", done.stderr
    assert done.stderr == ""  # before: "UserWarning: Tag data larger than file. Skipping ..."


# how each EXIF orientation stores the upright picture; a viewer undoes it
STORED = {1: None, 2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180,
          4: Image.Transpose.FLIP_TOP_BOTTOM, 5: Image.Transpose.TRANSPOSE,
          6: Image.Transpose.ROTATE_90, 7: Image.Transpose.TRANSVERSE,
          8: Image.Transpose.ROTATE_270}


@pytest.mark.parametrize("orientation", sorted(STORED))
@pytest.mark.parametrize("kind", ["jpg", "tif", "16-bit tif"])
def test_every_exif_orientation_reads_as_photo_viewers_show_it(tmp_path, orientation, kind):
    upright = upright_scene()
    picture = Image.fromarray(upright[..., ::-1])
    if kind == "16-bit tif":
        picture = picture.convert("L")
        upright = np.repeat(np.asarray(picture)[..., None], 3, axis=2)
    if STORED[orientation] is not None:
        picture = picture.transpose(STORED[orientation])
    if kind == "16-bit tif":  # a scanner's or a raw converter's grey: 257 x the 8-bit level
        picture = Image.fromarray(np.asarray(picture).astype(np.uint16) * 257)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = tmp_path / f"photo.{kind.split()[-1]}"
    picture.save(path, exif=exif, **({"quality": 98} if kind == "jpg" else {}))
    if kind == "16-bit tif" and orientation > 4:  # Pillow would leave it as stored
        with pytest.raises(SourceError, match=r"photo.tif \(a 16-bit TIFF turned on its side"):
            open_source(path)  # before: "damaged or not an image"
        return
    with open_source(path) as source:
        (frame,) = list(source)
    assert frame.image.shape == upright.shape
    assert np.abs(frame.image.astype(int) - upright).mean() < 3
    assert image_size(path) == (128, 96)  # the size checked before decoding: also upright


def test_float_and_32_bit_tiffs_are_read_scaled_to_8_bits(tmp_path):
    ramp = np.linspace(0, 1, 96 * 128, dtype=np.float32).reshape(96, 128)
    Image.fromarray(ramp).save(tmp_path / "a.tif")  # 0..1, as image tools write float
    Image.fromarray(ramp * 40 - 10).save(tmp_path / "b.tif")  # a float in its own units
    Image.fromarray((ramp * 1e6).astype(np.int32)).save(tmp_path / "c.tif")
    Image.fromarray((ramp * 5000).astype(np.int32)).save(tmp_path / "d.tif")  # depth in mm
    cv2.imwrite(str(tmp_path / "e.tif"), np.dstack([ramp, ramp / 2, ramp / 4]))  # BGR float
    with open_source(tmp_path) as source:  # before: all 5 "damaged or not images"
        frames = list(source)
    assert source.notes == []
    level = np.rint(ramp * 255)  # each scaled so the ramp spans 0..255
    for frame in frames[:4]:
        assert frame.image.dtype == np.uint8 and frame.image.shape == (96, 128, 3)
        assert np.abs(frame.image.astype(float) - level[..., None]).max() <= 1, frame.file
    assert np.abs(frames[4].image.astype(float)
                  - np.dstack([level, level / 2, level / 4])).max() <= 1


def run_quietly(code: str, path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", "import sys; from pathlib import Path; from "
                           "drivevision.io.sources import open_source; " + code, str(path)],
                          capture_output=True, text=True, timeout=60)


def test_a_single_truncated_jpeg_is_decoded_once_and_named_in_its_note_alone(tmp_path):
    whole = photo(tmp_path / "cut.jpg")
    (tmp_path / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    done = run_quietly("s = open_source(Path(sys.argv[1])); print(len(list(s)), s.notes)",
                       tmp_path / "cut.jpg")
    assert done.stdout.startswith("1 ['"), done.stderr
    assert "decoded only in part" in done.stdout and "cut.jpg (Premature end of JPEG file)" in (
        done.stdout)
    # libjpeg's own line, naming no file: before, once (twice before that)
    assert done.stderr == ""


def scrambled(path, seed: int = 0) -> None:
    """A JPEG of full length whose entropy-coded data is overwritten part way: a bit error
    on a card, a bad sector of a share."""
    data = bytearray(photo(path, seed, size=(240, 320)))
    rng = np.random.default_rng(seed)
    middle = (data.index(b"\xff\xda") + len(data)) // 2  # half way through the scan
    data[middle:middle + 2000] = rng.integers(0, 255, 2000, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(data))


def test_a_jpeg_scrambled_inside_is_one_warning_naming_it_not_libjpeg_s_bare_line(
        tmp_path, tiny_checkpoint):
    folder = tmp_path / "card"
    folder.mkdir()
    photo(folder / "IMG_0001.jpg", 1)
    scrambled(folder / "IMG_0002.jpg")
    photo(folder / "IMG_0003.jpg", 3)
    jsonl = tmp_path / "d.jsonl"
    done = subprocess.run([sys.executable, "-m", "drivevision", "detect", str(folder),
                           "--jsonl", str(jsonl), "--weights", tiny_checkpoint, "-q"],
                          capture_output=True, text=True, timeout=120)
    # before: exit 0, and only libjpeg's "Corrupt JPEG data: 1998 extraneous bytes before
    # marker 0xd9", naming no file
    assert done.returncode == EXIT_INPUT_DAMAGED, done.stderr
    assert done.stderr.count("Corrupt JPEG data") == 1, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith(f"drivevision: warning: {folder}: 1 of 3 images decoded only in "
                           "part (a damaged or truncated JPEG")
    assert re.search(r": IMG_0002.jpg \(Corrupt JPEG data: [^)]*\)$", line), line
    assert [json.loads(x)["file"] for x in jsonl.read_text().splitlines()] == [
        "IMG_0001.jpg", "IMG_0002.jpg", "IMG_0003.jpg"]  # the run went on


def test_what_else_reaches_stderr_while_a_jpeg_decodes_is_passed_on_libjpeg_s_not(
        tmp_path):
    scrambled(tmp_path / "a.jpg")
    code = ("import os, sys, cv2; from pathlib import Path\n"
            "from drivevision.io import image_reading\n"
            "imread = cv2.imread\n"
            "def noisy(*args):  # another thread's line, and a warning that is no damage\n"
            "    os.write(2, b'a line of another thread\\n')\n"
            "    image = imread(*args)\n"
            "    os.write(2, b'Warning: unknown JFIF revision number 1.09\\n')\n"
            "    return image\n"
            "cv2.imread = noisy\n"
            "image, damage = image_reading.decode_image(Path(sys.argv[1]))\n"
            "print(image.shape, damage)\n"
            "image_reading.read_image(Path(sys.argv[1]))\n")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.jpg")],
                          capture_output=True, text=True, timeout=60)
    assert re.fullmatch(r"\(240, 320, 3\) Corrupt JPEG data: .*\n", done.stdout), done.stderr
    lines = done.stderr.splitlines()
    assert lines[:2] == ["a line of another thread"] * 2, done.stderr
    # read_image, which returns no damage, names the file in libjpeg's line
    assert re.fullmatch(rf"{re.escape(str(tmp_path / 'a.jpg'))}: Corrupt JPEG data: .*",
                        lines[2]), done.stderr
    assert len(lines) == 3, done.stderr


@pytest.mark.parametrize("name", ["pillow.tif", "opencv.tif", "scan.bmp"])
def test_a_cut_tiff_or_bmp_is_one_line_naming_it_without_opencv_s_errors(tmp_path, name):
    path = tmp_path / name
    image = np.random.default_rng(1).integers(0, 255, (96, 128, 3), np.uint8)
    if name == "pillow.tif":
        Image.fromarray(image).save(path)  # its directory first, the pixels after
    else:
        cv2.imwrite(str(path), image)
    if name == "opencv.tif":
        with open(path, "rb") as file:  # libtiff writes the directory after the pixels
            assert int.from_bytes(file.read(8)[4:], "little") > image.size
    path.write_bytes(path.read_bytes()[:path.stat().st_size // 2])
    done = run_quietly("open_source(Path(sys.argv[1]))", path)
    (last,) = [line for line in done.stderr.splitlines() if line.strip()][-1:]
    assert last == (f"drivevision.errors.SourceError: Cannot decode image {path} (damaged or "
                    "not an image)")
    assert "ERROR" not in done.stderr and "TIFF" not in done.stderr, done.stderr  # OpenCV's


def test_a_folder_holding_only_a_nas_s_folders_says_so(tmp_path):
    (tmp_path / "@eaDir" / "IMG_0001.jpg").mkdir(parents=True)
    (tmp_path / "#recycle").mkdir()
    with pytest.raises(SourceError) as refused:
        open_source(tmp_path)
    # before: "it holds 2 subfolders; drivevision batch ... takes the videos and folders of
    # images in it and under it", which finds none either
    assert str(refused.value) == NO_IMAGES.format(tmp_path) + (
        ": it holds only folders a NAS or the system keeps (#recycle, @eaDir)")


@pytest.mark.parametrize("orientation", [1, 6])
def test_a_cielab_tiff_is_read_in_its_colours(tmp_path, orientation):
    upright = upright_scene()
    picture = Image.fromarray(upright[..., ::-1]).convert("LAB")  # a scanner's colours
    exif = Image.Exif()
    exif[0x0112] = orientation
    if STORED[orientation] is not None:
        picture = picture.transpose(STORED[orientation])
    picture.save(tmp_path / "scan.tif", exif=exif)
    with open_source(tmp_path / "scan.tif") as source:
        (frame,) = list(source)
    # before: L*, a* and b* read as blue, green and red (the red edge came out pale blue)
    assert frame.image.shape == upright.shape
    error = np.abs(frame.image.astype(int) - upright)
    assert error.mean() < 2 and error.max() <= 10  # 8-bit Lab's steps in saturated red


@pytest.mark.parametrize("name", ["crc.png", "cut.png", "lzw.tif"])
def test_a_damaged_png_or_tiff_is_one_line_naming_it_without_the_decoder_s(tmp_path, name):
    path = tmp_path / name
    image = np.random.default_rng(2).integers(0, 255, (96, 128, 3), np.uint8)
    if name == "lzw.tif":
        Image.fromarray(image).save(path, compression="tiff_lzw")
    else:
        cv2.imwrite(str(path), image)
    data = bytearray(path.read_bytes())
    if name == "cut.png":
        data = data[:len(data) // 2]
    else:  # a bit error in the pixel data: PNG's checksum, LZW's codes
        start = data.index(b"IDAT") + 200 if name == "crc.png" else 200
        data[start:start + 200] = b"\xff" * 200
    path.write_bytes(bytes(data))
    done = run_quietly("open_source(Path(sys.argv[1]))", path)
    # before: also "libpng error: IDAT: CRC error" (twice), "libpng error: Read Error"
    # (twice) or libtiff's "tempfile.tif: Using code not yet in table.", naming no file
    assert [line for line in done.stderr.splitlines() if not line.startswith(" ")] == [
        "Traceback (most recent call last):",
        f"drivevision.errors.SourceError: Cannot decode image {path} (damaged or not an image)"]


def test_images_decode_with_python_s_stderr_closed_or_none(tmp_path):
    scrambled(tmp_path / "a.jpg")
    for setup in ("sys.stderr.close()", "sys.stderr = None"):
        done = run_quietly(f"{setup}; s = open_source(Path(sys.argv[1])); print(len(list(s)))",
                           tmp_path / "a.jpg")
        assert done.stdout == "1\n", done.stderr  # before: ValueError (closed file)
