"""``drivevision batch``'s progress where stderr is no terminal (a log file): one line per
input, each with the time left at the pace so far."""

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
