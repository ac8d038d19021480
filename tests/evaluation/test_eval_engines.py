"""``drivevision eval INPUT``: the demo model run on a generated labelled clip, scored and
timed per engine in one command; ONNX Runtime fp32 keeps torch fp32's AP."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest

from drivevision.cli import eval_run, main
from drivevision.synthetic import write_eval_clip, write_ground_truth
from drivevision.synthetic.evalset import eval_scenes

WEIGHTS = str(Path(__file__).parents[2] / "assets" / "tiny-fpn-synthetic.pt")
FP32_AP_TOLERANCE = 0.001  # 0.1 AP point, MMDeploy's "37.4 vs 37.3"


def run_eval(tmp_path, capsys, engines: str, frames_per_seed: int,
             precision: str = "fp32") -> dict:
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=frames_per_seed)
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--engines", engines, "--precision", precision, "--warmup", "1", "--json"])
    assert code == 0
    return json.loads(capsys.readouterr().out)


def test_the_demo_model_is_scored_and_timed_on_a_generated_clip(tmp_path, capsys):
    table = run_eval(tmp_path, capsys, "torch", 4)
    [row] = table["results"]
    assert (row["engine"], row["precision"], row["AP_diff"]) == ("torch", "fp32", 0.0)
    assert row["frames"] == 4 and row["ms_per_frame"] > 0
    assert row["AP50"] > 0.2  # it finds the cars it was trained to find, on unseen drives


@pytest.mark.slow
def test_onnx_fp32_is_within_a_tenth_of_an_ap_point_of_torch_fp32(tmp_path, capsys):
    pytest.importorskip("onnxruntime")
    table = run_eval(tmp_path, capsys, "torch,onnx", 12)
    rows = {r["engine"]: r for r in table["results"]}
    assert rows["torch"]["AP"] > 0.1
    assert abs(rows["onnx"]["AP_diff"]) <= FP32_AP_TOLERANCE, rows["onnx"]


@pytest.mark.slow
def test_bf16_is_within_the_tolerance_auto_relies_on(tmp_path, capsys):
    """``--precision auto`` picks bf16 on CPUs with bf16 hardware because its AP stays within
    ``BF16_AP_TOLERANCE`` (0.3 AP point) of fp32 on the evaluation clips: checked here for
    both bf16 engines. A CPU without bf16 hardware (where auto keeps fp32) emulates bf16 with
    other kernels and roundings (an AVX2 one: 0.45 AP from fp32 for compiled bf16): there
    only a gross error (a full AP point) fails."""
    from drivevision.engines.hardware import BF16_AP_TOLERANCE, cpu_features

    tolerance = BF16_AP_TOLERANCE if cpu_features().bf16 else 1.0
    table = run_eval(tmp_path, capsys, "torch,compiled", 12, precision="bf16")
    rows = {(r["engine"], r["precision"]): r for r in table["results"]}
    assert set(rows) == {("torch", "fp32"), ("torch", "bf16"), ("compiled", "bf16")}
    assert rows["torch", "fp32"]["AP"] > 0.1
    for setting in (("torch", "bf16"), ("compiled", "bf16")):
        assert abs(100 * rows[setting]["AP_diff"]) <= tolerance, rows[setting]


class Interrupting:
    """A detector that gets a Ctrl-C as it detects in a frame."""

    def __init__(self, detector):
        self.detector = detector

    def __getattr__(self, name):
        return getattr(self.detector, name)

    def __call__(self, image):
        import os
        import signal

        os.kill(os.getpid(), signal.SIGINT)
        return self.detector(image)


@pytest.mark.slow
@pytest.mark.parametrize("when, json_out", [("loading", False), ("detecting", True)])
def test_ctrl_c_during_a_later_engine_keeps_those_scored_in_the_table_and_report(
        tmp_path, capsys, monkeypatch, when, json_out):
    import os
    import signal

    import drivevision.cli as cli
    from drivevision.cli.exits import EXIT_INTERRUPTED

    def leave(signum):  # what quitting at once comes to, without ending the test's process
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "quit_now", leave)
    loaded, load = [], eval_run.Detector.from_config

    def from_config(config, **options):
        loaded.append(load(config, **options))
        if len(loaded) == 2 and when == "loading":  # Ctrl-C as the second model loads
            os.kill(os.getpid(), signal.SIGINT)
        return Interrupting(loaded[-1]) if len(loaded) == 2 else loaded[-1]

    monkeypatch.setattr(eval_run.Detector, "from_config", from_config)
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=3)
    report = tmp_path / "rep"
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--engines", "torch", "--precision", "fp32,bf16", "--warmup", "0",
                 "--report", str(report), *(["--json"] if json_out else [])])
    out, err = capsys.readouterr()
    assert code == EXIT_INTERRUPTED and len(loaded) == 2
    if json_out:
        table = json.loads(out)
        assert [(r["engine"], r["precision"]) for r in table["results"]] == [("torch", "fp32")]
        assert table["not_scored"] == ["torch bf16"]
    else:
        rows = [line.split()[:2] for line in out.splitlines() if line.startswith("torch ")]
        assert rows == [["torch", "fp32"]]
        assert "\ninterrupted: not scored: torch bf16\n" in out
    assert "drivevision: interrupted: not scored: torch bf16\n" in err
    assert "interrupted: not scored: torch bf16" in (report / "summary.md").read_text()
    assert (report / "torch-fp32" / "summary.md").is_file()
    assert not (report / "torch-bf16").exists()


@pytest.mark.parametrize("stride", [1, 2])
def test_ground_truth_past_the_end_of_the_input_is_refused_not_scored_as_missed(
        tmp_path, capsys, stride):
    """A 3-frame clip against the ground truth of 6 frames: frames 3-5 would count as
    missed, lowering AP with no word of why; the run says so in one line instead (exit 2).
    With --frame-stride 2 the input's frame 2 is the last it gives, frame 4 the one it lacks."""
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=6)
    write_eval_clip(video, tmp_path / "short_gt.jsonl", seeds=(101,), frames_per_seed=3)
    extra = ["--track", "--frame-stride", "2"] if stride == 2 else []
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", *extra])
    captured = capsys.readouterr()
    lacking = "3 frames after it (3-5)" if stride == 1 else "1 frame after it (4)"
    assert code == 2 and captured.out == ""
    assert captured.err.splitlines()[-1] == (
        f"drivevision: error: {video} ends at frame 2, but {gt} labels {lacking}, "
        "whose objects would count as missed: the ground truth of a longer video? Give the "
        "ground truth of the frames the input has")


@pytest.mark.parametrize("engines, precisions, refused", [
    ("torch,onnx", "fp16", False),  # fp16 needs CUDA: only the torch fp32 reference runs
    ("torch,compiled", "fp16", False),
    ("torch,onnx", "bf16", False),  # onnx runs no bf16; torch bf16 runs, building nothing
    ("torch,onnx", "fp32,fp16", True),  # onnx fp32 runs and would build there
])
def test_the_engine_cache_is_checked_only_for_the_settings_that_run(
        tmp_path, capsys, monkeypatch, engines, precisions, refused):
    """DRIVEVISION_CACHE under a file: refused (exit 2, one line, nothing run) when a
    setting that runs would build in it; not when every setting that would is skipped here
    (was: refused for the skipped ones too, though only torch, which keeps nothing there,
    would run)."""
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=1)
    blocker = tmp_path / "engines.tar"
    blocker.write_bytes(b"an archive")
    monkeypatch.setenv("DRIVEVISION_CACHE", str(blocker / "cache"))
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", "--engines", engines, "--precision", precisions, "--json"])
    captured = capsys.readouterr()
    assert blocker.read_bytes() == b"an archive"
    if refused:
        assert code == 2 and captured.out == ""
        assert captured.err.splitlines() == [
            f"drivevision: error: Expected DRIVEVISION_CACHE to be a folder (made if "
            f"missing), but {blocker} is not a folder"]
        return
    assert code == 0, captured.err
    table = json.loads(captured.out)
    ran = [(r["engine"], r["precision"]) for r in table["results"]]
    assert ran[0] == ("torch", "fp32") and all(e == "torch" for e, _ in ran)
    skipped = {f"{s['engine']} {s['precision']}" for s in table["skipped"]}
    asked = {f"{e} {p}" for e in engines.split(",") for p in precisions.split(",")}
    assert asked <= skipped | {f"{e} {p}" for e, p in ran}  # each either ran or was skipped


def test_int8_on_an_engine_without_it_is_skipped_and_asks_for_no_calibration(tmp_path,
                                                                              capsys):
    """torch int8 never runs: skipped saying why, the reference scored (was: the run
    stopped after torch fp32 ran, asking for --calib, with nothing printed)."""
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=1)
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", "--engines", "torch", "--precision", "fp32,int8", "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    table = json.loads(captured.out)
    assert [(r["engine"], r["precision"]) for r in table["results"]] == [("torch", "fp32")]
    (skipped,) = table["skipped"]
    assert (skipped["engine"], skipped["precision"]) == ("torch", "int8")
    assert skipped["reason"].startswith("Expected --engine onnx or compiled (or auto) for "
                                        "int8, but got torch")


@pytest.mark.parametrize("calib, expected", [
    (None, "int8 needs frames to calibrate on: pass --calib CLIP_OR_FOLDER"),
    ("missing.mp4", "Expected --calib to be a video file or a folder of images from your own "
                    "cameras, but missing.mp4 does not exist"),
])
def test_int8_that_runs_here_without_footage_is_refused_before_the_reference_runs(
        tmp_path, capsys, monkeypatch, calib, expected):
    """onnx int8 on a CPU needs --calib: said in one line before any model loads (was: once
    torch fp32 had run, its scores thrown away)."""

    monkeypatch.setattr(eval_run.Detector, "from_config",
                        lambda *a, **k: pytest.fail("a model loaded"))
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=1)
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--engines", "torch,onnx", "--precision", "int8",
                 *(["--calib", calib] if calib else [])])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    (line,) = captured.err.splitlines()
    assert line.startswith(f"drivevision: error: {expected}")


def _remuxed(mp4: Path, path: Path, muxer: str) -> Path:
    """``mp4``'s packets as they are, in another container: MPEG-TS and MKV store no frame
    count, so where a cut file of theirs ends is known only by decoding it."""
    import av

    with av.open(str(mp4)) as src, av.open(str(path), "w", format=muxer) as out:
        stream = out.add_stream_from_template(src.streams.video[0])
        for packet in src.demux(src.streams.video[0]):
            if packet.dts is not None:  # not the flush packet
                packet.stream = stream
                out.mux(packet)
    return path


@pytest.mark.parametrize("muxer, suffix", [("mpegts", ".ts"), ("matroska", ".mkv")])
def test_a_cut_video_without_a_frame_count_is_named_as_maybe_cut_not_scored_as_missed(
        tmp_path, capsys, muxer, suffix):
    """The last 40% of an MPEG-TS or MKV lost (a copy that did not finish): it just ends
    early, with no count to tell, so its labelled frames past the last decoded one would
    count as missed. Refused in one line (exit 2) naming the last frame, the labelled ones
    after it, and that the file may be cut (was: only 'the ground truth of a longer
    video?')."""
    from drivevision.io.sources import open_source

    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=12)
    full = _remuxed(video, tmp_path / f"full{suffix}", muxer)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size * 6 // 10])
    with open_source(str(cut)) as source:
        last = max(frame.index for frame in source)
        assert source.frame_count is None and last < 11  # no count, and it ends early
    code = main(["eval", "--gt", str(gt), str(cut), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    after = "1 frame after it (11)" if last == 10 else \
        f"{11 - last} frames after it ({last + 1}-11)"
    assert captured.err.splitlines()[-1] == (
        f"drivevision: error: {cut} ends at frame {last}, the last that decodes (it stores no "
        f"frame count), but {gt} labels {after}, whose objects would count as missed: is "
        f"{cut} cut short (a copy or recording that did not finish), or is this the ground "
        "truth of a longer video? Give the whole video, or the ground truth of the frames it "
        "has")


@pytest.mark.parametrize("mapping, expected", [
    ("car=tractor", "--class-map: Unknown class 'tractor'; expected one of the model's "
                    "classes: person (1), car (2), truck (3), bus (4), traffic light (5)"),
    ("vehicle=Truk", "--class-map: Unknown class 'truk'; did you mean truck?"),
])
def test_a_class_map_naming_a_class_the_model_lacks_is_refused_before_detecting(
        tmp_path, capsys, mapping, expected):
    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=1)
    if mapping.startswith("vehicle"):  # a ground truth that says vehicle
        gt.write_text(gt.read_text().replace('"truck"', '"vehicle"'))
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", "--class-map", mapping])
    err = capsys.readouterr().err
    assert code == 2 and err.splitlines()[-1] == f"drivevision: error: {expected}"
    assert "detecting" not in err  # the model loaded, no frame went through it


def test_an_input_longer_than_its_ground_truth_stops_at_the_first_unlabelled_frame(
        tmp_path, capsys, monkeypatch):
    """A 6-frame clip against the ground truth of its first 3: refused at frame 3, before
    it is detected, not after the detector went through the rest of the video."""
    from drivevision.detector import Detector

    video, gt = tmp_path / "clip.mp4", tmp_path / "gt.jsonl"
    write_eval_clip(video, tmp_path / "full.jsonl", seeds=(101,), frames_per_seed=6)
    gt.write_text("".join((tmp_path / "full.jsonl").read_text().splitlines(True)[:3]))
    calls = []
    call = Detector.__call__
    monkeypatch.setattr(Detector, "__call__", lambda self, *a, **k: calls.append(1) or
                        call(self, *a, **k))
    code = main(["eval", "--gt", str(gt), str(video), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0"])
    err = capsys.readouterr().err
    assert code == 2 and len(calls) == 3  # frames 0-2 only
    assert err.splitlines()[-1] == (
        f"drivevision: error: {video} has frame 3, which {gt} does not label (it labels 3 "
        "frames, 0-2); pass --allow-unlabelled to leave the frames it lacks out")


def test_labelled_frames_a_truncated_video_has_but_cannot_decode_count_as_missed(
        tmp_path, capsys):
    """An MP4 cut at 90%: its container still counts 12 frames, the last 5 do not decode.
    Their objects count as missed, as the docs say of frames that cannot be decoded, with
    notes saying which and why, and exit 3 as detect on that file; not the error for ground
    truth past the input's end (the file holds those frames, damaged)."""
    video, gt, cut = tmp_path / "clip.mp4", tmp_path / "gt.jsonl", tmp_path / "cut.mp4"
    write_eval_clip(video, gt, seeds=(101,), frames_per_seed=12)
    data = video.read_bytes()
    cut.write_bytes(data[: len(data) * 9 // 10])
    code = main(["eval", "--gt", str(gt), str(cut), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", "--json"])
    captured = capsys.readouterr()
    table = json.loads(captured.out)
    [row] = table["results"]
    assert code == 3, captured.err
    assert row["frames"] == 12 and row["gt_boxes"] == sum(
        len(json.loads(line)["boxes"]) for line in gt.read_text().splitlines())
    assert f"torch fp32: {cut}: decoding stopped after 7 of 12 frames; the file looks " \
           "truncated or damaged" in table["notes"]
    assert (f"torch fp32: the objects of 5 labelled frames count as missed: {cut} has them, "
            "but they could not be decoded (7, 8, 9, 10, 11)") in table["notes"]
    assert "count as missed" in captured.err  # on stderr beside --json, too


@pytest.mark.parametrize("damaged", [1, 3])
def test_a_labelled_image_that_cannot_be_decoded_counts_as_missed_with_a_note(
        tmp_path, capsys, damaged):
    """A damaged image inside the folder, or its last one: the folder has that frame, so
    its objects count as missed (not an error for ground truth past the end), the notes say
    which, and the exit code is 3, as detect on that folder. (Before: exit 0 with no word
    for the one inside, the past-the-end error for the last.)"""
    folder, gt = tmp_path / "frames", tmp_path / "gt.jsonl"
    folder.mkdir()
    scenes = eval_scenes((101,), frames_per_seed=4)
    write_ground_truth(gt, scenes)
    for i, scene in enumerate(scenes):
        cv2.imwrite(str(folder / f"frame_{i:03d}.png"), scene.image)
    (folder / f"frame_{damaged:03d}.png").write_bytes(b"not an image")
    code = main(["eval", "--gt", str(gt), str(folder), "--weights", WEIGHTS, "--device", "cpu",
                 "--warmup", "0", "--json"])
    table = json.loads(capsys.readouterr().out)
    [row] = table["results"]
    assert code == 3 and row["frames"] == 4
    assert (f"torch fp32: the objects of 1 labelled frame count as missed: {folder} has "
            f"it, but it could not be decoded ({damaged})") in table["notes"]
    assert any("could not be decoded" in n and "frame_00" in n for n in table["notes"]
               if "count as missed" not in n), table["notes"]
