"""`drivevision detect` writes images as well as videos, and lands somewhere by default."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivevision.cli import main
from drivevision.io.image_sinks import RECORD

DEMO = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"  # finds the scene's cars


def scene(width: int, height: int, seed: int) -> np.ndarray:
    from drivevision.synthetic import SceneGenerator

    return SceneGenerator(width=width, height=height, seed=seed).frame(3).image


def run(capsys, *args):
    code = main(["detect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def mixed_folder(tmp_path) -> Path:
    folder = tmp_path / "shots"
    folder.mkdir()
    cv2.imwrite(str(folder / "wide.png"), scene(160, 96, 1))
    cv2.imwrite(str(folder / "tall.jpg"), scene(96, 160, 2))
    return folder


def files_in(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_an_image_becomes_an_annotated_image_of_the_same_size(tmp_path, capsys):
    photo = tmp_path / "photo.jpg"
    cv2.imwrite(str(photo), scene(320, 192, 1))
    code, out, err = run(capsys, photo, tmp_path / "photo_ann.jpg", "--weights", DEMO)
    assert code == 0, err
    annotated = cv2.imread(str(tmp_path / "photo_ann.jpg"))
    assert annotated.shape == (192, 320, 3)
    drawn = np.abs(annotated.astype(int) - cv2.imread(str(photo)).astype(int))
    assert "detections:" in out and drawn.max() > 100
    assert out.startswith("1 frame in ")  # not "1 frames"
    assert files_in(tmp_path) == ["photo.jpg", "photo_ann.jpg"]  # nothing left beside it
    assert f"wrote {tmp_path / 'photo_ann.jpg'}" in out


def test_a_folder_becomes_a_folder_of_annotated_images_each_at_its_own_size(
        tmp_path, capsys, tiny_checkpoint, mixed_folder):
    out_folder = tmp_path / "annotated"
    code, _, err = run(capsys, mixed_folder, "-o", out_folder, "--weights", tiny_checkpoint)
    assert code == 0, err
    assert files_in(out_folder) == [RECORD, "tall.jpg", "wide.png"]
    assert cv2.imread(str(out_folder / "wide.png")).shape == (96, 160, 3)
    assert cv2.imread(str(out_folder / "tall.jpg")).shape == (160, 96, 3)
    assert "letterbox" not in err and "stretch" not in err


def test_a_video_becomes_numbered_png_frames(tmp_path, capsys, tiny_checkpoint, clip_path):
    code, _, err = run(capsys, clip_path, tmp_path / "frames/", "--weights", tiny_checkpoint)
    assert code == 0, err
    assert files_in(tmp_path / "frames") == [RECORD, *frame_names(12)]


def frame_names(count: int) -> list[str]:
    return [f"frame_{i:06d}.png" for i in range(count)]


def test_a_second_run_into_a_folder_of_frames_never_mixes_with_the_first(
        tmp_path, capsys, tiny_checkpoint, clip_path):
    from drivevision.synthetic import write_clip

    short, frames = tmp_path / "short.mp4", tmp_path / "frames"
    write_clip(short, 8, width=160, height=96, fps=10.0, seed=1)
    assert run(capsys, clip_path, f"{frames}/", "--weights", tiny_checkpoint)[0] == 0
    (frames / "notes.txt").write_text("mine")
    first = {name: (frames / name).read_bytes() for name in frame_names(12)}
    code, _, err = run(capsys, short, f"{frames}/", "--weights", tiny_checkpoint)
    assert code == 2 and len(err.splitlines()) == 1 and f"-o {frames}" in err, err
    assert {name: (frames / name).read_bytes() for name in frame_names(12)} == first
    code, _, err = run(capsys, short, "-o", frames, "--weights", tiny_checkpoint)
    assert code == 0, err  # before: 8 new frames, and 4 stale ones of the first run
    assert files_in(frames) == [RECORD, *frame_names(8), "notes.txt"]
    assert (frames / "notes.txt").read_text() == "mine"
    assert "4 of them not written again were removed" in err


def test_a_folder_holding_images_no_run_wrote_is_refused_and_left_alone(
        tmp_path, capsys, tiny_checkpoint, clip_path):
    """Frames a user extracted under our names (ffmpeg's frame_%06d.png) stay theirs."""
    frames = tmp_path / "frames"
    frames.mkdir()
    cv2.imwrite(str(frames / "frame_000000.png"), scene(160, 96, 1))
    before = (frames / "frame_000000.png").read_bytes()
    code, _, err = run(capsys, clip_path, "-o", frames, "--weights", tiny_checkpoint)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "1 image that no drivevision run wrote there (frame_000000.png)" in err
    assert files_in(frames) == ["frame_000000.png"]
    assert (frames / "frame_000000.png").read_bytes() == before


def test_a_folder_of_mixed_sizes_is_letterboxed_into_a_video_with_a_warning(
        tmp_path, capsys, tiny_checkpoint, mixed_folder):
    video = tmp_path / "shots.mp4"
    code, _, err = run(capsys, mixed_folder, video, "--weights", tiny_checkpoint)
    assert code == 0, err
    assert "letterboxed" in err and "160x96, not 96x160" in err
    cap = cv2.VideoCapture(str(video))
    frames = [cap.read()[1] for _ in range(2)]
    assert all(f.shape == (160, 96, 3) for f in frames)  # natural order: tall.jpg first
    wide = frames[1]
    assert wide[:40].max() < 30 and wide[-40:].max() < 30  # black bars, not stretched
    assert wide[60:100].mean() > 60


def test_no_output_option_writes_to_a_new_runs_folder_and_says_where(capsys, clip_path,
                                                                      tiny_checkpoint):
    code, out, err = run(capsys, clip_path, "--weights", tiny_checkpoint)
    assert code == 0, err
    assert "12 frames" in out
    assert sorted(Path("runs/detect").iterdir()) == [Path("runs/detect/clip")]
    assert files_in(Path("runs/detect/clip")) == ["clip.jsonl", "clip.mp4"]
    assert "wrote runs/detect/clip/clip.mp4" in out
    code, out, _ = run(capsys, clip_path, "--weights", tiny_checkpoint)
    assert code == 0 and "wrote runs/detect/clip2/clip.mp4" in out  # never overwrites
    assert len(Path("runs/detect/clip/clip.jsonl").read_text().splitlines()) == 12


@pytest.mark.parametrize("blocker", ["runs", "runs/detect"])
def test_a_runs_folder_that_cannot_be_made_is_one_line_naming_what_blocks_it(
        capsys, clip_path, tiny_checkpoint, blocker):
    """(before: ``[Errno 20] Not a directory: 'runs/detect'``, exit 1)"""
    Path(blocker).parent.mkdir(parents=True, exist_ok=True)
    Path(blocker).write_text("a file of mine")
    code, out, err = run(capsys, clip_path, "--weights", tiny_checkpoint)
    assert code == 2 and not out
    assert err == (f"drivevision: error: Cannot make {Path('runs/detect/clip')} for the "
                   f"results: {Path(blocker)} is a file, not a folder; give the outputs (-o, "
                   "--jsonl) or run elsewhere\n")
    assert Path(blocker).read_text() == "a file of mine"


def test_a_read_only_runs_folder_is_one_line(capsys, clip_path, tiny_checkpoint,
                                            monkeypatch):
    Path("runs/detect").mkdir(parents=True)
    real = Path.mkdir

    def read_only(path, *args, **kwargs):
        if path.parent == Path("runs/detect"):
            raise PermissionError(13, "Permission denied", str(path))
        return real(path, *args, **kwargs)
    monkeypatch.setattr(Path, "mkdir", read_only)
    code, _, err = run(capsys, clip_path, "--weights", tiny_checkpoint)
    assert code == 2 and err == (
        f"drivevision: error: Cannot make {Path('runs/detect/clip')} for the results: "
        "Permission denied; give the outputs (-o, --jsonl) or run elsewhere\n")


def test_no_save_writes_nothing(capsys, clip_path, tiny_checkpoint):
    code, out, _ = run(capsys, clip_path, "--weights", tiny_checkpoint, "--no-save")
    assert code == 0 and "12 frames" in out and "wrote" not in out
    assert not Path("runs").exists()


def test_a_failed_default_run_leaves_no_empty_runs_folder(capsys, tmp_path, clip_path):
    code, _, err = run(capsys, clip_path, "--weights", tmp_path / "missing.pt")
    assert code != 0 and not Path("runs").exists()  # nor runs/detect, which it made
    Path("runs/detect").mkdir(parents=True)  # the user's own, empty: kept
    code, _, err = run(capsys, clip_path, "--weights", tmp_path / "missing.pt")
    assert code != 0 and Path("runs/detect").is_dir() and not list(Path("runs/detect").iterdir())


@pytest.mark.parametrize("make_args, message", [
    (lambda t, clip, folder: [clip, t / "x.jpg"], "An image output ("),
    (lambda t, clip, folder: [folder, folder], "refusing to overwrite its images"),
    (lambda t, clip, folder: [clip, t / "x.gif"], "Expected an output ending in .mp4"),
    (lambda t, clip, folder: [clip, t / "no" / "such" / "out"], "does not exist"),
    (lambda t, clip, folder: [clip, "-o", "-"], "cannot go to stdout (-)"),
    (lambda t, clip, folder: [clip, "/proc/frames/"], "Cannot make output folder /proc/frames"),
])
def test_outputs_that_do_not_fit_fail_in_one_line_before_any_work(
        tmp_path, capsys, tiny_checkpoint, clip_path, mixed_folder, make_args, message):
    before = sorted(tmp_path.rglob("*"))
    args = make_args(tmp_path, clip_path, mixed_folder)
    code, _, err = run(capsys, *args, "--weights", tiny_checkpoint)
    assert code == 2 and message in err and len(err.splitlines()) == 1, err
    assert sorted(tmp_path.rglob("*")) == before and list(Path().iterdir()) == []


@pytest.mark.parametrize("suffix", [".png", ".mp4"])
def test_a_glob_of_two_inputs_never_overwrites_the_second(tmp_path, capsys, tiny_checkpoint,
                                                          clip_path, suffix):
    """`detect pics/*.png` on a folder of two files names the second one as the output."""
    pics = tmp_path / "pics"
    pics.mkdir()
    if suffix == ".png":
        cv2.imwrite(str(pics / "a.png"), scene(160, 96, 1))
        cv2.imwrite(str(pics / "b.png"), scene(160, 96, 2))
    else:
        for name in ("a.mp4", "b.mp4"):
            (pics / name).write_bytes(Path(clip_path).read_bytes())
    first, second = pics / f"a{suffix}", pics / f"b{suffix}"
    before = second.read_bytes()
    code, out, err = run(capsys, first, second, "--weights", tiny_checkpoint)
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"-o {second}" in err and "drivevision batch" in err and "wrote" not in out
    assert second.read_bytes() == before and files_in(pics) == [first.name, second.name]
    code, _, err = run(capsys, first, "-o", second, "--weights", tiny_checkpoint)
    assert code == 0 and second.read_bytes() != before, err  # -o replaces it on purpose



def test_a_second_run_into_a_folder_another_is_writing_is_refused(
        tmp_path, capsys, tiny_checkpoint, clip_path, held_by_another_run):
    frames = tmp_path / "frames"
    assert run(capsys, clip_path, f"{frames}/", "--weights", tiny_checkpoint)[0] == 0
    first = {name: (frames / name).read_bytes() for name in frame_names(12)}
    pid = held_by_another_run(frames)  # a run replacing them (-o) is under way
    code, out, err = run(capsys, clip_path, "-o", frames, "--weights", tiny_checkpoint)
    assert code == 2 and out == "", err  # before: both wrote into it, frame by frame
    assert err.splitlines() == [f"drivevision: error: {frames} is being written by another "
                                f"run (pid {pid}); wait for it to end or choose another name"]
    assert {name: (frames / name).read_bytes() for name in frame_names(12)} == first
    new = tmp_path / "new"  # not made yet: claimed all the same
    held_by_another_run(new)
    code, _, err = run(capsys, clip_path, f"{new}/", "--weights", tiny_checkpoint)
    assert code == 2 and "is being written by another run" in err and not new.exists()


def test_the_library_refuses_a_folder_another_run_is_writing(tmp_path, held_by_another_run):
    from drivevision.errors import SinkError
    from drivevision.io.image_sinks import ImageFolderSink

    held_by_another_run(tmp_path / "frames")
    with pytest.raises(SinkError, match="is being written by another run"):
        ImageFolderSink(tmp_path / "frames")
    assert not (tmp_path / "frames").exists()
    # the command's claim and its sink's: one run, one claim taken twice
    with ImageFolderSink(tmp_path / "mine") as sink, ImageFolderSink(tmp_path / "mine"):
        pass
    assert sink.path.is_dir() and not (tmp_path / ".mine.lock").exists()


def test_a_folder_in_a_read_only_folder_is_claimed_inside_it(tmp_path, monkeypatch):
    from drivevision.io import claims

    (tmp_path / "frames").mkdir()
    monkeypatch.setattr(claims.os, "access", lambda path, mode: Path(path) != tmp_path)
    with claims.claim_folder(tmp_path / "frames") as claim:
        assert claim.lock == tmp_path / "frames" / claims.FOLDER_LOCK


@pytest.mark.parametrize("style, drawn", [
    (["--hide-labels", "--line-width", "5"], {"labels": False, "thickness": 5}),
    (["--hide-conf"], {"scores": False}),
    ([], {}),
])
def test_the_drawing_options_draw_the_detections_of_the_jsonl_in_that_style(
        tmp_path, capsys, style, drawn):
    from drivevision.detections import Detections
    from drivevision.labels import COCO_NAMES
    from drivevision.model import checkpoint_class_names
    from drivevision.render import annotate

    photo = tmp_path / "photo.png"
    cv2.imwrite(str(photo), scene(320, 192, 1))
    code, _, err = run(capsys, photo, tmp_path / "out.png", "--jsonl", tmp_path / "d.jsonl",
                       "--weights", DEMO, *style)
    assert code == 0, err
    [line] = (tmp_path / "d.jsonl").read_text().splitlines()
    found = json.loads(line)["detections"]
    assert found
    detections = Detections([d["box"] for d in found], [d["score"] for d in found],
                            [d["class_id"] for d in found])
    names = checkpoint_class_names(str(DEMO)) or COCO_NAMES
    expected = annotate(cv2.imread(str(photo)), detections, names, **drawn)
    written = cv2.imread(str(tmp_path / "out.png")).astype(int)
    # the JSONL's scores and boxes are rounded: a label may differ by a pixel's shade
    assert np.mean(np.abs(written - expected.astype(int)) > 40) < 0.002
    assert np.mean(np.abs(written - annotate(cv2.imread(str(photo)), detections, names,
                                             **({"labels": False} if not drawn else {}))
                          .astype(int)) > 40) > 0.002  # another style differs


@pytest.mark.parametrize("command", ["detect", "live", "batch"])
@pytest.mark.parametrize("width", ["0", "65"])
def test_a_line_width_out_of_range_is_one_line_before_the_model_loads(
        tmp_path, capsys, clip_path, command, width):
    out = ["--out", str(tmp_path / "b")] if command == "batch" else []
    assert main([command, clip_path, *out, "--line-width", width]) == 2  # no weights needed
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"drivevision: error: Expected --line-width of 1 to 64 pixels, but got "
                   f"{width}"]
