"""``drivevision cache`` as a user runs it: what the engine cache holds (size, last use, what
no run can use any more), and clearing chosen entries without touching one being built."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time

import pytest
import torch

from drivevision.cli import main
from drivevision.cli.exits import EXIT_USAGE
from drivevision.engines import cache

DAY = 86400


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("DRIVEVISION_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def entry(root, kind: str, name: str, size: int, age_days: float = 0.0, about=None,
          **fields):
    """A cached entry as the engines store them: its file and its record."""
    fields = {"piece": "dense_a", "model": "r50-fpn", "weights_id": "coco",
              "torch": torch.__version__, **fields}
    path = cache.entry_path(root / kind, name, fields, "pt2")
    cache.store(path, fields, b"x" * size, about=about)
    then = time.time() - age_days * DAY
    os.utime(path.with_suffix(".json"), (then, then))
    return path


def run(capsys, *args) -> tuple[int, str, str]:
    code = main(["cache", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_the_list_shows_each_entry_with_its_size_input_and_last_use(root, capsys):
    entry(root, "compiled", "r50-fpn-dense_a", 3_000_000, 2, precision="bf16",
          shape=["1", "3", "800", "1344", "strides", "1", "1", "1", "1"])
    entry(root, "compiled", "r50-fpn-dense_b", 1_500_000, 0, precision="bf16",
          shape=["any", "256", "7", "7"])
    entry(root, "int8", "r50-fpn-dense_a-calib", 31_000, 40, calibration="5c667c3021ce5eff",
          resize=[800, 1344])
    code, out, _ = run(capsys)
    assert code == 0
    assert f"Engine cache {root}: 3 entries, 4.5 MB" in out
    lines = out.splitlines()
    a = next(line for line in lines if "dense_a " in line and "compiled" in line)
    assert "bf16" in a and "1x3x800x1344" in a and "3.0 MB" in a and "2 days ago" in a
    b = next(line for line in lines if "dense_b" in line)
    assert "Nx256x7x7" in b and "1.5 MB" in b and "just now" in b
    calib = next(line for line in lines if "-calib" in line)
    assert "5c667c3021ce5eff" in calib and "31 KB" in calib and "40 days ago" in calib
    assert "stale" not in out


def test_the_precision_column_tells_int8_entries_apart(root, capsys):
    """Two compiled int8 packages differ only in what their float ops run in: the list says
    which is which, and int8 calibrations say int8."""
    int8 = {"calibration": "5c667c3021ce5eff"}
    entry(root, "compiled", "r50-fpn-dense_a", 1000, precision="int8", autocast="bf16",
          int8=int8)
    entry(root, "compiled", "r50-fpn-dense_a", 1000, precision="int8", autocast=None,
          int8=int8)
    entry(root, "int8", "r50-fpn-dense_a-pt2e-ranges", 1000, **int8)
    code, out, _ = run(capsys)
    header, *rows = out.splitlines()[1:5]
    column = header.index("precision")
    assert sorted(row[column:].split("  ")[0] for row in rows) == [
        "int8", "int8 (bf16 float ops)", "int8 (fp32 float ops)"]


def test_the_precision_column_tells_the_two_exporters_pieces_apart(root, capsys):
    """export --exporter legacy and a run's default exporter keep one ONNX piece (and one
    int8 calibration) each: the rows say which is which instead of looking the same."""
    for exporter in ("dynamo", "legacy"):
        entry(root, "onnx", "r50-fpn-dense_a-fp32", 1000, precision="fp32", exporter=exporter)
        entry(root, "int8", "r50-fpn-dense_a-calib", 1000, calibration="5c667c3021ce5eff",
              exporter=exporter)
    code, out, _ = run(capsys)
    header, *rows = out.splitlines()[1:6]
    column = header.index("precision")
    assert code == 0 and len(set(rows)) == 4
    assert sorted(row[column:].split("  ")[0] for row in rows) == [
        "fp32", "fp32 (legacy exporter)", "int8", "int8 (legacy exporter)"]


def test_the_list_starts_at_once_without_importing_torch(root):
    """Reading the cache needs no torch (seconds to import): the command answers at once."""
    entry(root, "compiled", "r50-fpn-dense_a", 1000, precision="bf16")
    code = ("import sys\nfrom drivevision.cli import main\ncode = main(['cache'])\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch')\n"
            "sys.exit(code)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env={**os.environ}, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "1 entry" in proc.stdout and "r50-fpn-dense_a" in proc.stdout
    assert proc.stdout.splitlines()[-1] == "no torch"


def test_a_run_that_uses_an_entry_makes_it_recent(root, capsys):
    path = entry(root, "onnx", "r50-fpn-dense_a-fp32", 1000, 40)
    fields = {k: v for k, v in cache.entries(root)[0].fields.items() if k != "format"}

    def build(target):
        raise AssertionError("a valid entry was built again")

    assert cache.get_or_build(path, fields, build, what="dense_a") == path
    code, out, _ = run(capsys, "--older-than", "30")
    assert code == 0 and "0 entries chosen" in out


def test_clear_older_than_removes_only_entries_unused_that_long(root, capsys):
    old = entry(root, "onnx", "r50-fpn-dense_a-fp32", 2_000_000, 45)
    new = entry(root, "onnx", "r50-fpn-dense_b-fp32", 1_000_000, 3)
    code, out, _ = run(capsys, "--older-than", "30")
    assert "1 entry chosen" in out and "r50-fpn-dense_a-fp32" in out and "dense_b" not in out
    assert old.exists()  # listing removes nothing
    code, out, _ = run(capsys, "--clear", "--older-than", "30")
    assert code == 0 and "Removed 1 entry, 2.0 MB freed" in out
    assert not old.exists() and not old.with_suffix(".json").exists()
    assert new.exists() and new.with_suffix(".json").exists()
    # the next run that needs it builds it again
    built = []
    fields = {"piece": "dense_a", "model": "r50-fpn", "weights_id": "coco",
              "torch": torch.__version__}
    cache.get_or_build(old, fields, lambda target: built.append(target.write_bytes(b"y")),
                       what="dense_a")
    assert built and old.read_bytes() == b"y"


def test_clear_stale_removes_what_this_install_cannot_use(root, capsys):
    current = entry(root, "compiled", "r50-fpn-dense_a", 1000, precision="bf16")
    other_torch = entry(root, "compiled", "r50-fpn-dense_b", 1000, precision="bf16",
                        torch="2.9.0+cpu")
    killed = root / "compiled" / f".{current.stem[:-16]}0123456789abcdef.pt2.4242.tmp"
    killed.write_bytes(b"half a package")
    code, out, _ = run(capsys, "--stale")
    assert "2 entries chosen" in out
    assert "stale: built with torch 2.9.0+cpu" in out and "stale: unfinished build" in out
    code, out, _ = run(capsys, "--clear", "--stale")
    assert code == 0 and "Removed 2 entries" in out
    assert current.exists() and not other_torch.exists() and not killed.exists()


def test_clear_keeps_an_entry_another_process_is_building(root, capsys):
    building = entry(root, "tensorrt", "r50-fpn-dense_a-fp16", 1000)
    idle = entry(root, "onnx", "r50-fpn-dense_a-fp32", 1000)
    lock = building.with_name(building.name + ".lock")
    with open(lock, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as a build in another process holds it
        idle.with_name(idle.name + ".lock").touch()
        code, out, _ = run(capsys, "--clear")
    assert code == 0 and "Removed 1 entry" in out
    assert f"Kept tensorrt/{building.stem}: another process is building it" in out
    assert building.exists() and not idle.exists()
    assert not idle.with_name(idle.name + ".lock").exists()  # gone with its entry
    assert lock.exists()  # the held one stays
    assert f"{root}: 1 entry, 1 KB" in run(capsys)[1]


def test_clear_by_kind(root, capsys):
    compiled = entry(root, "compiled", "r50-fpn-dense_a", 1000)
    onnx = entry(root, "onnx", "r50-fpn-dense_a-fp32", 1000)
    code, out, _ = run(capsys, "--clear", "--kind", "compiled")
    assert code == 0 and "Removed 1 entry" in out
    assert not compiled.exists() and onnx.exists()


def test_an_empty_or_missing_cache_is_said_so(root, capsys):
    assert run(capsys)[:2] == (0, f"Engine cache {root}: 0 entries, 0 KB\n")
    assert run(capsys, "--clear")[0] == 0


@pytest.mark.parametrize("under", ["", "cache"])
@pytest.mark.parametrize("command", [["cache"], ["cache", "--clear"]])
def test_a_cache_path_that_is_a_file_is_one_line_naming_the_variable(tmp_path, capsys,
                                                                     monkeypatch, command,
                                                                     under):
    """DRIVEVISION_CACHE set to a file, or to a folder to be made under a file (a typo, a
    path mixed up with another): said, in one line naming the variable and the file,
    instead of an empty cache (or, in a run, a bare errno)."""
    not_a_folder = tmp_path / "engines.tar"
    not_a_folder.write_bytes(b"an archive")
    monkeypatch.setenv("DRIVEVISION_CACHE", str(not_a_folder / under))
    code = main(command)
    out, err = capsys.readouterr()
    assert code == EXIT_USAGE and out == ""
    assert err.splitlines() == [f"drivevision: error: Expected DRIVEVISION_CACHE to be a "
                                f"folder (made if missing), but {not_a_folder} is not a folder"]
    assert not_a_folder.read_bytes() == b"an archive"


def test_a_negative_age_is_refused(root, capsys):
    code, _, err = run(capsys, "--clear", "--older-than", "-1")
    assert code == EXIT_USAGE and "--older-than DAYS >= 0" in err


def test_what_a_killed_build_left_is_listed_and_cleared(root, capsys):
    """A lock file and an export's staging folder that a killed process left (no entry
    file, no record): listed as an unfinished build with their size, and cleared."""
    done = entry(root, "onnx", "r50-fpn-dense_b-fp32", 1000)
    stem = f"r50-fpn-dense_a-fp32-{'0123456789abcdef'}"
    lock = root / "onnx" / f"{stem}.onnx.lock"
    lock.touch()
    staging = root / "onnx" / f".{stem}.onnx.4242.tmp.export"
    staging.mkdir()
    (staging / "dense_a.onnx").write_bytes(b"x" * 2_000_000)
    lone = root / "int8" / f"r50-fpn-dense_a-calib-{'fedcba9876543210'}.calib.lock"
    lone.parent.mkdir()
    lone.touch()
    code, out, _ = run(capsys, "--stale")
    assert code == 0 and "2 entries chosen, 2.0 MB" in out
    lines = [line for line in out.splitlines() if "stale: unfinished build" in line]
    assert len(lines) == 2 and any("2.0 MB" in line for line in lines)
    code, out, _ = run(capsys, "--clear", "--stale")
    assert code == 0 and "Removed 2 entries, 2.0 MB freed" in out
    assert not lock.exists() and not staging.exists() and not lone.exists()
    assert done.exists()


def test_a_build_running_now_is_told_from_one_a_killed_process_left(root, capsys):
    """Both are a lock file with nothing built beside it; only the running build holds its
    lock. It is listed as such, is not stale, and --clear keeps it."""
    stem = f"r50-fpn-dense_a-fp32-{'0123456789abcdef'}"
    running = root / "onnx" / f"{stem}.onnx.lock"
    killed = root / "onnx" / f"r50-fpn-dense_b-fp32-{'fedcba9876543210'}.onnx.lock"
    running.parent.mkdir(parents=True)
    killed.touch()
    with open(running, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as the build in another process holds it
        out = run(capsys)[1].splitlines()
        assert next(line for line in out if "dense_a" in line).endswith("being built now")
        assert next(line for line in out if "dense_b" in line).endswith("stale: unfinished build")
        code, out, _ = run(capsys, "--clear", "--stale")
        assert code == 0 and "Removed 1 entry" in out and "Kept" not in out
        code, out, _ = run(capsys, "--clear")
        assert f"Kept onnx/{stem}: another process is building it" in out
    assert running.exists() and not killed.exists()


def test_an_entry_built_now_has_no_lock_file_left(root):
    fields = {"piece": "dense_a"}
    path = cache.entry_path(root / "onnx", "r50-fpn-dense_a-fp32", fields, "onnx")
    cache.get_or_build(path, fields, lambda t: t.write_bytes(b"built"), what="dense_a")
    assert sorted(p.name for p in path.parent.iterdir()) == sorted(
        [path.name, path.with_suffix(".json").name])


def test_clear_touches_nothing_outside_the_engines_folders(root, capsys):
    """A cache folder that is also home to other files (DRIVEVISION_CACHE set to a home or
    project folder by mistake): names that look like entries are not the cache's."""
    built = entry(root, "onnx", "r50-fpn-dense_a-fp32", 1000)
    theirs = [root / "Documents" / "report-0123456789abcdef.pdf",
              root / "notes-0123456789abcdef.txt"]
    for path in theirs:
        path.parent.mkdir(exist_ok=True)
        path.write_text("someone's work")
    code, out, _ = run(capsys)
    assert code == 0 and "1 entry" in out and "report" not in out and "notes" not in out
    code, out, _ = run(capsys, "--clear")
    assert code == 0 and "Removed 1 entry" in out and not built.exists()
    assert all(path.read_text() == "someone's work" for path in theirs)


def test_the_calibration_column_names_the_footage(root, capsys):
    """Which clip a calibration ran on, not only its digest: from its own record, and for
    a compiled int8 package (whose record has the digest only) from the calibration's."""
    digest = "5c667c3021ce5eff"
    entry(root, "int8", "r50-fpn-dense_a-calib", 31_000, calibration=digest,
          about={"calibration": "my_drive.mp4"})
    entry(root, "compiled", "r50-fpn-dense_a", 3_000, precision="int8",
          int8={"calibration": digest}, autocast=None)
    entry(root, "int8", "r50-fpn-dense_b-calib", 2_000, calibration="0123456789abcdef")
    code, out, _ = run(capsys)
    lines = out.splitlines()
    assert code == 0
    assert "my_drive.mp4 (5c667c30)" in next(line for line in lines if "dense_a-calib" in line)
    assert "my_drive.mp4 (5c667c30)" in next(line for line in lines if "compiled" in line)
    assert "0123456789abcdef" in next(line for line in lines if "dense_b-calib" in line)


def test_the_list_says_what_each_kind_listed_is_for(root, capsys):
    entry(root, "int8", "r50-fpn-dense_a-calib", 31_000, calibration="5c667c3021ce5eff")
    entry(root, "onnx", "r50-fpn-dense_a-fp32", 1000)
    out = run(capsys)[1].splitlines()
    notes = [line for line in out if line.split("/:")[0] in ("compiled", "int8", "onnx",
                                                             "tensorrt")]
    assert [line.split("/:")[0] for line in notes] == ["int8", "onnx"]  # only kinds listed
    assert "-calib: onnx engine, export" in notes[0]
    assert "the pieces the onnx engine runs" in notes[1]
