"""``eval --report DIR`` keeps what a user had: a folder holding report files no run wrote is
refused before the model loads, an earlier run's report is replaced whole, other files are
never touched, and a folder another run is writing is refused."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from drivevision.cli import main
from tests.evaluation.helpers import CAR, write_preds, write_truth

WEIGHTS = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")


def visible(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if not p.name.startswith("."))


@pytest.mark.parametrize("mine", ["summary.md", "metrics.json", "pr-car.png",
                                  "torch-fp32/summary.md"])
@pytest.mark.parametrize("mode", ["pred", "input"])
def test_a_users_own_report_file_is_refused_before_the_model_loads_and_kept(
        files, tmp_path, capsys, monkeypatch, mine, mode):
    gt, pred = files
    folder = tmp_path / "work"
    (folder / mine).parent.mkdir(parents=True)
    (folder / mine).write_text("my notes\n")
    (folder / "notes.txt").write_text("other\n")
    monkeypatch.chdir(folder)  # --report . as a user would give it
    source = ["--pred", str(pred)] if mode == "pred" else [str(gt), "--weights", "missing.pt"]
    assert main(["eval", "--gt", str(gt), *source, "--report", "."]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [
        f"drivevision: error: --report folder . already holds 1 report file that no "
        f"drivevision run wrote there ({mine}); our report files would mix with them: "
        "choose a new or empty folder"]  # not a missing-weights error: before the model
    assert visible(folder) == sorted(["notes.txt", mine, *(["torch-fp32"] if "/" in mine
                                                            else [])])
    assert (folder / mine).read_text() == "my notes\n"


def test_a_second_run_replaces_the_first_runs_report_and_nothing_else(files, tmp_path,
                                                                       capsys):
    gt, pred = files
    report = tmp_path / "rep"
    report.mkdir()
    (report / "README.txt").write_text("what these runs are\n")  # not a report file
    assert main(["eval", "--gt", str(gt), "--pred", str(pred), "--report", str(report)]) == 0
    assert visible(report) == ["README.txt", "confusion-matrix.png", "metrics.json",
                               "pr-car.png", "pr-person.png", "summary.md"]
    capsys.readouterr()
    # the same predictions against ground truth that labels only cars: no person curve
    car_gt = write_truth(tmp_path / "cars.jsonl", [[("car", CAR)], []], width=320, height=240)
    assert main(["eval", "--gt", str(car_gt), "--pred", str(pred), "--report",
                 str(report)]) == 0
    err = capsys.readouterr().err
    assert visible(report) == ["README.txt", "confusion-matrix.png", "metrics.json",
                               "pr-car.png", "summary.md"]
    assert json.loads((report / "metrics.json").read_text())["per_class"] == pytest.approx(
        {"car": 1.0})
    assert f"drivevision: note: {report}: replaced the report files of an earlier run into " \
           "it (1 of them not written again was removed)" in err.splitlines()
    assert (report / "README.txt").read_text() == "what these runs are\n"
    assert (report / ".drivevision-report.txt").read_text().splitlines()[1:] == [
        "confusion-matrix.png", "metrics.json", "pr-car.png", "summary.md"]


def test_a_report_folder_another_run_is_writing_is_refused(files, tmp_path, capsys,
                                                          held_by_another_run):
    gt, pred = files
    report = tmp_path / "rep"
    pid = held_by_another_run(report)
    assert main(["eval", "--gt", str(gt), str(gt), "--weights", "missing.pt", "--report",
                 str(report)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"drivevision: error: {report.resolve()} is being written by another run (pid {pid}); "
        "wait for it to end or choose another name"]
    assert not report.exists()


def test_the_input_folder_is_refused_as_the_report_folder(files, tmp_path, capsys):
    gt, _ = files
    frames = tmp_path / "frames"
    frames.mkdir()
    assert main(["eval", "--gt", str(gt), str(frames), "--weights", "missing.pt", "--report",
                 str(frames)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and "An output path is an input" in err[0], err
    assert visible(frames) == []


def car_clip(tmp_path):
    """(video, ground truth): 2 frames of the evaluation clip, labelled for cars only, so
    the demo model's predictions of other classes are left out with a note."""
    from drivevision.synthetic import write_eval_clip

    video, full, gt = tmp_path / "clip.mp4", tmp_path / "full.jsonl", tmp_path / "gt.jsonl"
    write_eval_clip(video, full, seeds=(101,), frames_per_seed=2)
    lines = []
    for line in full.read_text().splitlines():
        frame = json.loads(line)
        keep = [i for i, name in enumerate(frame["labels"]) if name == "car"]
        for key in ("boxes", "labels", "track_ids"):
            frame[key] = [frame[key][i] for i in keep]
        lines.append(json.dumps(frame) + "\n")
    gt.write_text("".join(lines))
    return video, gt


def run_car_clip(tmp_path, *options):
    video, gt = car_clip(tmp_path)
    return main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", *options])


def test_each_engine_folder_has_the_summary_a_pred_report_has_linked_from_the_top(
        tmp_path, capsys):
    report = tmp_path / "rep"
    assert run_car_clip(tmp_path, "--report", str(report)) == 0
    capsys.readouterr()
    assert visible(report / "torch-fp32") == [
        "confusion-matrix.png", "metrics.json", "pr-car.png", "summary.md"]
    summary = (report / "torch-fp32" / "summary.md").read_text()
    assert summary.startswith(f"# torch fp32 on {tmp_path / 'clip.mp4'}\n")
    assert "| class | boxes | detections | P | R | AP@.5 | AP@[.5:.95] |" in summary
    assert "\n| car | 4 | " in summary
    # the classes the ground truth lacks come after its own: what its cars were taken for
    assert "| predicted / true | car | bus | person | truck | background |" in summary
    assert "\n- left out of AP, P and R (the confusion matrix counts them) predictions of " \
        "classes the ground truth does not label: " in summary
    top = (report / "summary.md").read_text()
    assert "- [torch fp32](torch-fp32/summary.md)\n" in top
    links = re.findall(r"\]\(([^)]+)\)", top)
    assert links == ["torch-fp32/summary.md"] and (report / links[0]).is_file()
    assert "torch-fp32/summary.md" in (report / ".drivevision-report.txt").read_text()


NOTE = ("left out of AP, P and R (the confusion matrix counts them) predictions of classes the "
        "ground truth does not label: ")


@pytest.mark.parametrize("json_out", [False, True])
@pytest.mark.parametrize("report", [False, True])
def test_a_pred_note_is_printed_once_on_stdout_or_beside_json_and_in_it_and_the_summary(
        files, tmp_path, capsys, json_out, report):
    gt, pred = files
    write_preds(pred, {0: [("car", 0.9, CAR), ("dog", 0.8, [250, 150, 300, 200])], 1: []})
    folder = tmp_path / "rep"
    assert main(["eval", "--gt", str(gt), "--pred", str(pred),
                 *(["--json"] if json_out else []),
                 *(["--report", str(folder)] if report else [])]) == 0
    out, err = capsys.readouterr()
    note = NOTE + "dog"
    assert err.count(note) == int(json_out) and out.count(note) == 1, (out, err)
    if json_out:  # a program reading the JSON gets them too
        assert f"drivevision: note: {note}" in err.splitlines()
        assert json.loads(out)["notes"] == [note]
    else:
        assert f"- {note}" in out.splitlines() and "note:" not in err
    if report:
        assert f"- {note}" in (folder / "summary.md").read_text().splitlines()


@pytest.mark.parametrize("json_out", [False, True])
def test_an_input_runs_notes_are_printed_once_with_the_table_or_beside_json_and_in_it(
        tmp_path, capsys, json_out):
    report = tmp_path / "rep"
    assert run_car_clip(tmp_path, "--report", str(report),
                        *(["--json"] if json_out else [])) == 0
    out, err = capsys.readouterr()
    [line] = [s for s in (err if json_out else out + err).splitlines() if NOTE in s]
    if json_out:
        assert line.startswith(f"drivevision: note: torch fp32: {NOTE}") and line in err
        assert json.loads(out)["notes"] == [line.split("note: ", 1)[1]]
    else:
        assert line.startswith(f"note: torch fp32: {NOTE}") and line in out.splitlines()
    assert line.split("note: ", 1)[1] in (report / "summary.md").read_text()


def test_a_note_several_runs_share_is_listed_once_naming_them():
    from drivevision.cli.eval_run import EngineRun, RunResult, run_notes
    from drivevision.evaluation import Evaluation

    def run(engine, precision, notes):
        return EngineRun(engine, precision, 1.0, Evaluation({}, {}, notes))

    result = RunResult({}, [run("torch", "fp32", ["a"]), run("torch", "bf16", ["a", "b"]),
                            run("onnx", "fp32", [])])
    assert run_notes(result) == ["torch fp32, torch bf16: a", "torch bf16: b"]


def test_the_summary_says_what_small_medium_and_large_objects_are(files, capsys):
    # COCO's size ranges, by the ground-truth box's area: the car of the files, 100x100, is
    # large and found; the person, 40x100, medium and missed; no object is small
    gt, pred = files
    assert main(["eval", "--gt", str(gt), "--pred", str(pred)]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "| AP " in line]
    assert rows == ["| AP small (area < 32x32 px) | - |",
                    "| AP medium (32x32 to 96x96 px) | 0.000 |",
                    "| AP large (area > 96x96 px) | 1.000 |"]
