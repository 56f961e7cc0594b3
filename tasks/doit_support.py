"""Glue between doit and the stage functions: one-line failures, distinct exit codes, the config task's action.

A McuforgeError raised inside a task becomes `StageFailed` (a doit TaskFailed carrying the error's exit code);
`Reporter` prints it as `mcuforge: <task>: <message>` on stderr, without doit's `TaskFailed - taskid` frame, and
ends the process with the error's exit code (mcuforge/core/errors.py; the table is in the README). Any other
exception is a bug: doit's traceback is shown and the exit code is EXIT_INTERNAL (70).
"""
from __future__ import annotations

import importlib
import sys

from doit.exceptions import TaskError, TaskFailed
from doit.reporter import ConsoleReporter

from mcuforge.core.errors import EXIT_INTERNAL, McuforgeError
from mcuforge.core.io import write_json
from mcuforge.ml.allocator import keep_freed_memory  # noqa: F401  (dodo.py calls it before torch starts)


class StageFailed(TaskFailed):
    """A task stopped by a McuforgeError: the message for a person and the exit code of its kind."""

    def __init__(self, error: McuforgeError):
        super().__init__(str(error))
        self.exit_code = error.exit_code


def action(target: str, *args):
    """A doit python-action calling `module:function` (imported only when the task runs, so `doit list` and config
    errors stay fast) with `args`; a ConfigError/McuforgeError becomes a StageFailed (one message, no traceback)."""
    module_name, _, function_name = target.partition(":")

    def run():
        function = getattr(importlib.import_module(module_name), function_name)
        try:
            result = function(*args)
        except McuforgeError as exc:
            return StageFailed(exc)
        return result if isinstance(result, dict) else None

    return (run, [], {})


def one_line(task_name: str, message: str) -> str:
    """`mcuforge: <task>: <message>` (a message that already starts with the task's name keeps it once)."""
    stage = task_name.split(":")[0]
    for prefix in (f"{stage}: ", f"{stage.split('_')[0]}: "):
        if message.startswith(prefix):
            message = message[len(prefix):]
            break
    return f"mcuforge: {stage}: {message}"


class Reporter(ConsoleReporter):
    """doit's console reporter, except for failures: ours in one message on stderr, and the exit code of its kind."""

    def __init__(self, outstream, options):
        super().__init__(outstream, options)
        self.exit_code = 0

    def add_failure(self, task, fail):
        if isinstance(fail, StageFailed):
            self.exit_code = self.exit_code or fail.exit_code
            sys.stderr.write(one_line(task.name, fail.message) + "\n")
            sys.stderr.flush()
            return
        if isinstance(fail, TaskError) and fail.traceback:  # an exception that is not ours: a bug
            self.exit_code = self.exit_code or EXIT_INTERNAL
            sys.stderr.write(f"mcuforge: {task.name}: internal error (a bug: please report it with this traceback)\n")
        super().add_failure(task, fail)

    def complete_run(self):
        self.failures = [f for f in self.failures if not isinstance(f["exception"], StageFailed)]
        super().complete_run()
        if self.exit_code:
            self.outstream.flush()
            raise SystemExit(self.exit_code)  # doit's own codes (1, 2) cannot tell the kinds apart


def write_config(cfg: dict, paths) -> dict:
    write_json(paths.config, cfg)
    return {}
