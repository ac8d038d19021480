"""MOTChallenge ground truth (``SEQ/gt/gt.txt``) scored as MOTChallenge's evaluation scores
it: pedestrians (class 1) scored, distractors ignored, other classes left out, files without
a class column as before."""

from __future__ import annotations

import json

import pytest

from tests.evaluation.helpers import score


def box(slot: int) -> list[float]:
    """The xyxy box of the object at ``slot``: 40x100 boxes 100 px apart."""
    return [10.0 + 100 * slot, 10.0, 50.0 + 100 * slot, 110.0]


def mot_line(frame: int, track: int, slot: int, *rest) -> str:
    """``frame,id,x,y,w,h`` of the box at ``slot``, then ``rest`` (flag, class, visibility)."""
    x1, y1, x2, y2 = box(slot)
    return ",".join(map(str, (frame, track, x1, y1, x2 - x1, y2 - y1, *rest)))


def sequence(tmp_path, lines: list[str], name: str = "MOT17-02"):
    """``name/gt/gt.txt`` holding ``lines``, as MOTChallenge lays a sequence out."""
    gt = tmp_path / name / "gt" / "gt.txt"
    gt.parent.mkdir(parents=True)
    gt.write_text("\n".join(lines) + "\n")
    return gt


def tracked(path, frames: dict[int, list[tuple]], size: tuple[int, int] | None = None):
    """``detect --track --jsonl``: ``frames[i]`` (class name, score, slot, track id)
    quadruples; each line states ``size`` when given."""
    with open(path, "w") as f:
        for frame, dets in frames.items():
            stated = {"width": size[0], "height": size[1]} if size else {}
            f.write(json.dumps({"frame": frame, **stated, "detections": [
                {"class_name": n, "score": s, "box": box(slot), "track_id": t}
                for n, s, slot, t in dets]}) + "\n")
    return path


@pytest.mark.parametrize("distractor", [2, 7, 8, 12])  # on vehicle, static, distractor, reflection
def test_a_distractor_is_neither_a_hit_nor_a_miss_nor_a_false_positive(
        tmp_path, capsys, distractor):
    # flag 1, so that only the class makes the two distractors ignored regions
    gt = sequence(tmp_path, [mot_line(1, 1, 0, 1, 1, 1), mot_line(1, 2, 1, 1, distractor, 1),
                             mot_line(1, 3, 2, 1, distractor, 1)])
    # the pedestrian found, one distractor detected (the best score), the other not
    pred = tracked(tmp_path / "det.jsonl", {0: [("person", 0.9, 0, 1), ("person", 0.95, 1, 2)]})
    code, metrics, err = score(capsys, gt, pred)
    assert code == 0, err
    row = metrics["classes"]["object"]
    assert (row["gt_boxes"], row["precision"], row["recall"]) == (1, 1.0, 1.0)
    assert metrics["AP50"] == pytest.approx(1.0)
    assert (metrics["false_positives"], metrics["misses"], metrics["MOTA"]) == (0, 0, 1.0)


def test_other_classes_are_not_scored_so_a_box_on_one_is_a_false_positive(tmp_path, capsys):
    # a car flagged 0 (as MOT17 flags them), a bicycle and an occluder flagged 1
    gt = sequence(tmp_path, [mot_line(1, 1, 0, 1, 1, 1), mot_line(1, 2, 1, 0, 3, 1),
                             mot_line(1, 3, 2, 1, 4, 1), mot_line(1, 4, 3, 1, 9, 0.5)])
    pred = tracked(tmp_path / "det.jsonl", {0: [("person", 0.9, 0, 1), ("car", 0.95, 1, 2)]})
    code, metrics, err = score(capsys, gt, pred)
    assert code == 0, err
    row = metrics["classes"]["object"]
    assert (row["gt_boxes"], row["recall"], row["precision"]) == (1, 1.0, 0.5)
    assert metrics["AP50"] == pytest.approx(0.5)  # the car box, ranked first, a false positive
    assert (metrics["false_positives"], metrics["misses"]) == (1, 0)
    # a note says why the car box counts, and how to score the person boxes alone
    [why] = [n for n in metrics["notes"] if "names no class" in n]
    assert "(car, person)" in why and "--class-map object=NAME" in why
    # the model's person boxes alone, as docs/eval.md says to score them
    code, metrics, err = score(capsys, gt, pred, "--class-map", "object=person")
    assert code == 0 and metrics["AP50"] == pytest.approx(1.0), err
    assert metrics["false_positives"] == 0
    assert not [n for n in metrics["notes"] if "names no class" in n]


def test_non_motorized_vehicles_are_distractors_in_mot20_only(tmp_path, capsys):
    lines = [mot_line(1, 1, 0, 1, 1, 1), mot_line(1, 2, 1, 1, 6, 1)]
    pred = tracked(tmp_path / "det.jsonl", {0: [("person", 0.9, 0, 1), ("person", 0.95, 1, 2)]})
    ap = {}
    for name in ("MOT20-01", "MOT17-02"):
        code, metrics, err = score(capsys, sequence(tmp_path, lines, name), pred)
        assert code == 0, err
        ap[name] = metrics["AP50"]
    assert ap == pytest.approx({"MOT20-01": 1.0, "MOT17-02": 0.5})


@pytest.mark.parametrize("other", ["14", "-1", "0"])
def test_a_class_column_with_a_class_on_some_lines_only_is_refused_in_one_line(
        tmp_path, capsys, other):
    gt = sequence(tmp_path, [mot_line(1, 1, 0, 1, 1, 1), mot_line(1, 2, 1, 1, other, 1)])
    code, _, err = score(capsys, gt, tracked(tmp_path / "det.jsonl", {0: []}))
    assert code == 2 and err.strip().splitlines() == [
        f"drivevision: error: {gt} line 2: expected a MOTChallenge class 1-13 in the 8th "
        f"column, as line 1 has (1), but got {mot_line(1, 2, 1, 1, other, 1)}"]


@pytest.mark.parametrize("rest", [(), (1,), (1, -1, -1, -1)],
                         ids=["6 columns", "7 columns", "MOT15 (-1 for x, y, z)"])
def test_files_without_a_class_column_score_every_box_as_before(tmp_path, capsys, rest):
    gt = sequence(tmp_path, [mot_line(1, 1, 0, *rest), mot_line(1, 2, 1, *rest),
                             mot_line(2, 1, 0, *rest)])
    pred = tracked(tmp_path / "det.jsonl", {0: [("car", 0.95, 1, 2)], 1: []})
    code, metrics, err = score(capsys, gt, pred)
    assert code == 0, err
    row = metrics["classes"]["object"]
    assert (metrics["frames"], row["gt_boxes"], row["precision"], row["recall"]) == (
        2, 3, 1.0, pytest.approx(1 / 3))


def seqinfo(gt, width=640, height=480, length=4, text: str | None = None):
    """``seqinfo.ini`` beside ``gt``'s ``gt/`` folder, as MOTChallenge writes it (or ``text``)."""
    ini = gt.parent.parent / "seqinfo.ini"
    ini.write_text(text if text is not None else (
        f"[Sequence]\nname={gt.parent.parent.name}\nimDir=img1\nframeRate=30\n"
        f"seqLength={length}\nimWidth={width}\nimHeight={height}\nimExt=.jpg\n"))
    return ini


def test_predictions_of_another_frame_size_than_seqinfo_states_are_refused(tmp_path, capsys):
    gt = sequence(tmp_path, [mot_line(f, 1, 0, 1, 1, 1) for f in (1, 2)])
    seqinfo(gt, 640, 480, 2)
    found = {f: [("person", 0.9, 0, 1)] for f in (0, 1)}
    code, metrics, err = score(capsys, gt, tracked(tmp_path / "same.jsonl", found, (640, 480)))
    assert code == 0 and metrics["AP50"] == 1.0, err
    code, _, err = score(capsys, gt, tracked(tmp_path / "half.jsonl", found, (320, 240)))
    errors = [line for line in err.splitlines() if line.startswith("drivevision: error:")]
    assert code == 2 and len(errors) == 1 and "Traceback" not in err
    assert "320x240 frames" in errors[0] and "labels 640x480" in errors[0]


def test_seqlength_makes_the_frames_after_the_last_labelled_one_frames_with_nothing(
        tmp_path, capsys):
    gt = sequence(tmp_path, [mot_line(f, 1, 0, 1, 1, 1) for f in (1, 2)])
    seqinfo(gt, length=4)
    # frames 2 and 3 are the sequence's too: a box there is a false positive
    pred = tracked(tmp_path / "det.jsonl", {0: [("person", 0.9, 0, 1)],
                                           1: [("person", 0.9, 0, 1)], 2: [],
                                           3: [("person", 0.95, 2, 5)]})
    code, metrics, err = score(capsys, gt, pred)
    assert code == 0, err
    row = metrics["classes"]["object"]
    assert (metrics["frames"], row["gt_boxes"], metrics["false_positives"]) == (4, 2, 1)
    assert metrics["AP50"] == pytest.approx(2 / 3)  # the false positive ranked first


def test_ground_truth_past_seqlength_is_refused_in_one_line(tmp_path, capsys):
    gt = sequence(tmp_path, [mot_line(f, 1, 0, 1, 1, 1) for f in (1, 5, 2)])
    ini = seqinfo(gt, length=4)
    code, _, err = score(capsys, gt, tracked(tmp_path / "det.jsonl", {0: []}))
    assert code == 2 and err.strip().splitlines() == [
        f"drivevision: error: {gt} line 2 labels frame 5, past the 4 frames (seqLength) of "
        f"{ini}: the seqinfo.ini of another sequence?"]


@pytest.mark.parametrize("text, problem", [
    ("imWidth=640\nimHeight=480\nseqLength=4\n", "it is not INI text (line 1)"),
    ("[Sequence]\nimWidth=640\nimHeight=480\n", "it has no seqLength"),
    ("[Sequence]\nimWidth=640\nimHeight=4 80\nseqLength=4\n", "it has imHeight = '4 80'"),
    ("[Sequence]\nimWidth=0\nimHeight=480\nseqLength=4\n", "it has imWidth = '0'"),
    ("[Info]\nimWidth=640\n", "it has no [Sequence] section"),
], ids=["no section header", "no seqLength", "a height not a number", "a width of 0",
       "another section"])
def test_a_malformed_seqinfo_is_refused_in_one_line(tmp_path, capsys, text, problem):
    gt = sequence(tmp_path, [mot_line(1, 1, 0, 1, 1, 1)])
    ini = seqinfo(gt, text=text)
    code, _, err = score(capsys, gt, tracked(tmp_path / "det.jsonl", {0: []}))
    assert code == 2 and err.strip().splitlines() == [
        f"drivevision: error: {ini}: expected MOTChallenge's seqinfo.ini, a "
        f"[Sequence] section with integers imWidth, imHeight and seqLength > 0, but {problem}"]
