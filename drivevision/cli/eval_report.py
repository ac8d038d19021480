"""The ``eval --report`` folder: a recorded folder output (``io.recorded``), as ``detect``'s
image and dataset folders are. A hidden ``RECORD`` lists every report file a run wrote; a
later run replaces exactly those (an earlier run's curve of a class this run does not have is
removed), a folder holding a report file no run recorded (a user's own ``summary.md`` under
``--report .``) is refused before the model loads, and the folder is claimed for the run, so
a second run into it at once is refused. Other files in the folder are never touched."""

from __future__ import annotations

import argparse
import contextlib
import re
from pathlib import Path

from drivevision.config import ENGINES, PRECISIONS
from drivevision.io.claims import check_not_input, claim_folder
from drivevision.io.recorded import Layout, RecordedTree, check_folder_output

RECORD = ".drivevision-report.txt"
# what write_report makes: the summary, the metrics, a curve per class, the confusion matrix
REPORT_FILE = re.compile(r"summary\.md|metrics\.json|confusion-matrix\.png|pr-[a-z0-9-]+\.png")
# eval INPUT writes one report per engine and precision into a subfolder named for them
RUN_FOLDERS = frozenset(f"{e}-{p}" for e in ENGINES for p in PRECISIONS)


def _report_files(folder: Path) -> list[str]:
    """The report files of ``folder``: top-level ones and those of its engine-precision
    subfolders (``torch-fp32/summary.md``), by ``REPORT_FILE`` name."""
    found = [p.name for p in folder.iterdir() if REPORT_FILE.fullmatch(p.name) and p.is_file()]
    for sub in folder.iterdir():
        if sub.name in RUN_FOLDERS and sub.is_dir():
            found += [f"{sub.name}/{p.name}" for p in sub.iterdir()
                      if REPORT_FILE.fullmatch(p.name) and p.is_file()]
    return found


REPORT_FOLDER = Layout(RECORD, "report file", _report_files)


def check_report(args: argparse.Namespace) -> contextlib.ExitStack:
    """Refuse, before any work, a ``--report`` that cannot be made (a file, a missing
    parent), is the INPUT folder, that another run writes into, or that holds report files
    no run wrote; returns the run's claim on it (empty without ``--report``)."""
    claims = contextlib.ExitStack()
    if args.report is None:
        return claims
    check_folder_output("--report", args.report)
    if args.input is not None:
        check_not_input([args.input], [args.report])
    with claims:
        claims.enter_context(claim_folder(args.report))  # before its files: may be in writing
        check_folder_output("--report", args.report, REPORT_FOLDER)
        return claims.pop_all()


@contextlib.contextmanager
def report_tree(folder: str):
    """The ``--report`` folder open for writing (``RecordedTree.put_with``): the earlier
    run's files this one did not write again are removed when it closes."""
    tree = RecordedTree(folder, "--report", REPORT_FOLDER)
    try:
        yield tree
    finally:
        tree.close()
