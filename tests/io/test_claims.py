"""A claim's lock file as others may leave it: a folder or a link in its place, one a killed
run of another user left (not writable here), one in a folder where no file can be made.
Each is refused in one line naming the lock file, or replaced when no run holds it; nothing
else is touched."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from drivevision.errors import SinkError
from drivevision.io.claims import Claim, lock_name

ROOT = Path(__file__).parents[2]
# a process of this user without the power to pass over file modes (root's
# CAP_DAC_OVERRIDE): for it, as for any other user, a file of mode 0444 is read-only
SETPRIV = shutil.which("setpriv")
needs_modes = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None,
    reason="needs root and setpriv to run a process that file modes bind")


def _claim_elsewhere(target: Path, *, modes: bool = False) -> subprocess.CompletedProcess:
    """Claim ``target`` in another process (one bound by file modes, with ``modes``); its
    stdout says ``claimed`` and the lock file's text, or its stderr the refusal."""
    code = ("import sys; from pathlib import Path; from drivevision.io.claims import Claim\n"
            "from drivevision.errors import SinkError\n"
            "try:\n    c = Claim(Path(sys.argv[1]))\n"
            "except SinkError as e:\n    sys.exit(str(e))\n"
            "print('claimed', c.lock.read_text().strip() == str(__import__('os').getpid()))")
    command = [sys.executable, "-c", code, str(target)]
    if modes:
        command = [SETPRIV, "--bounding-set=-dac_override,-dac_read_search", *command]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, capture_output=True, text=True, timeout=60, env=env)


def test_a_folder_in_the_lock_files_place_is_named_and_left_alone(tmp_path):
    target = tmp_path / "out.jsonl"
    lock = lock_name(target)
    (lock / "inside").mkdir(parents=True)
    with pytest.raises(SinkError) as refused:
        Claim(target)
    assert str(refused.value) == (f"Cannot write {target}: its lock file {lock} is a folder, "
                                  "which no run makes: move it away")
    assert (lock / "inside").is_dir()


def test_a_link_in_the_lock_files_place_is_refused_and_what_it_points_to_kept(tmp_path):
    target = tmp_path / "out.jsonl"
    mine = tmp_path / "notes.txt"
    mine.write_text("a user's notes\n")
    lock = lock_name(target)
    lock.symlink_to(mine)
    with pytest.raises(SinkError) as refused:
        Claim(target)
    assert str(refused.value) == (f"Cannot write {target}: its lock file {lock} is a link, "
                                  "which no run makes: move it away")
    assert mine.read_text() == "a user's notes\n"  # before: emptied, then a pid written in


@needs_modes
def test_a_read_only_lock_file_a_killed_run_left_is_replaced_and_a_held_one_named(tmp_path):
    """Another user's run made the lock file (read-only to this one) and was killed: the
    lock is no one's, so the claim takes its place (before: 'Cannot write out.jsonl:
    Permission denied', about a file that is writable). While that run lives it is
    refused with its pid."""
    target = tmp_path / "out.jsonl"
    lock = lock_name(target)
    lock.write_text("999999\n")
    lock.chmod(0o444)
    claimed = _claim_elsewhere(target, modes=True)
    assert claimed.stdout == "claimed True\n", claimed.stderr
    lock.write_text("999999\n")
    lock.chmod(0o444)
    with subprocess.Popen(  # its pipe closed on leaving
            [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
             "os.O_RDONLY); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
             "time.sleep(60)", str(lock)], stdout=subprocess.PIPE, text=True) as holder:
        try:
            assert holder.stdout.readline() == "held\n"
            refused = _claim_elsewhere(target, modes=True)
        finally:
            holder.kill()
    assert refused.stderr == (f"{target} is being written by another run (pid 999999); wait "
                              "for it to end or choose another name\n")


@needs_modes
def test_a_lock_file_that_cannot_be_opened_or_made_is_named(tmp_path):
    target = tmp_path / "out.jsonl"
    lock = lock_name(target)
    lock.write_text("")
    lock.chmod(0o000)
    refused = _claim_elsewhere(target, modes=True)  # before: 'Cannot write ...: Permission denied'
    assert refused.stderr == (f"Cannot write {target}: its lock file {lock} cannot be opened "
                              f"(Permission denied): remove it if no run is writing "
                              f"{target}\n")
    lock.unlink()
    tmp_path.chmod(0o555)
    try:
        refused = _claim_elsewhere(target, modes=True)
    finally:
        tmp_path.chmod(0o755)
    assert refused.stderr == (f"Cannot write {target}: no file can be made in {tmp_path} "
                              "(Permission denied)\n")
    assert sorted(tmp_path.iterdir()) == []


def test_one_output_named_two_ways_is_one_claim_of_this_process(tmp_path):
    """detect --jsonl ../x.jsonl, run from a subfolder, claims x.jsonl as the command and
    again as its sink, in two spellings: both are this run's (it refused itself, naming
    its own pid), as are a linked folder's; the lock goes with the last release."""
    (tmp_path / "sub").mkdir()
    (tmp_path / "link").symlink_to(tmp_path)
    plain = Claim(tmp_path / "x.jsonl")
    up = Claim(tmp_path / "sub" / ".." / "x.jsonl")
    linked = Claim(tmp_path / "link" / "x.jsonl")
    lock = lock_name(tmp_path / "x.jsonl")
    assert up.lock == linked.lock == plain.lock == lock
    for claim in (plain, up):
        claim.release()
        assert lock.exists()
    linked.release()
    assert not lock.exists()
