"""Faults survived: a lock on the build directory, doit's state saved per task and rebuilt when corrupt, targets
checked by hash, temporary files of a killed write removed, children that die with their parent, a full disk named,
and kill -9 in the middle of `doit run` followed by a rerun that finishes without redoing finished work.
(benchmarks/kill_bench.py kills at every stage and compares the hashes with an uninterrupted build.)"""
import errno
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import DOIT, ROOT, have_cross_tools, run_doit
from mcuforge.core import io
from tasks import doit_state

HOLD = """
import sys, time
from pathlib import Path
sys.path.insert(0, {root!r})
from tasks.doit_state import lock_build
lock_build(Path(sys.argv[1]), ["doit", "run", "pipeline=digits", "build=" + sys.argv[1]])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
"""


def hold_lock(build: Path, seconds: float) -> subprocess.Popen:
    holder = subprocess.Popen([sys.executable, "-c", HOLD.format(root=str(ROOT)), str(build), str(seconds)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "held"
    return holder


def test_a_second_command_on_the_build_directory_is_refused_naming_the_holder(tmp_path: Path):
    holder = hold_lock(tmp_path, 60)
    try:
        started = time.monotonic()
        result = run_doit("run", "pipeline=digits", f"build={tmp_path}")
        assert time.monotonic() - started < 30  # refused at once, not after waiting
        assert result.returncode == doit_state.EXIT_BUILD_LOCKED
        message = result.stderr
        assert f"build directory {tmp_path} is in use by pid {holder.pid} on " in message, message
        assert "started 20" in message and "doit run pipeline=digits" in message
        assert "Traceback" not in message and not (tmp_path / "config.resolved.json").exists()
        listing = run_doit("list", "pipeline=digits", f"build={tmp_path}")  # read-only commands still work
        assert listing.returncode == 0 and "train" in listing.stdout
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_holder_is_taken_over_with_a_note(tmp_path: Path):
    holder = hold_lock(tmp_path, 60)
    holder.send_signal(signal.SIGKILL)
    holder.wait()
    second = hold_lock(tmp_path, 0)  # the kernel released the flock with the dead process
    second.wait()
    note = second.stderr.read()
    assert f"took over the lock of {tmp_path} left by pid {holder.pid}" in note and "no longer running" in note


def test_the_doit_command_decides_whether_to_lock():
    assert doit_state.doit_command(["doit"]) == "run"
    assert doit_state.doit_command(["doit", "-f", "x/dodo.py", "pipeline=digits"]) == "run"
    assert doit_state.doit_command(["doit", "train", "pipeline=digits"]) == "run"
    assert doit_state.doit_command(["doit", "list", "pipeline=digits"]) == "list"
    assert doit_state.doit_command(["doit", "clean"]) == "clean"


def test_a_corrupt_state_database_is_moved_aside(tmp_path: Path, capsys):
    db = tmp_path / ".doit.db"
    db.write_bytes(b"SQLite format 3\x00" + os.urandom(4000))
    assert doit_state.check_state_db(db) is False
    assert not db.exists() and (tmp_path / ".doit.db.corrupt").is_file()
    assert "moved to .doit.db.corrupt" in capsys.readouterr().err
    db.write_text('{"train": {}}')  # the old JSON backend's file
    assert doit_state.check_state_db(db) is False
    assert "not an sqlite database" in capsys.readouterr().err
    connection = sqlite3.connect(db)
    connection.execute("create table doit (task_id text not null primary key, task_data json)")
    connection.commit()
    connection.close()
    assert doit_state.check_state_db(db) is True and db.exists()


def test_stray_temporary_files_are_removed(tmp_path: Path):
    (tmp_path / "schedule").mkdir()
    stray = tmp_path / "schedule" / ".memory.png.k2j_x9aZ.tmp"
    stray.write_bytes(b"half")
    kept = [tmp_path / "schedule" / "memory.png", tmp_path / ".lock", tmp_path / "notes.tmp"]
    for path in kept:
        path.write_bytes(b"x")
    assert doit_state.remove_stray_temporaries(tmp_path) == [stray]
    assert not stray.exists() and all(path.exists() for path in kept)


class _Task:
    def __init__(self, targets):
        self.targets = [str(t) for t in targets]
        self.value_savers = []


def test_targets_are_checked_against_their_recorded_hash(tmp_path: Path):
    target = tmp_path / "model.c"
    target.write_text("int x;\n")
    task = _Task([target])
    assert doit_state.targets_unchanged(task, {}) is False  # never recorded: run
    values = task.value_savers[0]()  # what doit saves after the run
    assert doit_state.targets_unchanged(_Task([target]), values) is True
    data = bytearray(target.read_bytes())
    data[0] ^= 1  # one flipped bit
    target.write_bytes(bytes(data))
    assert doit_state.targets_unchanged(_Task([target]), values) is False
    target.unlink()
    assert doit_state.targets_unchanged(_Task([target]), values) is False


def test_a_full_disk_is_named_not_a_traceback(tmp_path: Path, monkeypatch):
    def no_space(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", no_space)
    target = tmp_path / "data" / "x_train.npy"
    with pytest.raises(io.DiskFullError, match=r"no space left on the device writing .*x_train\.npy .*bytes free"):
        io.write_npy(target, np.zeros(3))
    assert list(target.parent.iterdir()) == []  # the temporary file is gone too
    def short_write(*args, **kwargs):  # numpy's tofile on a full disk: no errno
        raise OSError("368128 requested and 135040 written")

    monkeypatch.setattr(np, "save", short_write)
    monkeypatch.setattr(io, "free_bytes", lambda path: 0)
    with pytest.raises(io.DiskFullError, match="368128 requested"):
        io.write_npy(target, np.zeros(3))
    monkeypatch.setattr(io.tempfile, "mkstemp", no_space)
    with pytest.raises(io.DiskFullError, match="plan.json"):
        io.write_json(tmp_path / "plan.json", {})


def _kill_parent_alone(script: str, pid_file: Path) -> list[int]:
    """Runs `script` in a Python process until it writes the pids to watch into pid_file, kills that process alone
    (SIGKILL, not its group) and returns the pids, which must all be gone within 10 s."""
    parent = subprocess.Popen([sys.executable, "-c", "import sys; sys.path.insert(0, %r)\n" % str(ROOT) + script])
    deadline = time.monotonic() + 60
    while not (pid_file.is_file() and pid_file.read_text().strip()):
        assert time.monotonic() < deadline and parent.poll() is None
        time.sleep(0.05)
    pids = [int(pid) for pid in pid_file.read_text().split()]
    assert pids and all(map(_running, pids))
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _running(pid)]


def test_a_child_dies_with_the_process_that_started_it(tmp_path: Path):
    pid_file = tmp_path / "child.pid"
    script = ("from mcuforge.toolchain.process import run\n"
              "run(['sh', '-c', 'echo $$ > %s; exec sleep 60'], 120, 'sleep')\n") % pid_file
    assert _kill_parent_alone(script, pid_file) == []


def test_a_grandchild_dies_when_only_the_parent_is_killed(tmp_path: Path):
    """make's compilers, a shell's background job: children of the tool, not of us, outlive the tool's
    PR_SET_PDEATHSIG; the guardian's process group takes them down with a parent killed alone (kill -9 <pid>)."""
    pid_file = tmp_path / "grandchild.pid"
    script = ("from mcuforge.toolchain.process import run\n"
              "run(['sh', '-c', 'sleep 60 & echo $! > %s; wait'], 120, 'sleep')\n") % pid_file
    assert _kill_parent_alone(script, pid_file) == []


def test_search_workers_die_when_the_parent_is_killed(tmp_path: Path):
    """The search's process pool (mcuforge/ml/executor.py): a killed `doit run` left its two spawned workers
    training on (found in session 7: orphans of a killed fashion run)."""
    pid_file = tmp_path / "workers.pid"
    script = ("import os, time\n"
              "from mcuforge.ml.executor import make\n"
              "pool = make('local', 2, os.getpid, ())._pool\n"
              "futures = [pool.submit(time.sleep, 120) for _ in range(2)]\n"
              "while len(pool._processes) < 2: time.sleep(0.05)\n"
              "time.sleep(3)\n"  # the workers are up and sleeping
              "open(%r, 'w').write(' '.join(map(str, pool._processes)))\n"
              "time.sleep(120)\n") % str(pid_file)
    assert _kill_parent_alone(script, pid_file) == []


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _group(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[2]) == pgid and fields[0] != "Z":
                members.append(int(entry.name))
    return members


def _executed(output: str) -> set[str]:
    return set(re.findall(r"^\.  (\S+)", output, flags=re.M))


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_kill_during_the_build_then_rerun_keeps_training_and_repairs_edited_artifacts(tmp_path: Path):
    build = tmp_path / "digits"
    process = subprocess.Popen([*DOIT, "run", "pipeline=digits", f"build={build}"],
                               cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 600
    while not (build / "build_stm32f746").exists():  # CMake under way: the trained model is saved
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before the kill point"
        time.sleep(0.02)
    time.sleep(0.5)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(0.3)
    assert _group(process.pid) == []  # no CMake, make or compiler left running
    rerun = run_doit("run", "pipeline=digits", f"build={build}")
    assert rerun.returncode == 0, rerun.stdout[-2000:] + rerun.stderr[-2000:]
    ran = _executed(rerun.stdout)
    assert not ran & {"data", "search", "train", "quantize", "codegen"}, ran  # their state was saved as they ended
    assert {"verify", "manifest", "review"} <= ran
    assert not list(build.rglob(".*.tmp"))
    # a hand-edited artifact and a truncated one are rebuilt (their recorded hashes differ), not used
    model_c = build / "codegen" / "model.c"
    original = model_c.read_bytes()
    model_c.write_bytes(original.replace(b"mf_", b"mg_", 1))
    x_train = build / "data" / "x_train.npy"
    x_train.write_bytes(x_train.read_bytes()[:100])
    again = run_doit("run", "pipeline=digits", f"build={build}")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    ran = _executed(again.stdout)
    assert {"codegen", "data"} <= ran and not ran & {"train", "quantize", "build_host"}, ran
    assert model_c.read_bytes() == original
    check = run_doit("check_manifest", "pipeline=digits", f"build={build}")
    assert check.returncode == 0, check.stdout + check.stderr
    # a garbage state database: a note and a rebuild, never a traceback
    (build / ".doit.db").write_bytes(os.urandom(2048))
    rebuilt = run_doit("check_manifest", "pipeline=digits", f"build={build}")
    assert rebuilt.returncode == 0 and "Traceback" not in rebuilt.stderr, rebuilt.stderr[-2000:]
    assert "moved to .doit.db.corrupt" in rebuilt.stderr
    assert sqlite3.connect(build / ".doit.db").execute("select count(*) from doit").fetchone()[0] >= 1
