"""The batch's driver: which inputs need work (``plan_batch``), handing them to workers
(local processes or Ray actors) and recording what comes back (``run_batch``)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from drivevision.batch.datasets import Datasets, part_counts
from drivevision.batch.jobs import Job
from drivevision.batch.manifest import MANIFEST, REPORT_CSV, REPORT_JSON, Manifest, write_reports
from drivevision.batch.work import BatchSettings, Event, remove_killed_parts
from drivevision.pipeline import signals

STATUSES = ("done", "skipped", "failed", "interrupted", "pending")


@dataclass
class Plan:
    """``rows``: one per input, in order (rel -> the row batch.json shows); ``todo``: the
    inputs to run; ``key``: the settings as the manifest records them."""

    out_dir: Path
    settings: BatchSettings
    key: dict
    manifest: Manifest
    rows: dict[str, dict]
    todo: list[Job] = field(default_factory=list)


@dataclass
class Outcome:
    """What a batch run did: every input's row and the totals (``summary``)."""

    rows: list[dict]
    summary: dict

    @property
    def failed(self) -> int:
        return self.summary["failed"]

    @property
    def interrupted(self) -> bool:
        return self.summary["interrupted"] + self.summary["pending"] > 0


def claim_out_dir(out_dir: Path):
    """This run's exclusive hold on ``out_dir`` (made if missing); SinkError when another
    batch writes there. A context manager."""
    from drivevision.errors import SinkError
    from drivevision.io.claims import Claim

    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as e:  # a read-only file system, a file where a folder should be, ...
        raise SinkError(f"Cannot make --out folder {out_dir}: {e.strerror or e}") from None
    return Claim(out_dir / REPORT_JSON, what=f"--out {out_dir}")


def plan_batch(jobs: list[Job], out_dir: Path, settings: BatchSettings, *,
               force: bool = False) -> Plan:
    """Skip the inputs the manifest in ``out_dir`` has done with these settings (all of
    them run again with ``force``), removing the part files killed runs left for them and
    for the manifest and reports (a batch killed while writing one)."""
    remove_killed_parts(out_dir / name for name in (MANIFEST, REPORT_JSON, REPORT_CSV))
    key = settings.key()
    manifest = Manifest(out_dir).load()
    plan = Plan(out_dir, settings, key, manifest, {})
    for job in jobs:
        record = None if force else manifest.done(job, key)
        if record is not None and record.get("dataset", {}) != part_counts(settings, job.rel):
            record = None  # some of its dataset files are gone
        row = _row(job, "pending")
        if record is not None:
            remove_killed_parts(out_dir / o["path"] for o in record["outputs"].values())
            row.update(status="skipped", frames=record["frames"],
                       detections=record["detections"], dataset=record.get("dataset", {}),
                       outputs=[o["path"] for o in record["outputs"].values()])
        else:
            plan.todo.append(job)
        plan.rows[job.rel] = row
    return plan


def run_batch(plan: Plan, workers, *,
              on_event: Callable[[Event], None] | None = None) -> Outcome:
    """Run ``plan.todo`` on ``workers`` (``LocalWorkers`` or ``RayWorkers``), record each
    completed input in the manifest as it comes (removing the outputs an earlier run wrote
    for it that this one does not), and write batch.json and batch.csv (also
    when stopped or failing). Ctrl-C or SIGTERM (main thread) stops at once: the inputs in
    progress are lost (their rows say how many frames and seconds they had done), their
    partial outputs hidden and removed by the next run; an output one of them had already
    moved into place (its worker stopped while finishing) is removed too, so that an
    interrupted input has none and the next run redoes it whole. The dataset folders
    (``Datasets``) hold only inputs done and those in progress."""
    stop: list[int] = []
    tries: dict[str, _Try] = {}
    start = time.perf_counter()
    datasets = Datasets(plan.settings)
    datasets.prepare(plan)
    try:
        with signals.requests(stop.append):
            for event in workers.run(plan.todo, lambda: bool(stop)):
                if event.kind == "started":
                    tries[event.job.rel] = _Try(plan, event.job)
                elif event.kind == "frames" and event.job.rel in tries:
                    tries[event.job.rel].frames += event.frames
                elif event.kind == "retry":
                    datasets.drop(event.job.rel)
                elif event.kind == "result":
                    _record(plan, event, tries.pop(event.job.rel, None), datasets)
                if on_event is not None:
                    on_event(event)
    finally:
        plan.manifest.close()
        outcome = _outcome(plan, time.perf_counter() - start)
        outcome.summary.update(notes=datasets.notes, datasets=datasets.summary(outcome.rows))
        write_reports(plan.out_dir, outcome.rows, outcome.summary)
    return outcome


class _Try:
    """One try at an input as the driver sees it: when it went to a worker, the frames the
    worker reported, and its outputs' files as they were then (to tell those it moved into
    place)."""

    def __init__(self, plan: Plan, job: Job):
        self.start, self.frames = time.perf_counter(), 0
        self.before = {p: _identity(p) for p in plan.settings.outputs(job, plan.out_dir).values()}

    def interrupted(self, result, out_dir: Path) -> None:
        """Fill in what a worker stopped at once could not say, and remove what it had
        already moved into place."""
        result.frames = max(result.frames, self.frames)
        result.seconds = result.seconds or time.perf_counter() - self.start
        placed = [p for p, was in self.before.items() if _identity(p) not in (None, was)]
        for path in placed:
            path.unlink(missing_ok=True)
        if placed:
            names = ", ".join(p.relative_to(out_dir).as_posix() for p in placed)
            result.notes.append(f"removed {names}: moved into place as the batch stopped, "
                                "before the input's other outputs; the next run redoes it")


def _identity(path: Path) -> tuple | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _record(plan: Plan, event: Event, tried: _Try | None, datasets: Datasets) -> None:
    result = event.result
    if result.status == "interrupted" and tried is not None:
        tried.interrupted(result, plan.out_dir)
    removed = _remove_superseded(plan, result) if result.status == "done" else []
    row = plan.rows[result.rel]
    row.update(status=result.status, frames=result.frames, detections=result.detections,
               seconds=round(result.seconds, 3), error=result.error, notes=result.notes,
               worker=result.worker, removed=removed, dataset=result.dataset,
               outputs=[o["path"] for o in result.outputs.values()])
    if result.status == "done":
        datasets.done(result)  # data.yaml before the manifest counts the input as done
        plan.manifest.remove_kept(result.rel)
        plan.manifest.add(result, plan.key)
    else:
        datasets.drop(result.rel)
        plan.manifest.keep(result)


def _remove_superseded(plan: Plan, result) -> list[str]:
    """Remove what an earlier run wrote for this input that this one does not (its .csv
    beside a new .jsonl would contradict it); a file changed since is kept, with a note.
    Returns the paths removed, relative to the output folder."""
    removed, changed = plan.manifest.superseded(result.rel, result.outputs)
    for rel in removed:
        (plan.out_dir / rel).unlink(missing_ok=True)
    if changed:
        result.notes.append(f"kept {', '.join(changed)}: written by an earlier run with other "
                            "settings, and changed since; remove it if it is no longer wanted")
    return removed


def _outcome(plan: Plan, seconds: float) -> Outcome:
    """Every input's row and the totals: counts per status, and frames and detections over
    every row (those skipped as done before included, so that they agree with the rows);
    ``this_run`` is the work this run did itself (its inputs done, failed or interrupted)
    and its wall time."""
    rows = list(plan.rows.values())
    summary = {s: sum(r["status"] == s for r in rows) for s in STATUSES}
    ran = [r for r in rows if r["status"] in ("done", "failed", "interrupted")]
    frames = sum(r["frames"] for r in ran)
    summary.update(inputs=len(rows), frames=sum(r["frames"] for r in rows),
                   detections=sum(r["detections"] for r in rows),
                   with_notes=sum(bool(r["notes"]) for r in ran),
                   removed=sum(len(r["removed"]) for r in rows),
                   this_run={"inputs": len(ran), "frames": frames,
                             "detections": sum(r["detections"] for r in ran),
                             "seconds": round(seconds, 3),
                             "fps": round(frames / seconds, 2) if seconds > 0 else 0.0},
                   out=os.fspath(plan.out_dir))
    return Outcome(rows, summary)


def _row(job: Job, status: str) -> dict:
    return {"input": job.source, "rel": job.rel, "kind": job.kind, "status": status,
            "frames": 0, "detections": 0, "seconds": 0.0, "error": "", "notes": [],
            "worker": "", "outputs": [], "removed": [], "dataset": {}}
