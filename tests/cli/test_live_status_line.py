"""``live``'s status line: whole lines in a file or pipe, rewritten in place on a
terminal of any width, and --duration ending the run on time."""

from __future__ import annotations

import io
import re
import time
import types

import pytest


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def _screen(text: str, width: int) -> list[str]:
    """The rows a terminal ``width`` columns wide shows after ``text`` (printable characters
    wrapping at the last column, CR, LF, and the ANSI cursor up / erase line / erase below)."""
    rows, r, c = [[]], 0, 0
    for token in re.findall(r"\x1b\[(\d*)([AKJ])|(.)", text, re.DOTALL):
        count, code, char = token
        if code == "A":
            r = max(0, r - int(count or 1))
        elif code in "KJ" and code:
            del rows[r][c:]
            if code == "J":
                del rows[r + 1:]
        elif char == "\r":
            c = 0
        elif char == "\n":
            r, c = r + 1, 0
        else:
            if c >= width:
                r, c = r + 1, 0
            while len(rows) <= r:
                rows.append([])
            rows[r][c:c + 1] = [char] if c < len(rows[r]) else [" "] * (c - len(rows[r])) + [char]
            c += 1
        while len(rows) <= r:
            rows.append([])
    return ["".join(row).rstrip() for row in rows]


def test_status_line_in_a_file_is_a_line_of_its_own_each_time():
    from drivevision.cli.status import StatusLine
    from drivevision.io.frames import Source
    from drivevision.pipeline.stats import SourceStats

    pipeline = types.SimpleNamespace(sources=[Source("cam")], stats=[SourceStats()])
    status = StatusLine(pipeline, stream=io.StringIO())
    status.show()
    status.show()
    line = status.line()  # a log file or pipe: whole lines, no trailing blanks
    assert status.stream.getvalue() == f"{line}\n{line}\n" and line == line.rstrip()


@pytest.mark.parametrize("duration", [0.04, 1.3])
def test_duration_stops_the_run_at_its_end_not_at_the_next_status_line(duration):
    # the end was looked at only with the line, once a second: --duration 40ms ran 1 s
    from drivevision.cli.status import StatusLine
    from drivevision.io.frames import Source
    from drivevision.pipeline.stats import SourceStats

    stopped, shown = [], []
    out = io.StringIO()
    pipeline = types.SimpleNamespace(sources=[Source("cam", live=True)], stats=[SourceStats()],
                                     stop=lambda: stopped.append(time.monotonic()) or shown.append(
                                         out.getvalue().count("\n")))
    start = time.monotonic()
    with StatusLine(pipeline, duration=duration, stream=out):
        deadline = start + duration + 0.6  # the next line was 1 s after the start, or 2 s
        while not stopped and time.monotonic() < deadline:
            time.sleep(0.01)
    assert stopped, f"not stopped {duration + 0.6} s after the start"
    assert stopped[0] - start >= duration and len(stopped) == 1
    assert shown == [int(duration)]  # the line still came once a second before it


@pytest.mark.parametrize("sources, width", [(1, 80), (3, 80), (3, 120), (2, 400)])
def test_status_line_is_rewritten_in_place_on_a_terminal_of_any_width(sources, width,
                                                                       monkeypatch):
    # an 80-column terminal wrapped a longer line, and each refresh left a copy above it
    from drivevision.cli.status import StatusLine
    from drivevision.pipeline.stats import SourceStats

    monkeypatch.setenv("COLUMNS", str(width))
    down = [types.SimpleNamespace(reconnects=2, lost_seconds=7.6,
                                  outage="LOST 6 s, reconnecting") for _ in range(sources)]
    pipeline = types.SimpleNamespace(sources=down, stats=[SourceStats() for _ in down])
    status = StatusLine(pipeline, stream=_Terminal())
    for refresh in range(4):
        for source in down[:1] if refresh == 3 else ():  # back: the line gets shorter
            source.reconnects, source.lost_seconds, source.outage = 3, 9.1, ""
        status.show()
    screen = [row for row in _screen(status.stream.getvalue(), width) if row]
    wide = len(status.line()) >= width  # then a row (or more) per source
    shown = " ".join(status.parts()) if wide else status.line()
    assert all(len(row) < width for row in screen)
    assert " ".join(" ".join(screen).split()) == " ".join(shown.split())  # the last, once
    if sources > 1:
        starts = [row.split()[0] for row in screen if row.startswith("[")]
        assert starts == ([f"[{i}]" for i in range(sources)] if wide else ["[0]"])
