"""A block of status rows rewritten in place on a terminal, whatever its width.

A row wider than the terminal wraps onto the next one, and a carriage return then goes back
only to the start of that last piece: each refresh would leave a copy of the status above
it. So every row is wrapped here, at spaces, to one column less than the terminal is wide,
and the next refresh moves the cursor up over all the rows the last one wrote.
"""

from __future__ import annotations

import os
import shutil
import textwrap

ERASE_LINE, ERASE_BELOW = "\x1b[K", "\x1b[J"  # ANSI: to the end of the row / of the screen


def columns(stream) -> int:
    """The width of the terminal ``stream`` writes to (``$COLUMNS``, else 80, when it cannot
    be asked)."""
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError):
        return shutil.get_terminal_size().columns


class Rewriter:
    """Writes blocks of rows to a terminal ``stream``, each over the one before."""

    def __init__(self, stream):
        self.stream = stream
        self._rows = 0  # how many rows the last block took on the screen

    def write(self, rows: list[str]) -> None:
        width = max(columns(self.stream) - 1, 20)
        pieces = [piece for row in rows
                  for piece in textwrap.wrap(row, width, subsequent_indent="  ") or [""]]
        up = f"\x1b[{self._rows - 1}A" if self._rows > 1 else ""
        self.stream.write("\r" + up + f"{ERASE_LINE}\n".join(pieces) + ERASE_BELOW)
        self.stream.flush()
        self._rows = len(pieces)
