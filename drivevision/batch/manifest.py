"""The batch's record in its output folder: what is done (the manifest, for resuming) and
what this run did (the report).

``batch-manifest.jsonl`` gets one JSON line per input completed, appended and fsynced as it
completes, so a batch killed at any moment keeps every input finished before; a torn last
line is ignored, and a later line for an input wins over an earlier one. An input counts as
done on a rerun when its size, mtime and the settings are those recorded and its outputs
are still the files recorded (bytes and mtime, or else their sha256).
A try at an input that did not finish but kept what it wrote as ``.partial`` files gets a line
``{"rel": ..., "kept": [files]}``: the batch removes those files (still as recorded) once the
input is done, and no other file of such a name (a user's, another input's output).
``batch.json`` and ``batch.csv`` list every input of the last run; each (and the manifest
when rewritten) is written whole under the run's hidden part name (``claims.part_name``,
held while written as every part file is) and moved into place: a batch killed meanwhile
leaves a part file that the next run removes (``drivevision.io.leftovers`` names it).
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import asdict
from pathlib import Path
from typing import TextIO

from drivevision.batch.work import JobResult, input_stat
from drivevision.hashing import file_sha256
from drivevision.io.claims import hold_part, part_name

MANIFEST = "batch-manifest.jsonl"
REPORT_JSON = "batch.json"
REPORT_CSV = "batch.csv"
CSV_FIELDS = ("input", "status", "frames", "detections", "seconds", "error", "outputs")


class Manifest:
    """The inputs done in ``out_dir``: rel -> the record of its completion."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / MANIFEST
        self.out_dir = out_dir
        self.records: dict[str, dict] = {}
        self.kept: dict[str, list[dict]] = {}  # rel -> .partial files its tries kept
        self._lines = 0  # lines in the file: more than records means old ones to drop
        self._file = None

    def load(self) -> Manifest:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            return self
        self._lines = len(lines)
        for line in lines:
            try:
                record = json.loads(line)
                if "settings" in record:
                    self.records[record["rel"]] = record
                    self.kept.pop(record["rel"], None)  # removed as it was done
                else:
                    self.kept.setdefault(record["rel"], []).extend(record["kept"])
            except (ValueError, KeyError, TypeError, AttributeError):
                continue  # a line cut short by a crash, or not ours
        return self

    def done(self, job, settings_key: dict) -> dict | None:
        """The record that makes ``job`` (a ``Job``) done with these settings, or None."""
        record = self.records.get(job.rel)
        if record is None or record.get("source") != job.source \
                or record.get("settings") != settings_key:
            return None
        try:
            if list(input_stat(job)) != [record.get("size"), record.get("mtime_ns")]:
                return None
        except OSError:
            return None
        outputs = record.get("outputs", {})
        if not outputs or not all(self._intact(o) for o in outputs.values()):
            return None
        return record

    def superseded(self, rel: str, outputs: dict[str, dict]) -> tuple[list[str], list[str]]:
        """The files an earlier run recorded for input ``rel`` that its new ``outputs`` (a
        ``JobResult``'s) do not name (a ``--csv`` or ``--video`` left off since), as paths
        relative to the output folder: (those still as recorded, the batch's own to remove;
        those changed since, someone else's now). Files gone are in neither."""
        earlier = self.records.get(rel, {}).get("outputs", {}).values()
        paths = {o["path"] for o in outputs.values()}
        left = [o for o in earlier if o.get("path") not in paths
                and (self.out_dir / o.get("path", "")).is_file()]
        ours = [o["path"] for o in left if self._intact(o)]
        return ours, [o["path"] for o in left if o["path"] not in ours]

    def _intact(self, output: dict) -> bool:
        path = self.out_dir / output.get("path", "")
        try:
            st = path.stat()
        except OSError:
            return False
        if st.st_size != output.get("size"):
            return False
        return st.st_mtime_ns == output.get("mtime_ns") or \
            file_sha256(path) == output.get("sha256")

    def add(self, result: JobResult, settings_key: dict) -> None:
        """Record a completed input, on disk before this returns."""
        record = {**asdict(result), "settings": settings_key}
        del record["kept"]
        self.records[result.rel] = record
        self.kept.pop(result.rel, None)
        self._append(record)

    def keep(self, result: JobResult) -> None:
        """Record the ``.partial`` files a try at an input that did not finish kept."""
        if result.kept:
            self.kept.setdefault(result.rel, []).extend(result.kept)
            self._append({"rel": result.rel, "kept": result.kept})

    def remove_kept(self, rel: str) -> None:
        """Remove the ``.partial`` files tries at input ``rel`` kept that are still as they
        were (a file changed since, or replaced, is no longer the batch's)."""
        for kept in self.kept.get(rel, ()):
            if self._intact(kept):
                (self.out_dir / kept["path"]).unlink(missing_ok=True)

    def _append(self, record: dict) -> None:
        if self._file is None:
            self._file = self.path.open("a", encoding="utf-8")
        self._file.write(json.dumps(record) + "\n")
        self._lines += 1
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        """Close the manifest; rewrite it with one line per input (its newest) where it has
        more."""
        if self._file is not None:
            self._file.close()
            self._file = None
        kept = [{"rel": rel, "kept": files} for rel, files in self.kept.items()]
        if self.records and self._lines != len(self.records) + len(kept):
            write_whole(self.path, "".join(json.dumps(r) + "\n"
                                           for r in [*self.records.values(), *kept]))


def write_reports(out_dir: Path, rows: Iterable[dict], summary: dict) -> None:
    """``batch.json`` ({"summary": ..., "inputs": rows}) and ``batch.csv`` (one row per
    input: CSV_FIELDS, outputs joined by "; ", as names hold spaces)."""
    rows = list(rows)
    write_whole(out_dir / REPORT_JSON,
                json.dumps({"summary": summary, "inputs": rows}, indent=1) + "\n")
    with _written(out_dir / REPORT_CSV, newline="") as f:
        writer = csv.DictWriter(f, CSV_FIELDS, extrasaction="ignore")
        writer.writeheader()
        for row in rows:
            writer.writerow({**row, "outputs": "; ".join(row.get("outputs", []))})


def write_whole(path: Path, text: str) -> None:
    """``text`` into ``path`` all at once (``_written``)."""
    with _written(path) as f:
        f.write(text)


@contextlib.contextmanager
def _written(path: Path, newline: str | None = None) -> Iterator[TextIO]:
    """A text file to write ``path`` through: this run's part file beside it, held while
    written (``hold_part``: a live run's is no leftover), fsynced and moved into place when
    the block ends; removed when the block or the write fails (a full disk)."""
    tmp = part_name(path)
    fd = hold_part(tmp)
    try:
        with open(fd, "w", encoding="utf-8", newline=newline, closefd=False) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
