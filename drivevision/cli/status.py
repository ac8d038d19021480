"""``live``'s status line: one segment per source, rewritten once a second."""

from __future__ import annotations

import sys
import threading
import time

from drivevision.cli.terminal import Rewriter, columns


def snapshot(pipeline, i: int):
    """Source ``i``'s ``Snapshot``, with its reconnects and any outage going on now."""
    source = pipeline.sources[i]
    return pipeline.stats[i].snapshot(source.reconnects, source.lost_seconds, source.outage)


class StatusLine:
    """A thread that rewrites the status line once a second and stops the run after
    ``duration`` seconds; ends with the ``with`` block."""

    def __init__(self, pipeline, *, quiet: bool = False, duration: float | None = None,
                 stream=None):
        self.pipeline, self.quiet, self.duration = pipeline, quiet, duration
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._rows = Rewriter(self.stream)
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="drivevision-status",
                                        daemon=True)

    def line(self) -> str:
        return " | ".join(self.parts())

    def parts(self) -> list[str]:
        """One segment per source, ``[N]`` before each where there are several; a stage's
        ``status`` (a tracker whose buffer the gaps between detections outlast) after it."""
        chains = getattr(self.pipeline, "stages", None) or [[]] * len(self.pipeline.sources)
        parts = [" ".join([snapshot(self.pipeline, i).format(),
                           *filter(None, (getattr(s, "status", "") for s in chains[i]))])
                 for i in range(len(self.pipeline.sources))]
        return parts if len(parts) == 1 else [f"[{i}] {p}" for i, p in enumerate(parts)]

    def _loop(self) -> None:
        # wakes for the duration's end as well as for the line: --duration 2.5 ran 3 s, and
        # 40ms a whole second, when the end was only looked at with the line
        now = time.monotonic()
        end = None if self.duration is None else now + self.duration
        show_at = now + 1.0
        while not self._done.wait(max((show_at if end is None else min(show_at, end)) - now, 0)):
            now = time.monotonic()
            if end is not None and now >= end:
                self.pipeline.stop()
                end = None
            if now >= show_at:
                if not self.quiet:
                    self.show()
                now = time.monotonic()
                show_at = now + 1.0

    def show(self) -> None:
        """Write the line: over the last one on a terminal (a row per source where one line
        is wider than the terminal, rows wrapped to its width), else as a line of its own (a
        log file or pipe)."""
        if self.tty:
            parts = self.parts()
            line = " | ".join(parts)
            self._rows.write([line] if len(line) < columns(self.stream) else parts)
        else:
            self.stream.write(f"{self.line()}\n")
            self.stream.flush()

    def __enter__(self) -> StatusLine:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()
        self._thread.join(5.0)
        if self.tty and not self.quiet:
            self.stream.write("\n")
