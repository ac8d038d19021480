"""Progress bar for terminal runs (tqdm); silent when not a TTY or when quiet."""

from __future__ import annotations

import re
import sys
import time

from tqdm import tqdm

from drivevision.labels import counted


def failed_line(source: str, error: str) -> str:
    """``failed: SOURCE: REASON``, the source named once (see ``reason``)."""
    return f"failed: {source}: {reason(source, error)}"


def reason(source: str, error: str) -> str:
    """``error`` as said after ``SOURCE: ``: a SourceError names its input, so a leading
    ``SOURCE: `` is dropped and the source named further on becomes "it" (``Cannot open it as
    a video (...)``)."""
    text = error.removeprefix(f"{source}: ")
    return re.sub(rf"{re.escape(source)}(?=[\s:,;)]|$)", "it", text)


class Progress:
    """frames done/total, fps and ETA on stderr; ``status`` prints a line above the bar."""

    def __init__(self, total: int | None, *, quiet: bool = False):
        self.quiet = quiet
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar = tqdm(total=total, unit="frame", dynamic_ncols=True, disable=not self.enabled,
                         smoothing=0.1)

    def status(self, message: str) -> None:
        if not self.quiet:
            (self._bar.write if self.enabled else print)(message, file=sys.stderr)

    def update(self, result=None) -> None:
        self._bar.update(1)

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()


class BatchProgress:
    """A batch's progress on stderr: files done/total, frames/s and ETA on a bar (a TTY),
    else one line per finished input, with the ETA; failures and retries are lines above
    the bar. ``quiet`` keeps only the failures: an exit code 3 with nothing said would leave
    the user to dig through batch.json."""

    def __init__(self, total: int, *, quiet: bool = False):
        self.quiet, self.total, self.done = quiet, total, 0
        self.enabled = not quiet and sys.stderr.isatty()
        self._bar = tqdm(total=total, unit="file", dynamic_ncols=True, disable=not self.enabled,
                         smoothing=0.05)
        self._frames: dict[str, int] = {}  # frames reported so far, per input (rel)
        self._ready: set[str] = set()  # what workers said runs where, each said once
        self._start = time.monotonic()

    def status(self, message: str, *, always: bool = False) -> None:
        """``message`` on stderr, above the bar; under ``quiet`` only when ``always``."""
        if always or not self.quiet:
            (self._bar.write if self.enabled else print)(message, file=sys.stderr)

    def event(self, event) -> None:
        """Take a ``drivevision.batch.Event``."""
        if event.kind == "ready":  # each different one: nodes of a cluster differ
            if event.detail not in self._ready:
                self._ready.add(event.detail)
                self.status(f"worker: {event.detail}")
            return
        rel = event.job.rel
        if event.kind == "frames":
            self._frames[rel] = self._frames.get(rel, 0) + event.frames
        elif event.kind == "retry":
            self.status(f"retrying {event.job.source}: {reason(event.job.source, event.error)}")
        elif event.kind == "result":
            self._frames[rel] = event.result.frames  # its total, whatever was reported
        # frames reported redraw the bar (workers report every half second), so frames/s
        # moves while an input runs, and a finished input's bar shows its own frames
        self._bar.set_postfix_str(f"{self._fps():.1f} frames/s",
                                  refresh=event.kind == "frames")
        if event.kind == "result":
            self._finished(event.result)

    def _finished(self, result) -> None:
        self.done += 1
        self._bar.update(1)
        if result.status == "failed":  # numbered as the others where there is no bar
            count = "" if self.enabled else f"[{self.done}/{self.total}] "
            self.status(count + failed_line(result.source, result.error), always=True)
        elif not self.enabled:  # a log file: the ETA the bar would show, on each line
            self.status(f"[{self.done}/{self.total}] {result.status} {result.source} "
                        f"({counted(result.frames, 'frame')}, {result.seconds:.1f} s)"
                        f"{self._eta()}")

    def _eta(self) -> str:
        """``, ETA 05:12``: the inputs left at the pace so far; nothing after the last."""
        left = self.total - self.done
        if left <= 0 or self.done <= 0:
            return ""
        pace = (time.monotonic() - self._start) / self.done
        return f", ETA {tqdm.format_interval(pace * left)}"

    def _fps(self) -> float:
        elapsed = time.monotonic() - self._start
        return sum(self._frames.values()) / elapsed if elapsed > 0 else 0.0

    def __enter__(self) -> BatchProgress:
        return self

    def __exit__(self, *exc) -> None:
        self._bar.close()
