"""Progress bar for terminal runs (tqdm); silent when not a TTY or when quiet."""

from __future__ import annotations

import sys

from tqdm import tqdm


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
