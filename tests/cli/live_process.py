"""``drivevision live`` run as a process, as a user runs it, and its output lines read
as they come."""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time


class Lines:
    """Collects a pipe's lines on a thread; ``wait_for`` polls them."""

    def __init__(self, pipe):
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(pipe,), daemon=True)
        self._thread.start()

    def _read(self, pipe) -> None:
        for line in pipe:
            self.lines.append(line.rstrip())

    def wait_for(self, pattern: str, timeout: float) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := re.search(pattern, line):
                    return match
            time.sleep(0.1)
        raise AssertionError(f"no line matching {pattern!r} in {timeout} s: {self.lines[-5:]}")


def start_live(port: int, checkpoint: str, *options: str):
    """``drivevision live`` on the test stream at ``port`` with the tiny model, as a user runs
    it; returns the process and its stderr and stdout lines."""
    cmd = [sys.executable, "-m", "drivevision", "live", f"http://127.0.0.1:{port}/stream",
           "--weights", checkpoint, "--model", "tiny-fpn", "--min-size", "96",
           "--max-size", "128", "--stall-timeout", "2", "--duration", "60", *options]
    run = subprocess.Popen(cmd, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    return run, Lines(run.stderr), Lines(run.stdout)


def kill(*processes) -> None:
    for process in processes:
        process.kill()
        process.wait()
