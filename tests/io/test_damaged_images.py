"""Damaged image files (truncated or scrambled JPEGs, cut TIFFs, BMPs and PNGs): each is
one line naming it, without the decoders' own messages on stderr."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import cv2
import numpy as np
import pytest
from PIL import Image
from written_images import grey_png, photo

from drivevision.cli import main
from drivevision.cli.exits import EXIT_INPUT_DAMAGED
from drivevision.errors import SourceError
from drivevision.io.sources import open_source


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


def test_what_neither_decoder_reads_is_still_one_line(tmp_path):
    cut = tmp_path / "cut.png"
    grey_png(cut, 80)
    cut.write_bytes(cut.read_bytes()[:60])  # the header whole, the pixels gone
    with pytest.raises(SourceError, match=r"Cannot decode image .*cut.png \(damaged or not an "
                                          r"image\)$"):
        open_source(cut)


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
