"""doit's task state, made to survive faults: saved as each task finishes, a lock on the build directory, stray
temporary files removed, a corrupt state database rebuilt, and targets checked against their recorded sha256.

- **State per task**: doit's backends (json, dbm, sqlite3) keep every task's state in memory and write it once, when
  the run ends, so a kill -9 loses it and the next run redoes everything (training included). dodo.py uses the
  sqlite3 backend and `committing_reporter` writes each finished task's state in its own transaction.
- **Lock**: `lock_build` takes an exclusive flock on build/<name>/.lock for the whole command; a second command on
  the same directory is refused at once, naming the holder (pid, host, start time, command). The kernel drops the
  lock when its holder dies, so a lock left by a killed run is taken over (with a note).
- **Stray temporary files**: an atomic write (mcuforge/core/io.py) killed between its temporary file and the rename
  leaves `.<name>.<random>.tmp`; with the lock held nobody else is writing, so `remove_stray_temporaries` deletes them.
- **Corrupt state**: `check_state_db` moves a `.doit.db` that is not a readable sqlite database aside (noted), so
  doit starts a new one and reruns the tasks instead of printing a traceback on every command.
- **Targets by hash**: doit reruns a task when a file_dep changes, never when its own target was edited or
  truncated. `targets_unchanged` (an `uptodate` entry) records the sha256 of the task's targets after each run and
  reruns the task when one differs.
"""
from __future__ import annotations

import errno
import fcntl
import functools
import json
import os
import re
import socket
import sqlite3
import sys
import time
from pathlib import Path

from mcuforge.core.io import sha256_file

LOCK_NAME = ".lock"
EXIT_BUILD_LOCKED = 75  # EX_TEMPFAIL (sysexits.h): another command is using the build directory; try again later
READ_ONLY_COMMANDS = {"list", "info", "help", "dumpdb", "tabcompletion"}  # commands that never write the build
_TEMPORARY = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")  # tempfile.mkstemp(prefix=".<name>.", suffix=".tmp")
_HASH_KEY = "_target_sha256"
_held: list = []  # the open lock file, kept for the life of the process (closing it would release the lock)


def doit_command(argv: list[str]) -> str:
    """The doit command of a command line (`doit`, `doit run ...`, `doit list`, `doit <task>` -> run)."""
    for arg in argv[1:]:
        if arg.startswith("-") or "=" in arg or arg.endswith("dodo.py"):
            continue
        return arg if arg in READ_ONLY_COMMANDS | {"run", "clean", "forget", "ignore", "reset-dep", "strace",
                                                   "auto"} else "run"
    return "run"


def _holder(text: str) -> str:
    try:
        info = json.loads(text)
        return (f"pid {info['pid']} on {info['host']}, started {info['started']}: {info['command']}")
    except (ValueError, KeyError, TypeError):
        return "a process that left no details"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_build(root: Path, argv: list[str]) -> bool:
    """Take the exclusive lock on `root` for this process (False for read-only commands, which take none).

    Another holder: print who holds it and exit with EXIT_BUILD_LOCKED. A lock file left by a process that is gone:
    take it over with a note on stderr."""
    if doit_command(argv) in READ_ONLY_COMMANDS:
        return False
    path = Path(root) / LOCK_NAME
    try:
        handle = open(path, "a+", encoding="utf-8")  # not inherited by children (PEP 446): they cannot keep it held
    except OSError as error:
        print(f"mcuforge: build={root}: cannot create its lock file {path.name}: {error.strerror}", file=sys.stderr)
        sys.exit(2)
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno not in (errno.EAGAIN, errno.EACCES):
            raise
        handle.seek(0)
        holder = _holder(handle.read())
        handle.close()
        print(f"mcuforge: build directory {root} is in use by {holder}\n"
              f"  wait for it to finish (or stop it); two commands on one build directory would interleave their "
              f"artifacts", file=sys.stderr)
        sys.exit(EXIT_BUILD_LOCKED)
    handle.seek(0)
    previous = handle.read()
    if previous.strip():
        try:
            old = json.loads(previous)
            gone = old.get("host") != socket.gethostname() or not _alive(int(old["pid"]))
        except (ValueError, KeyError, TypeError):
            gone = True
        state = "no longer running" if gone else "no longer holding it"
        print(f"mcuforge: note: took over the lock of {root} left by {_holder(previous)} ({state})", file=sys.stderr)
    handle.seek(0)
    handle.truncate()
    handle.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%d %H:%M:%S %z"), "command": " ".join(argv)}))
    handle.flush()
    _held.append(handle)
    return True


def release_build(root: Path) -> None:
    """Empty the lock file and release the lock (at the end of the command; a killed run leaves the details, which
    the next run reports as taken over)."""
    while _held:
        handle = _held.pop()
        handle.seek(0)
        handle.truncate()
        handle.flush()
        fcntl.flock(handle, fcntl.LOCK_UN)
        handle.close()


def remove_stray_temporaries(root: Path) -> list[Path]:
    """Delete the `.<name>.<random>.tmp` files that an interrupted atomic write left under `root` (call with the
    lock held). Returns what was removed."""
    removed = []
    for dirpath, _dirnames, filenames in os.walk(root):
        for name in filenames:
            if _TEMPORARY.match(name):
                path = Path(dirpath) / name
                path.unlink(missing_ok=True)
                removed.append(path)
    if removed:
        print(f"mcuforge: note: removed {len(removed)} temporary file(s) left by an interrupted run: "
              + ", ".join(str(p.relative_to(root)) for p in removed[:5]), file=sys.stderr)
    return removed


def check_state_db(path: Path) -> bool:
    """True if `path` is absent or a readable sqlite database with doit's table; otherwise move it aside to
    `<path>.corrupt` with a note (doit then starts a fresh database and reruns the tasks) and return False."""
    path = Path(path)
    if not path.exists():
        return True
    problem = None
    try:
        with path.open("rb") as handle:
            header = handle.read(16)
        if header != b"SQLite format 3\x00":
            problem = "not an sqlite database (an older JSON state file, or damaged)"
        else:
            connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                result = connection.execute("pragma quick_check").fetchone()
                connection.execute("select task_id, task_data from doit limit 1").fetchall()
                if result is None or result[0] != "ok":
                    problem = f"damaged ({result[0] if result else 'no answer'})"
            finally:
                connection.close()
    except sqlite3.OperationalError as error:
        if "locked" in str(error):  # a running command is writing it: it is a database
            return True
        problem = f"unreadable ({error})"
    except sqlite3.Error as error:
        problem = f"unreadable ({error})"
    except OSError as error:
        problem = f"unreadable ({error.strerror})"
    if problem is None:
        return True
    aside = path.with_name(path.name + ".corrupt")
    os.replace(path, aside)
    for suffix in ("-journal", "-wal", "-shm"):
        path.with_name(path.name + suffix).unlink(missing_ok=True)
    print(f"mcuforge: note: doit's state {path} was {problem}; moved to {aside.name}, a new one is built "
          f"(the tasks rerun)", file=sys.stderr)
    return False


def commit_state(dep_manager) -> None:
    """Write the state of the tasks that finished since the last call to doit's sqlite3 database, in one
    transaction (doit itself writes it only when the run ends)."""
    backend = getattr(dep_manager, "backend", None)
    connection = getattr(backend, "_conn", None)
    if connection is None or getattr(dep_manager, "_closed", False):
        return
    for task_id in list(backend._dirty):
        connection.execute("insert or replace into doit values (?,?)",
                           (task_id, backend.codec.encode(backend._cache[task_id])))
    connection.commit()
    backend._dirty.clear()


def committing_reporter(base):
    """A subclass of the reporter class `base` that commits doit's state after each successful task."""
    from doit.globals import Globals

    class CommittingReporter(base):
        def add_success(self, task):
            commit_state(Globals.dep_manager)  # doit saved the task's state just before calling add_success
            super().add_success(task)

    return CommittingReporter


def targets_unchanged(task, values) -> bool:
    """doit `uptodate` entry: False (rerun) unless every target exists with the sha256 recorded after the task's
    last successful run. Records the targets' hashes after each run."""
    def record():
        return {_HASH_KEY: {str(t): sha256_file(t) for t in task.targets if Path(t).is_file()}}

    task.value_savers.append(record)
    recorded = values.get(_HASH_KEY)
    if not isinstance(recorded, dict):
        return False
    for target in task.targets:
        path = Path(target)
        if not path.is_file() or recorded.get(str(target)) != sha256_file(path):
            return False
    return True


def checking_targets(creator):
    """Wrap a doit task creator: a task with targets gets `targets_unchanged` first in its `uptodate` (a task that
    always runs, uptodate [False], is left alone)."""
    @functools.wraps(creator)  # doit reads the name, the docstring and the line (through __wrapped__)
    def create():
        task = creator()
        uptodate = list(task.get("uptodate", []))
        if task.get("targets") and not any(entry is False for entry in uptodate):
            task["uptodate"] = [targets_unchanged, *uptodate]
        return task

    return create
