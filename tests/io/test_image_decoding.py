"""Photos read as photo viewers show them: upright by their EXIF or TIFF orientation, at
their upright size, float, 32-bit and CIELAB TIFFs in their colours."""

from __future__ import annotations

import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps
from standins import FixedDetector

from drivevision.errors import SourceError
from drivevision.io.images import image_size
from drivevision.io.sources import open_source
from drivevision.pipeline.runner import detect_video


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


def test_an_exif_turned_photo_counts_at_its_upright_size(tmp_path):
    from drivevision.io.images import image_size

    exif = Image.Exif()
    exif[0x0112] = 6
    Image.new("RGB", (128, 96)).save(tmp_path / "side.jpg", exif=exif)
    assert image_size(tmp_path / "side.jpg") == (96, 128)  # as OpenCV decodes it
    assert cv2.imread(str(tmp_path / "side.jpg")).shape[:2] == (128, 96)


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
