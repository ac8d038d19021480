"""`drivevision detect --yolo DIR --crops DIR`: a dataset from one's own footage."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivevision.cli import main
from drivevision.io.dataset_sinks import RECORD

DEMO = Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt"  # finds the scene's cars


def run(capsys, *args):
    code = main(["detect", *map(str, args)])
    out, err = capsys.readouterr()
    return code, out, err


def files_in(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def scene(width: int, height: int, seed: int) -> np.ndarray:
    from drivevision.synthetic import SceneGenerator

    return SceneGenerator(width=width, height=height, seed=seed).frame(3).image


def test_labels_and_crops_match_the_jsonl_boxes(tmp_path, capsys, clip_path):
    ds, crops, jsonl = tmp_path / "ds", tmp_path / "crops", tmp_path / "d.jsonl"
    code, out, err = run(capsys, clip_path, "--yolo", ds, "--crops", crops, "--jsonl", jsonl,
                         "--classes", "truck,car", "--conf", "0.3", "--weights", DEMO)
    assert code == 0, err
    assert f"wrote {ds}" in out and f"wrote {crops}" in out
    names = (ds / "classes.txt").read_text().splitlines()
    assert names == ["car", "truck"]  # the model's order (car 2, truck 3), renumbered 0, 1
    assert 'names:\n  0: "car"\n  1: "truck"\n' in (ds / "data.yaml").read_text()
    lines = [json.loads(line) for line in jsonl.read_text().splitlines()]
    boxes = [d for line in lines for d in line["detections"]]
    assert {d["class_name"] for d in boxes} == {"car", "truck"} and len(lines) == 12
    for line in lines:
        stem = f"frame_{line['frame']:06d}"
        assert cv2.imread(str(ds / "images" / f"{stem}.jpg")).shape == (96, 160, 3)
        labels = (ds / "labels" / f"{stem}.txt").read_text().splitlines()
        assert len(labels) == len(line["detections"])
        for label, det in zip(labels, line["detections"], strict=True):
            c, x, y, w, h = label.split()
            x, y, w, h = float(x) * 160, float(y) * 96, float(w) * 160, float(h) * 96
            assert names[int(c)] == det["class_name"]
            assert [x - w / 2, y - h / 2, x + w / 2, y + h / 2] == pytest.approx(det["box"],
                                                                                abs=1.0)
        for i, det in enumerate(line["detections"]):
            crop = cv2.imread(str(crops / det["class_name"] / f"{stem}_{i}.jpg"))
            x1, y1, x2, y2 = det["box"]
            assert crop.shape[1] == pytest.approx(x2 - x1, abs=1)
            assert crop.shape[0] == pytest.approx(y2 - y1, abs=1)
    assert len(files_in(crops)) == len(boxes) + 1  # and the record


def test_a_folder_keeps_its_names_and_leaves_out_images_without_detections(
        tmp_path, capsys):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "wide.png"), scene(320, 192, 1))
    cv2.imwrite(str(shots / "tall.jpg"), scene(192, 320, 2))
    cv2.imwrite(str(shots / "blank.png"), np.full((96, 160, 3), 128, np.uint8))
    code, _, err = run(capsys, shots, "--yolo", tmp_path / "ds", "--weights", DEMO)
    assert code == 0, err
    assert files_in(tmp_path / "ds") == [RECORD, "classes.txt", "data.yaml", "images/tall.jpg",
                                         "images/wide.png", "labels/tall.txt", "labels/wide.txt"]
    assert cv2.imread(str(tmp_path / "ds/images/tall.jpg")).shape == (320, 192, 3)


def test_two_images_that_would_share_a_label_file_are_refused_before_any_work(tmp_path,
                                                                              capsys):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "a.png"), scene(160, 96, 1))
    cv2.imwrite(str(shots / "a.jpg"), scene(160, 96, 2))
    code, _, err = run(capsys, shots, "--yolo", tmp_path / "ds", "--weights",
                       tmp_path / "not-loaded.pt")
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "a.jpg and a.png would both be labelled a.txt" in err
    assert not (tmp_path / "ds").exists()


def _foreign(t: Path, kind: str, rel: str) -> list:
    (t / kind / rel).parent.mkdir(parents=True)
    (t / kind / rel).write_text("mine")
    return [f"--{kind}", t / kind]


def _under_a_file(t: Path, option: str, name: str) -> list:
    (t / "notes").write_text("mine")  # a file where the output's folder would be
    return [option, t / "notes" / name]


@pytest.mark.parametrize("make_args, message", [
    (lambda t, clip: ["--yolo", clip], "--yolo " + "{clip} is a file"),
    (lambda t, clip: _foreign(t, "yolo", "images/x.jpg"),
     "1 file that no drivevision run wrote there (images/x.jpg)"),
    (lambda t, clip: _foreign(t, "yolo", "data.yaml"), "no drivevision run wrote there"),
    (lambda t, clip: _foreign(t, "crops", "car/x.jpg"), "no drivevision run wrote there"),
    (lambda t, clip: ["--yolo", t / "d", "--crops", t / "d"],
     "--yolo and --crops are both "),
    (lambda t, clip: ["-o", t / "d/", "--yolo", t / "d"], "-o and --yolo are both "),
    (lambda t, clip: ["--yolo", "-"], "--yolo writes a folder"),
    (lambda t, clip: ["--crops", t / "no" / "such"], "does not exist"),
    (lambda t, clip: ["-o", t / "d/", "--yolo", t / "d" / "ds", "--crops", clip],
     "--crops {clip} is a file"),  # the d/ made for --yolo goes again
    (lambda t, clip: _under_a_file(t, "--crops", "crops"), "notes is a file, not a folder"),
    (lambda t, clip: _under_a_file(t, "--jsonl", "d.jsonl"), "notes is a file, not a folder"),
    (lambda t, clip: ["--yolo", t / "d", "--no-save"], "--no-save writes nothing"),
])
def test_dataset_folders_that_do_not_fit_fail_in_one_line_before_any_work(
        tmp_path, capsys, clip_path, make_args, message):
    args = make_args(tmp_path, clip_path)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    code, _, err = run(capsys, clip_path, *args, "--weights", tmp_path / "not-loaded.pt")
    assert code == 2 and message.format(clip=clip_path) in err, err
    assert len(err.splitlines()) == 1, err
    assert {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()} == before
    assert not (tmp_path / "d").exists()


def test_a_dataset_folder_inside_a_new_output_folder_is_made_with_it(tmp_path, capsys,
                                                                     clip_path):
    """-o out/ makes out; --yolo out/ds in it works as well (before: "Output folder out
    does not exist" unless out was made first)."""
    out = tmp_path / "out"
    code, _, err = run(capsys, clip_path, "-o", f"{out}/", "--yolo", out / "ds", "-q",
                       "--weights", DEMO)
    assert code == 0, err
    assert len(list(out.glob("frame_*.png"))) == 12
    assert (out / "ds" / "data.yaml").is_file() and list((out / "ds" / "labels").iterdir())
    assert not [p for p in out.iterdir() if p.name.startswith(".ds")]  # no lock or part left


def test_the_input_folder_is_never_a_dataset_folder(tmp_path, capsys):
    shots = tmp_path / "shots"
    shots.mkdir()
    cv2.imwrite(str(shots / "a.png"), scene(160, 96, 1))
    code, _, err = run(capsys, shots, "--crops", shots, "--weights", tmp_path / "x.pt")
    assert code == 2 and "An output path is an input" in err, err
    assert files_in(shots) == ["a.png"]


@pytest.mark.parametrize("option", ["--yolo", "--crops"])
def test_a_folder_another_run_is_writing_is_refused(tmp_path, capsys, clip_path, option,
                                                    held_by_another_run):
    pid = held_by_another_run(tmp_path / "d")
    code, out, err = run(capsys, clip_path, option, tmp_path / "d", "--weights",
                         tmp_path / "not-loaded.pt")
    assert code == 2 and out == "", err
    assert err.splitlines() == [f"drivevision: error: {tmp_path / 'd'} is being written by "
                                f"another run (pid {pid}); wait for it to end or "
                                "choose another name"]
    assert not (tmp_path / "d").exists()
