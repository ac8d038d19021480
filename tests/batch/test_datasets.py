"""``batch --yolo DIR --crops DIR``: one dataset for the whole run, each input under its own
name; a rerun keeps the inputs done, redoes the others and leaves no partial input behind;
workers share the folders; a folder with a user's files is refused, another run's replaced."""

import json
import os
from pathlib import Path

import pytest

from drivevision.batch import BatchSettings, Event, JobResult, find_jobs, plan_batch, run_batch
from drivevision.batch.datasets import dataset_part
from drivevision.cli import main
from drivevision.cli.exits import EXIT_USAGE
from drivevision.config import DetectorConfig
from drivevision.io.dataset_sinks import YOLO_FOLDER
from drivevision.io.recorded import SharedPart
from drivevision.synthetic import write_clip
from tests.batch.helpers import (
    ROOT,
    WEIGHTS,
    assert_dataset_is_the_jsonl,
    files,
    hidden_leftovers,
)

TWINS = ("a/clip.mp4", "b/clip.mp4")  # one file name in two folders


@pytest.fixture(scope="module")
def twins(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("twins")
    for seed, rel in enumerate(TWINS, 1):
        (folder / rel).parent.mkdir(parents=True)
        write_clip(folder / rel, 6, width=160, height=96, seed=seed)
    return folder


def batch(capsys, *args):
    code = main(["batch", *map(str, args), "--weights", WEIGHTS])
    out, err = capsys.readouterr()
    return code, out, err


def run_into(root: Path, twins: Path, *args) -> int:
    """A batch of ``twins`` into ``root``/det, ``root``/ds (YOLO) and ``root``/crops."""
    return main(["batch", str(twins), "--out", str(root / "det"), "--yolo", str(root / "ds"),
                 "--crops", str(root / "crops"), "--weights", WEIGHTS, "-q", *map(str, args)])


@pytest.fixture(scope="module")
def clean(twins, tmp_path_factory) -> Path:
    """One whole run with one worker into new folders."""
    root = tmp_path_factory.mktemp("clean")
    with pytest.MonkeyPatch.context() as patch:  # its workers import this checkout
        patch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(ROOT),
                                                                 os.environ.get("PYTHONPATH")])))
        assert run_into(root, twins) == 0
    return root


@pytest.mark.slow
def test_one_dataset_holds_every_input_under_its_name_labelled_as_its_jsonl(clean):
    assert_dataset_is_the_jsonl(clean, ["a/clip", "b/clip"])


@pytest.mark.slow
def test_a_rerun_skips_the_inputs_done_and_redoes_one_interrupted_mid_way(
        twins, clean, tmp_path, capsys):
    assert run_into(tmp_path, twins) == 0
    ds = tmp_path / "ds"
    kept = {p: p.stat().st_mtime_ns for p in (ds / "images" / "a").rglob("*.jpg")}
    # b as a killed batch leaves it: not in the manifest, some of its files written, one
    # a later frame's that its rerun does not write, one half-written under a hidden name
    manifest = tmp_path / "det" / "batch-manifest.jsonl"
    manifest.write_text("".join(ln + "\n" for ln in manifest.read_text().splitlines()
                                if json.loads(ln)["rel"] != "b/clip"))
    for path in sorted((ds / "images" / "b" / "clip").iterdir())[1:]:
        path.unlink()
    part = SharedPart(ds, "b/clip", YOLO_FOLDER)
    part.put("labels/b/clip/frame_000099.txt", b"0 0.5 0.5 0.1 0.1\n")
    part.close()
    (ds / "images" / "b" / "clip" / ".frame_000099.part.jpg").write_bytes(b"half")

    code, stdout, _ = batch(capsys, twins, "--out", tmp_path / "det", "--yolo", ds,
                            "--crops", tmp_path / "crops")
    assert code == 0 and "2 inputs: 1 done, 1 skipped" in stdout
    assert "removed" in stdout  # b's files from before, redone now
    assert files(ds) == files(clean / "ds")  # nothing lost, nothing twice
    assert files(tmp_path / "crops") == files(clean / "crops")
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # a's left as they were
    assert hidden_leftovers(ds) == [] and YOLO_FOLDER.earlier(ds)[1] == []

    (ds / "labels" / "a" / "clip" / "frame_000000.txt").unlink()  # a's dataset is short now
    code, stdout, _ = batch(capsys, twins, "--out", tmp_path / "det", "--yolo", ds,
                            "--crops", tmp_path / "crops")
    assert code == 0 and "2 inputs: 1 done, 1 skipped" in stdout
    assert files(ds) == files(clean / "ds")


class _InterruptedWorkers:
    """Workers whose one worker wrote part of its input's dataset (tried twice: its first
    worker died) when the batch stopped it."""

    def __init__(self, ds: Path):
        self.ds = ds

    def write(self, job, frames):
        part = SharedPart(self.ds, job.rel, YOLO_FOLDER)
        for i in frames:
            part.put(f"labels/{job.rel}/frame_{i:06d}.txt", b"0 0.5 0.5 0.1 0.1\n")
        part.close()

    def run(self, jobs, stopping):
        job = jobs[0]
        yield Event("started", job, worker=1)
        self.write(job, [0, 1, 2])
        yield Event("retry", job, worker=1, error="its worker process died")
        assert not (self.ds / "labels" / job.rel).exists()  # the retry starts afresh
        yield Event("started", job, worker=2)
        self.write(job, [0])
        result = JobResult(job.rel, job.source, "interrupted", error="interrupted")
        yield Event("result", job, worker=2, result=result)


def test_an_input_interrupted_or_retried_keeps_none_of_its_dataset(twins, tmp_path):
    ds = tmp_path / "ds"
    settings = BatchSettings(DetectorConfig(weights=WEIGHTS), yolo=str(ds))
    plan = plan_batch(find_jobs([str(twins)], tmp_path / "det"), tmp_path / "det", settings)
    (tmp_path / "det").mkdir()
    outcome = run_batch(plan, _InterruptedWorkers(ds))
    assert outcome.summary["interrupted"] == 1
    assert files(ds) == {}
    assert YOLO_FOLDER.earlier(ds) == ([], [])


@pytest.mark.slow
def test_two_workers_write_one_dataset_each_input_whole_and_recorded(twins, tmp_path,
                                                                     capsys):
    assert run_into(tmp_path, twins, "--workers", 2) == 0
    # each worker has half the threads: bf16 sums in another order, so a box may differ in
    # its last digits and two of one score swap places; the dataset follows its own JSONL
    assert_dataset_is_the_jsonl(tmp_path, ["a/clip", "b/clip"])
    code, stdout, _ = batch(capsys, twins, "--out", tmp_path / "det", "--yolo",
                            tmp_path / "ds", "--crops", tmp_path / "crops", "--workers", 2)
    assert code == 0 and "2 skipped" in stdout  # the workers' records read as one


@pytest.mark.slow
def test_a_dataset_folder_of_another_run_is_replaced_and_one_with_a_users_file_refused(
        twins, clean, tmp_path, capsys):
    ds = tmp_path / "ds"
    assert main(["detect", str(twins / TWINS[0]), "--yolo", str(ds), "--weights", WEIGHTS,
                 "-q"]) == 0
    assert "images/frame_000000.jpg" in files(ds)
    det = tmp_path / "det"
    assert batch(capsys, twins, "--out", det)[0] == 0
    code, stdout, _ = batch(capsys, twins, "--out", det, "--yolo", ds)  # a dataset added
    assert code == 0 and "2 inputs: 2 done" in stdout  # not skipped: redone for it
    assert f"--yolo {ds}: removed" in stdout
    assert files(ds) == files(clean / "ds")

    code, stdout, _ = batch(capsys, twins, "--out", det, "--yolo", ds, "--classes", "car")
    assert code == 0 and "2 inputs: 2 done" in stdout  # other classes: all redone
    assert (ds / "classes.txt").read_text() == "car\n" and "nc: 1" in (ds / "data.yaml").read_text()
    labels = [ln for n, d in files(ds).items() if n.startswith("labels/")
              for ln in d.decode().splitlines()]
    assert labels and {ln.split()[0] for ln in labels} == {"0"}
    cars = sum(ln.count('"car"') for ln in (det / "a" / "clip.jsonl").read_text().splitlines())
    assert len([ln for n, d in files(ds).items() if n.startswith("labels/a/")
                for ln in d.decode().splitlines()]) == cars

    (ds / "images" / "mine.jpg").write_bytes(b"mine")
    before = files(ds)
    code, _, err = batch(capsys, twins, "--out", det, "--yolo", ds, "--conf", "0.9")
    assert code == EXIT_USAGE
    assert err.strip().splitlines() == [
        f"drivevision: error: --yolo folder {ds} already holds 1 file that no drivevision "
        "run wrote there (images/mine.jpg); our files would mix with them: choose a new or "
        "empty folder"]
    assert files(ds) == before


def test_a_dataset_folder_another_run_writes_into_is_refused(twins, tmp_path, capsys,
                                                             held_by_another_run):
    pid = held_by_another_run(tmp_path / "ds")
    code, _, err = batch(capsys, twins, "--out", tmp_path / "det", "--yolo", tmp_path / "ds")
    assert code != 0 and f"is being written by another run (pid {pid}" in err
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize("args, message", [
    (["--yolo", "det"], "Two outputs have the same path: --out and --yolo are both {cwd}/det"),
    (["--crops", "."], "--out {cwd}/det is inside --crops {cwd}"),
    (["--yolo", "det/a"], "a/clip.mp4's outputs would go into --yolo {cwd}/det/a"),
    (["--yolo", "ds", "--crops", "ds"], "--yolo and --crops are both"),
])
def test_dataset_folders_that_would_mix_with_other_outputs_are_one_line(twins, capsys, args,
                                                                        message):
    code, _, err = batch(capsys, twins, "--out", "det", *args)
    assert code == EXIT_USAGE and len(err.strip().splitlines()) == 1
    assert message.format(cwd=Path.cwd().resolve()) in err


@pytest.mark.parametrize("option", ["--yolo", "--crops"])
def test_a_folder_of_images_two_of_which_share_a_name_is_refused_before_the_batch_starts(
        tmp_path, capsys, twins, option):
    import cv2
    import numpy as np

    frames = tmp_path / "frames"
    frames.mkdir()
    for name in ("a.png", "a.jpg", "b.png"):
        cv2.imwrite(str(frames / name), np.zeros((48, 64, 3), np.uint8))
    code, out, err = batch(capsys, twins, frames, "--out", tmp_path / "det", option,
                           tmp_path / "ds")
    assert code == EXIT_USAGE and out == ""
    assert err.splitlines() == [f"drivevision: error: {frames}: a.jpg and a.png would both be "
                                "labelled a.txt in a dataset; rename one of them"]
    assert not (tmp_path / "det").exists() and not (tmp_path / "ds").exists()


def test_a_dataset_folder_inside_the_footage_is_not_an_input(tmp_path):
    footage = tmp_path / "footage"
    (footage / "ds" / "images" / "a" / "clip").mkdir(parents=True)
    (footage / "ds" / "images" / "a" / "clip" / "frame_000000.jpg").write_bytes(b"")
    (footage / "clip.mp4").write_bytes(b"")
    found = find_jobs([str(footage)], tmp_path / "det")
    assert [j.rel for j in found] == ["clip", "ds/images/a/clip"]
    assert [j.rel for j in find_jobs([str(footage)], tmp_path / "det",
                                     skip=[footage / "ds"])] == ["clip"]


@pytest.mark.parametrize("rel, part", [
    ("2026-11-28/front_0001", "2026-11-28/front_0001"),
    ("cam1/images", "cam1/images_"), ("images_/images", "images__/images_"),
    ("my_images/Images", "my_images/Images"),
])
def test_an_input_s_dataset_name_never_has_a_folder_named_images(rel, part):
    assert dataset_part(rel) == part
    image = f"ds/images/{dataset_part(rel)}/frame_000000.jpg"
    # how Ultralytics finds an image's labels: its path's last /images/ made /labels/
    assert "/labels/".join(image.rsplit("/images/", 1)) == \
        f"ds/labels/{dataset_part(rel)}/frame_000000.jpg"
