"""``drivevision batch`` as a user runs it: mirrored outputs equal to ``detect``'s, a damaged
input recorded as failed, reruns that skip, resume and redo what changed."""

import csv
import json
import os
import shutil

import pytest

from drivevision.cli import main
from drivevision.cli.exits import EXIT_SOME_FAILED, EXIT_USAGE
from drivevision.engines.hardware import cpu_features
from tests.batch.helpers import CLIPS, WEIGHTS, hidden_or_partial, make_footage, outputs_of
from tests.standins import FixedDetector, x264_options


def batch(capsys, *args):
    code = main(["batch", *map(str, args), "--weights", WEIGHTS])
    out, err = capsys.readouterr()
    return code, out, err


def report(out):
    return json.loads((out / "batch.json").read_text())


def statuses(out):
    return {row["rel"]: row["status"] for row in report(out)["inputs"]}


@pytest.mark.slow
def test_outputs_mirror_the_inputs_equal_detect_and_a_damaged_file_fails_alone(
        tmp_path, capsys, footage):
    folder = tmp_path / "footage"
    shutil.copytree(footage, folder)
    (folder / "2026-11-29" / "broken.mp4").write_bytes(b"not a video" * 50)
    out = tmp_path / "det"
    code, stdout, err = batch(capsys, folder, "--out", out, "--csv", "--track")
    assert code == EXIT_SOME_FAILED
    assert "4 inputs: 3 done, 1 failed" in stdout
    assert f"failed: {folder / '2026-11-29' / 'broken.mp4'}: Cannot open it as a video (" in stdout
    for rel in CLIPS:
        stem = rel.removesuffix(".mp4")
        code = main(["detect", str(folder / rel), "--jsonl", str(tmp_path / "d.jsonl"),
                     "--csv", str(tmp_path / "d.csv"), "--track", "--mot",
                     str(tmp_path / "d.txt"), "--weights", WEIGHTS, "-q"])
        assert code == 0
        assert (out / f"{stem}.jsonl").read_bytes() == (tmp_path / "d.jsonl").read_bytes()
        assert (out / f"{stem}.csv").read_bytes() == (tmp_path / "d.csv").read_bytes()
        assert (out / f"{stem}.mot.txt").read_bytes() == (tmp_path / "d.txt").read_bytes()
    rows = {r["rel"]: r for r in report(out)["inputs"]}
    assert rows["2026-11-29/broken"]["status"] == "failed"
    assert "Cannot open" in rows["2026-11-29/broken"]["error"]
    assert all(rows[r.removesuffix(".mp4")]["frames"] == 6 for r in CLIPS)
    with (out / "batch.csv").open() as f:
        listed = list(csv.DictReader(f))
    assert sorted(r["status"] for r in listed) == ["done", "done", "done", "failed"]
    assert hidden_or_partial(out) == []


@pytest.mark.slow
def test_a_rerun_skips_what_is_done_and_redoes_what_changed(tmp_path, capsys, footage):
    out = tmp_path / "det"
    assert batch(capsys, footage, "--out", out)[0] == 0
    first = outputs_of(out)
    mtimes = {p: p.stat().st_mtime_ns for p in out.rglob("*.jsonl")}

    code, stdout, _ = batch(capsys, footage, "--out", out)  # nothing to do: no worker
    assert code == 0 and "3 skipped" in stdout
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*.jsonl")} == mtimes
    assert set(statuses(out).values()) == {"skipped"}

    clip = footage / CLIPS[1]
    os.utime(clip, ns=(clip.stat().st_atime_ns, clip.stat().st_mtime_ns + 10**9))
    assert batch(capsys, footage, "--out", out)[0] == 0
    assert statuses(out) == {"2026-11-28/front_0001": "skipped",
                             "2026-11-28/front_0002": "done", "2026-11-29/rear_0001": "skipped"}
    assert outputs_of(out) == first  # the same input, the same detections

    assert batch(capsys, footage, "--out", out, "--conf", "0.9")[0] == 0  # settings changed
    assert set(statuses(out).values()) == {"done"}
    assert outputs_of(out) != first
    assert batch(capsys, footage, "--out", out, "--conf", "0.9", "--force")[0] == 0
    assert set(statuses(out).values()) == {"done"}
    manifest = (out / "batch-manifest.jsonl").read_text().splitlines()
    assert len(manifest) == 3  # one line per input, the newest


def test_an_output_changed_since_is_redone(tmp_path, capsys, footage):
    out = tmp_path / "det"
    assert batch(capsys, footage, "--out", out)[0] == 0
    victim = out / "2026-11-29" / "rear_0001.jsonl"
    good = victim.read_bytes()
    victim.write_bytes(good[: len(good) // 2])  # cut short, as by a copy that failed
    assert batch(capsys, footage, "--out", out)[0] == 0
    assert statuses(out)["2026-11-29/rear_0001"] == "done"
    assert victim.read_bytes() == good


def test_totals_cover_every_input_listed_also_on_a_rerun_that_skips_all(tmp_path, capsys,
                                                                       footage):
    out = tmp_path / "det"
    assert batch(capsys, footage, "--out", out)[0] == 0
    first = report(out)["summary"]
    assert first["frames"] == 18 and first["this_run"]["frames"] == 18
    code, stdout, _ = batch(capsys, footage, "--out", out)
    assert code == 0
    seen = report(out)
    summary, rows = seen["summary"], seen["inputs"]
    assert summary["frames"] == sum(r["frames"] for r in rows) == 18
    assert summary["detections"] == sum(r["detections"] for r in rows) == first["detections"]
    assert summary["this_run"]["frames"] == summary["this_run"]["detections"] == 0
    assert f"18 frames, {first['detections']} detections in all" in stdout
    assert "this run: 0 inputs, 0 frames" in stdout


def test_a_redo_removes_what_an_earlier_run_wrote_that_the_new_settings_do_not(
        tmp_path, capsys, footage):
    out = tmp_path / "det"
    assert batch(capsys, footage, "--out", out, "--video", "--csv")[0] == 0
    mine = out / "2026-11-29" / "rear_0001.csv"
    mine.write_text("frame,mine\n")  # replaced by the user since: theirs now
    code, stdout, _ = batch(capsys, footage, "--out", out, "--conf", "0.9")
    assert code == 0
    assert sorted(outputs_of(out)) == sorted([c.replace(".mp4", ".jsonl") for c in CLIPS]
                                             + ["2026-11-29/rear_0001.csv"])
    assert mine.read_text() == "frame,mine\n"
    rows = {r["rel"]: r for r in report(out)["inputs"]}
    assert rows["2026-11-28/front_0001"]["removed"] == ["2026-11-28/front_0001.mp4",
                                                        "2026-11-28/front_0001.csv"]
    assert rows["2026-11-29/rear_0001"]["removed"] == ["2026-11-29/rear_0001.mp4"]
    assert "kept 2026-11-29/rear_0001.csv" in rows["2026-11-29/rear_0001"]["notes"][0]
    assert "removed 5 outputs of earlier runs" in stdout
    assert report(out)["summary"]["removed"] == 5


def test_another_video_preset_redoes_the_videos(tmp_path, capsys, footage):
    out = tmp_path / "det"
    assert batch(capsys, footage, "--out", out, "--video", "--video-preset", "ultrafast")[0] == 0
    video = out / CLIPS[0]
    assert x264_options(video)["cabac"] == "0"
    assert batch(capsys, footage, "--out", out, "--video")[0] == 0  # the default, veryfast
    assert set(statuses(out).values()) == {"done"}
    assert x264_options(video)["cabac"] == "1"


def test_another_frame_stride_redoes_the_inputs_and_detects_every_kth_frame(
        tmp_path, capsys, footage):
    out = tmp_path / "det"
    assert batch(capsys, footage, "--out", out)[0] == 0
    code, stdout, _ = batch(capsys, footage, "--out", out, "--frame-stride", "4")
    assert code == 0 and set(statuses(out).values()) == {"done"}
    frames = [json.loads(line)["frame"] for line in (out / CLIPS[0]).with_suffix(
        ".jsonl").read_text().splitlines()]
    assert frames == [0, 4]  # 6 frames: 0 and 4
    assert batch(capsys, footage, "--out", out, "--frame-stride", "4")[0] == 0
    assert set(statuses(out).values()) == {"skipped"}


def test_every_frame_is_recorded_as_manifests_from_before_the_frame_stride_recorded_it():
    from drivevision.batch import BatchSettings

    assert "frame_stride" not in BatchSettings().key()  # their inputs stay done
    assert BatchSettings(frame_stride=3).key()["frame_stride"] == 3


def test_an_input_where_nothing_decodes_fails_with_the_reason_alone(tmp_path):
    from drivevision.batch.jobs import Job
    from drivevision.batch.work import BatchSettings, run_job

    cam = tmp_path / "cam"
    cam.mkdir()
    for i in range(2):
        (cam / f"f{i}.jpg").write_bytes(b"not an image")
    detector = FixedDetector()
    detector.size_problem = lambda width, height: None  # any size fits the stand-in
    result = run_job(detector, Job(str(cam), "cam", "images"), BatchSettings(), tmp_path / "det")
    assert result.status == "failed"
    assert result.error == f"{cam}: none of the 2 images could be decoded (damaged or not images)"


def test_a_failed_input_is_named_once_in_its_line(tmp_path, capsys):
    cam = tmp_path / "footage" / "cam"  # an image folder where nothing decodes: the reason
    cam.mkdir(parents=True)             # begins with the input's path
    for i in range(2):
        (cam / f"f{i}.jpg").write_bytes(b"not an image")
    code, stdout, err = batch(capsys, tmp_path / "footage", "--out", tmp_path / "det")
    reason = f"failed: {cam}: none of the 2 images could be decoded (damaged or not images)"
    assert code == EXIT_SOME_FAILED
    assert f"\n{reason}\n" in stdout  # the summary's line
    assert f"\n[1/1] {reason}\n" in err  # the progress line, numbered as a done one is


def test_an_out_folder_that_cannot_be_made_is_refused_in_one_line(tmp_path, capsys):
    (tmp_path / "footage" / "cam").mkdir(parents=True)
    (tmp_path / "footage" / "cam" / "f0.jpg").write_bytes(b"not an image")
    (tmp_path / "afile").write_text("mine\n")
    out = tmp_path / "afile" / "det"  # under a file: the folder cannot be made
    code, stdout, err = batch(capsys, tmp_path / "footage", "--out", out, "-q")
    assert code == EXIT_USAGE  # was 1, "[Errno 20] Not a directory: ..."
    assert err.splitlines() == [f"drivevision: error: Cannot make --out folder {out}: "
                                "Not a directory"]
    assert (tmp_path / "afile").read_text() == "mine\n"


def test_video_into_the_footage_folder_is_refused_before_any_work(tmp_path, capsys):
    folder = tmp_path / "footage"  # --out the footage itself: each clip's annotated video
    folder.mkdir()                 # is named as the clip (CLIP.MP4's where case is ignored)
    for name in ("front.mp4", "REAR.MP4"):
        (folder / name).write_bytes(b"a clip of mine")
    code, stdout, err = batch(capsys, folder, "--out", folder, "--video", "-q")
    assert code == EXIT_USAGE  # was 3 after the model loaded, every such input failed
    assert err.splitlines() == [f"drivevision: error: --out {folder} would write "
                                f"{folder / 'front.mp4'} over the input {folder / 'front.mp4'} "
                                "(and 1 more): give --out a folder apart from the footage"]
    assert sorted(p.name for p in folder.iterdir()) == ["REAR.MP4", "front.mp4"]
    assert (folder / "front.mp4").read_bytes() == b"a clip of mine"


def test_quiet_still_names_a_failed_input(tmp_path, capsys):
    cam = tmp_path / "footage" / "cam"
    cam.mkdir(parents=True)
    (cam / "f0.jpg").write_bytes(b"not an image")
    code, stdout, err = batch(capsys, tmp_path / "footage", "--out", tmp_path / "det", "-q")
    assert code == EXIT_SOME_FAILED
    assert stdout == ""  # no summary
    assert err.splitlines() == [f"[1/1] failed: {cam}: its only image could not be decoded "
                                "(damaged or not an image)"]


def test_a_file_that_is_no_video_is_named_once_in_its_failed_and_retry_lines(tmp_path, capsys):
    from drivevision.batch.jobs import Job
    from drivevision.batch.work import BatchSettings, Event, run_job
    from drivevision.cli.progress import BatchProgress

    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video" * 50)
    job = Job(str(broken), "broken", "video")
    result = run_job(FixedDetector(), job, BatchSettings(), tmp_path / "det")
    assert result.status == "failed"
    assert result.error.startswith(f"Cannot open {broken} as a video (")  # stored as it came
    with BatchProgress(1) as progress:
        progress.event(Event("retry", job, error=result.error))
        progress.event(Event("result", job, result=result))
    err = capsys.readouterr().err.splitlines()
    said = result.error.replace(f"Cannot open {broken} ", "Cannot open it ")
    assert err == [f"retrying {broken}: {said}", f"[1/1] failed: {broken}: {said}"]
    assert said.startswith("Cannot open it as a video (not a video file, or damaged")


@pytest.mark.parametrize("args, message", [
    (["--workers", "0"], "Expected --workers >= 1"),
    (["--batch", "0"], "Expected --batch >= 1"),
    (["--frame-stride", "0"], "Expected --frame-stride >= 1 frames, but got 0"),
    (["--weights", "nowhere.pt"], "No such checkpoint: nowhere.pt"),
    (["--weights", "."], ". is a folder, not a checkpoint"),
    (["--ray", "."], "--ray took . for a cluster address"),
])
def test_bad_options_are_one_line(tmp_path, capsys, footage, args, message):
    code = main(["batch", str(footage), "--out", str(tmp_path / "det"), *args])
    err = capsys.readouterr().err
    assert code == EXIT_USAGE and message in err and len(err.strip().splitlines()) == 1


def test_a_list_given_without_list_is_refused_before_the_model_loads(tmp_path, capsys,
                                                                      monkeypatch):
    import drivevision.cli.batch as batch_cli

    listing = tmp_path / "list.txt"
    listing.write_text("clip.mp4\n")
    monkeypatch.setattr(batch_cli, "_workers", lambda *a: pytest.fail("workers started"))
    code, stdout, err = batch(capsys, listing, "--out", tmp_path / "det")
    assert code == EXIT_USAGE and stdout == ""
    assert err == (f"drivevision: error: {listing} is a .txt file, not a video, an image or a "
                   f"folder: if it lists inputs one path a line, give it as --list {listing}\n")
    assert not (tmp_path / "det").exists()


def test_an_image_folder_is_one_input(tmp_path, capsys):
    import cv2

    from drivevision.synthetic import SceneGenerator

    frames = tmp_path / "footage" / "cam"
    frames.mkdir(parents=True)
    for i, scene in enumerate(SceneGenerator(160, 96, seed=5).clip(3)):
        cv2.imwrite(str(frames / f"f{i}.png"), scene.image)
    make_footage(tmp_path / "footage" / "videos", frames=2)
    code, stdout, err = batch(capsys, tmp_path / "footage", "--out", tmp_path / "det",
                              "--device", "cpu")
    assert code == 0 and "4 inputs: 4 done" in stdout
    assert len((tmp_path / "det" / "cam.jsonl").read_text().splitlines()) == 3
    # what the worker runs, and on which CPU features, is said once, before the inputs
    [said] = [line for line in err.splitlines() if line.startswith("worker: ")]
    assert said.startswith("worker: engine torch ") and cpu_features().describe() in said


def test_a_batch_of_one_input_says_input_not_inputs(tmp_path, capsys, clip_path):
    code, stdout, _ = batch(capsys, clip_path, "--out", tmp_path / "det")
    assert code == 0
    assert "1 input: 1 done; 12 frames" in stdout and "this run: 1 input, 12 frames" in stdout


def test_eval_of_an_output_without_low_scores_says_to_rerun_the_batch(tmp_path, capsys):
    """eval warns that a file written at the default --conf understates AP and says how to
    write it again: for a batch's output, by rerunning the batch at eval's --conf, since a
    file detect wrote over it would be replaced by the batch's next run as an altered one."""
    from drivevision.synthetic import write_eval_clip

    (tmp_path / "footage").mkdir()
    write_eval_clip(tmp_path / "footage" / "clip.mp4", tmp_path / "gt.jsonl", seeds=(101,),
                    frames_per_seed=3)
    out = tmp_path / "det"
    assert batch(capsys, tmp_path / "footage", "--out", out)[0] == 0
    pred = out / "clip.jsonl"
    assert main(["eval", "--gt", str(tmp_path / "gt.jsonl"), "--pred", str(pred), "--json"]) == 0
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert "AP is understated" in warning
    assert warning.endswith(f"it is an output of the batch in {out}: rerun that batch with "
                            f"--conf 0.05 (drivevision batch INPUT... --out {out} --conf 0.05)")
    mine = out / "mine.jsonl"  # detect's file in the batch's folder: not the batch's output
    mine.write_bytes(pred.read_bytes())
    assert main(["eval", "--gt", str(tmp_path / "gt.jsonl"), "--pred", str(mine), "--json"]) == 0
    [warning] = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert warning.endswith(f"write it with drivevision detect INPUT --conf 0.05 --jsonl {mine}")


@pytest.mark.slow
def test_workers_beyond_the_inputs_left_are_not_started_nor_given_the_cores(
        tmp_path, capsys, footage, monkeypatch):
    """--workers 2 resuming a batch with one input left starts one worker, and that worker
    gets every core, not the half a second worker would have had."""
    monkeypatch.setattr("drivevision.batch.local.os.cpu_count", lambda: 4)
    out = tmp_path / "det"
    assert batch(capsys, footage, "--out", out)[0] == 0
    (out / "2026-11-29" / "rear_0001.jsonl").unlink()
    code, _, err = batch(capsys, footage, "--out", out, "--workers", "2")
    assert code == 0
    assert "3 inputs: 1 to run on 1 worker (4 CPU threads), 2 done before" in err.splitlines()


def test_the_folders_a_nas_keeps_are_no_inputs_and_one_line_names_them(tmp_path, capsys):
    import cv2
    import numpy as np

    day = tmp_path / "share" / "2026-11-28"
    thumbs = day / "@eaDir" / "f0.png"  # Synology's thumbnails of f0.png
    thumbs.mkdir(parents=True)
    cv2.imwrite(str(day / "f0.png"), np.full((96, 160, 3), 90, np.uint8))
    cv2.imwrite(str(thumbs / "SYNOFILE_THUMB_M.png"), np.full((24, 40, 3), 90, np.uint8))
    (tmp_path / "share" / "#recycle").mkdir()
    code, stdout, err = batch(capsys, tmp_path / "share", "--out", tmp_path / "det", "-q")
    assert code == 0
    # before: 2 inputs, the thumbnails' folder one of them
    assert statuses(tmp_path / "det") == {"2026-11-28": "done"}
    notes = [line for line in err.splitlines() if "NAS" in line]
    assert notes == [f"drivevision: note: passed over 2 folders a NAS or the system keeps "
                     f"(thumbnails, recycle bins): {tmp_path / 'share' / '#recycle'}, "
                     f"{day / '@eaDir'}"]


def test_the_summary_names_the_inputs_that_ran_with_warnings(tmp_path):
    from types import SimpleNamespace

    from drivevision.batch.driver import _outcome, _row
    from drivevision.batch.jobs import Job
    from drivevision.cli.batch import _summary

    rows = {}
    for i in range(6):  # the last clip of each drive, cut when the power went
        source = str(tmp_path / f"2026-11-2{i}" / "FILE0007.MP4")
        rows[f"r{i}"] = _row(Job(source, f"r{i}", "video"), "done")
        rows[f"r{i}"]["notes"] = [f"{source}: decoding stopped after 5 of 40 frames"]
    rows["old"] = _row(Job(str(tmp_path / "old.mp4"), "old", "video"), "skipped")
    rows["old"]["notes"] = ["done before, with notes of its own"]
    outcome = _outcome(SimpleNamespace(rows=rows, out_dir=tmp_path / "det"), 1.0)
    outcome.summary.update(notes=[], datasets={})
    [line] = [ln for ln in _summary(outcome, tmp_path / "det").splitlines() if "warnings" in ln]
    named = ", ".join(str(tmp_path / f"2026-11-2{i}" / "FILE0007.MP4") for i in range(4))
    assert line == (f"6 inputs with warnings (damaged frames, ...): {named} and 2 more; see "
                    "their notes in batch.json")  # was: no name, batch.json to search
