"""Glue between doit and the stage functions: readable failures, the config task's action."""
from __future__ import annotations

import functools
import sys

from doit.exceptions import TaskFailed

from schemas.loader import ConfigError

from .io import write_json


def action(function, *args):
    """A doit python-action calling `function(*args)`; a ConfigError/McuforgeError becomes a one-message TaskFailed
    (no traceback). Stage functions return a dict of results, shown by doit as the task's values."""

    @functools.wraps(function)
    def run():
        try:
            result = function(*args)
        except ConfigError as exc:
            print(f"mcuforge: {exc}", file=sys.stderr)
            return TaskFailed(str(exc))
        return result if isinstance(result, dict) else None

    return (run, [], {})


def write_config(cfg: dict, paths) -> dict:
    write_json(paths.config, cfg)
    return {}
