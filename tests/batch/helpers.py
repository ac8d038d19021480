"""Batch test helpers: a small tree of generated clips, the demo model, what a run left,
a dataset checked against the JSONL, a batch stopped at its first progress report."""

import json
import os
import signal
from pathlib import Path

import pytest

from drivevision.synthetic import write_clip
from tests.io.test_dataset_sinks import read_labels

ROOT = Path(__file__).parents[2]
WEIGHTS = str(ROOT / "assets" / "tiny-fpn-synthetic.pt")
CLIPS = ("2026-11-28/front_0001.mp4", "2026-11-28/front_0002.mp4", "2026-11-29/rear_0001.mp4")


def make_footage(folder: Path, frames: int = 6) -> Path:
    """CLIPS under ``folder``: 160x96 H.264 clips of ``frames`` frames, seeds 1, 2, 3."""
    for seed, rel in enumerate(CLIPS, 1):
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        write_clip(path, frames, width=160, height=96, seed=seed)
    return folder


def new_plan(footage: Path, out: Path, **config):
    """The batch plan for every clip under ``footage`` into a new folder ``out``, with the
    demo model and ``config`` (``DetectorConfig`` fields); its settings are ``plan.settings``."""
    from drivevision.batch import BatchSettings, find_jobs, plan_batch
    from drivevision.config import DetectorConfig

    settings = BatchSettings(DetectorConfig(weights=WEIGHTS, **config))
    plan = plan_batch(find_jobs([str(footage)], out), out, settings)
    out.mkdir()
    return plan


def stop_at_first_progress(tmp_path: Path, workers) -> tuple:
    """Run a batch over clips long enough (80 frames) that a worker reports frames before
    its input is done, stopped as Ctrl-C stops it at that first report; ``workers(settings,
    out)`` makes the workers (local or Ray). Checks that the stopped input's row says how far
    it got (at least the frames reported, its seconds) and that it kept no output; returns
    (the outcome, that row)."""
    from drivevision.batch import run_batch

    out = tmp_path / "det"
    plan = new_plan(make_footage(tmp_path / "footage", frames=80), out)
    reported = []

    def stop_at_first(event):
        if event.kind == "frames" and not reported:
            reported.append(event.frames)
            os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C: the batch's stop request

    outcome = run_batch(plan, workers(plan.settings, out), on_event=stop_at_first)
    assert reported, "no worker reported progress before its input was done"
    [stopped] = [r for r in outcome.rows if r["status"] == "interrupted"]
    assert stopped["frames"] >= reported[0] > 0 and stopped["seconds"] > 0
    assert stopped["outputs"] == [] and not (out / f"{stopped['rel']}.jsonl").exists()
    return outcome, stopped


def outputs_of(out: Path) -> dict[str, bytes]:
    """Every output file under ``out`` (relative path -> bytes), the batch's own files and
    hidden ones left out."""
    own = {"batch.json", "batch.csv", "batch-manifest.jsonl"}
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.name not in own and not p.name.startswith(".")}


def assert_same_detections(got: dict[str, bytes], want: dict[str, bytes]) -> None:
    """``outputs_of`` two runs whose workers ran another number of torch threads: the same
    files, frames, classes and order; boxes and scores may differ by float rounding (a CPU
    may sum in another order with another thread count: 0.01 px seen on an AVX2 one)."""
    assert sorted(got) == sorted(want)
    for name in want:
        if not name.endswith(".jsonl"):
            assert got[name] == want[name], name
            continue
        mine, theirs = ([json.loads(line) for line in d[name].splitlines()] for d in (got, want))
        assert [f["frame"] for f in mine] == [f["frame"] for f in theirs], name
        for a, b in zip(mine, theirs):
            da, db = a["detections"], b["detections"]
            assert [d["class_id"] for d in da] == [d["class_id"] for d in db], name
            assert [d["box"] for d in da] == [pytest.approx(d["box"], abs=0.1) for d in db]
            assert [d["score"] for d in da] == pytest.approx([d["score"] for d in db], abs=1e-3)


def hidden_or_partial(out: Path) -> list[str]:
    return sorted(p.name for p in out.rglob("*") if ".part" in p.name)


def files(folder: Path) -> dict[str, bytes]:
    """Every file in ``folder`` but the hidden ones: relative path -> bytes."""
    found = {}
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if path.is_file() and not any(p.startswith(".") for p in rel.parts):
            found[rel.as_posix()] = path.read_bytes()
    return found


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*.part*"))


def assert_dataset_is_the_jsonl(root: Path, rels: list[str], size=(160, 96)) -> None:
    """The dataset in ``root``/ds and crops in ``root``/crops hold, for each input of
    ``rels`` (frames of ``size``), a label file and an image for each frame with detections
    in its JSONL (``root``/det), the same boxes and classes, and a crop for each detection;
    every file is recorded, none is half-written."""
    from drivevision.io.dataset_sinks import CROPS_FOLDER, YOLO_FOLDER

    ds, crops = root / "ds", root / "crops"
    names = (ds / "classes.txt").read_text().splitlines()
    assert f"nc: {len(names)}" in (ds / "data.yaml").read_text()
    top = sorted(n for n in files(ds) if "/" not in n)
    assert top == ["classes.txt", "data.yaml"]  # once, for all inputs
    rows = {r["rel"]: r for r in json.loads((root / "det" / "batch.json").read_text())["inputs"]}
    for rel in rels:
        jsonl = (root / "det" / f"{rel}.jsonl").read_text()
        frames = [json.loads(ln) for ln in jsonl.splitlines()]
        with_boxes = [f for f in frames if f["detections"]]
        assert with_boxes, "the demo model found nothing: the test checks nothing"
        stems = [f"frame_{f['frame']:06d}" for f in with_boxes]
        assert sorted(n.rsplit("/", 1)[1] for n in files(ds) if n.startswith(f"labels/{rel}/")) \
            == [f"{s}.txt" for s in stems]
        assert sorted(n.rsplit("/", 1)[1] for n in files(ds) if n.startswith(f"images/{rel}/")) \
            == [f"{s}.jpg" for s in stems]
        for frame, stem in zip(with_boxes, stems):
            got = read_labels(ds / "labels" / rel / f"{stem}.txt", *size)
            want = frame["detections"]
            assert [names[c] for c, _ in got] == [d["class_name"] for d in want]
            for (_, box), d in zip(got, want):
                assert box == pytest.approx(d["box"], abs=0.01)
        detections = sum(len(f["detections"]) for f in frames)
        assert len([n for n in files(crops) if f"/{rel}/" in n]) == detections
        assert rows[rel]["dataset"] == {"yolo": 2 * len(stems), "crops": detections}
    for folder, layout in ((ds, YOLO_FOLDER), (crops, CROPS_FOLDER)):
        assert layout.earlier(folder)[1] == []  # every file recorded
        assert hidden_leftovers(folder) == []
