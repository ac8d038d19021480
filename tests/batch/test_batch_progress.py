"""``drivevision batch``'s progress where stderr is no terminal (a log file): one line per
input, each with the time left at the pace so far; on a terminal, the bar."""

import io

from drivevision.batch import Event, Job, JobResult
from drivevision.cli import progress


def test_each_line_of_a_log_says_how_long_the_rest_will_take(capsys, monkeypatch):
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    with progress.BatchProgress(4) as shown:
        for i, seconds in enumerate((30.0, 90.0, 60.0, 60.0)):  # 1 min each, on average
            now[0] += seconds
            job = Job(f"/footage/FILE000{i}.MP4", f"FILE000{i}", "video")
            result = JobResult(job.rel, job.source, "done", frames=40, seconds=seconds)
            shown.event(Event("result", job, result=result))
    assert capsys.readouterr().err.splitlines() == [  # was: no ETA where there is no bar
        "[1/4] done /footage/FILE0000.MP4 (40 frames, 30.0 s), ETA 01:30",
        "[2/4] done /footage/FILE0001.MP4 (40 frames, 90.0 s), ETA 02:00",
        "[3/4] done /footage/FILE0002.MP4 (40 frames, 60.0 s), ETA 01:00",
        "[4/4] done /footage/FILE0003.MP4 (40 frames, 60.0 s)"]


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_bar_shows_frames_per_second_while_the_first_input_runs(monkeypatch):
    """Frames reported redraw the bar; before, it was drawn only as inputs finished, so
    frames/s stayed away while the first ran (and then showed 0.0 beside its result)."""
    now = [100.0]
    monkeypatch.setattr(progress.time, "monotonic", lambda: now[0])
    terminal = _Terminal()
    monkeypatch.setattr(progress.sys, "stderr", terminal)
    job = Job("/footage/FILE0000.MP4", "FILE0000", "video")
    with progress.BatchProgress(2) as shown:
        shown.event(Event("started", job))
        now[0] += 10.0
        shown.event(Event("frames", job, frames=40))
        assert "4.0 frames/s" in terminal.getvalue()  # 40 frames in 10 s, 0 of 2 files
