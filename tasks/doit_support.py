"""Glue between doit and the stage functions: readable failures, the config task's action."""
from __future__ import annotations

import importlib
import sys

from doit.exceptions import TaskFailed

from mcuforge.core.errors import ConfigError, McuforgeError
from mcuforge.core.io import write_json
from mcuforge.ml.allocator import keep_freed_memory  # noqa: F401  (dodo.py calls it before torch starts)


def action(target: str, *args):
    """A doit python-action calling `module:function` (imported only when the task runs, so `doit list` and config
    errors stay fast) with `args`; a ConfigError/McuforgeError becomes a one-message TaskFailed (no traceback)."""
    module_name, _, function_name = target.partition(":")

    def run():
        function = getattr(importlib.import_module(module_name), function_name)
        try:
            result = function(*args)
        except McuforgeError as exc:
            print(f"mcuforge: {exc}", file=sys.stderr)
            return TaskFailed(str(exc))
        return result if isinstance(result, dict) else None

    return (run, [], {})


def write_config(cfg: dict, paths) -> dict:
    write_json(paths.config, cfg)
    return {}
