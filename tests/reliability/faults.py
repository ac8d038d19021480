"""What both fault tables share: the run context, waiting, and the columns every row has."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

TINY = ("--model", "tiny-fpn", "--min-size", "96", "--max-size", "128")


@dataclass
class Ctx:
    tmp: Path
    clip: str
    weights: str
    stdout: str = ""
    stderr: str = ""

    def cmd(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "drivevision", *args, "--weights", self.weights, *TINY]

    def run(self, *args: str, **kwargs) -> int:
        done = subprocess.run(self.cmd(*args), capture_output=True, text=True, timeout=120,
                              **kwargs)
        self.stdout, self.stderr = done.stdout, done.stderr
        return done.returncode


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen in {timeout} s")
        time.sleep(0.05)


@dataclass
class Case:
    """A row: the case, what the test does (``action``), the exit code, a regex that must
    match stderr, and which files must exist or be absent afterwards."""

    name: str
    action: Callable[[Ctx], int]
    code: int
    message: str = ""  # a regex on stderr
    exist: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
