"""Where search candidates are evaluated: an interface with a local process-pool backend and a Ray backend.

`Executor.map(function, items)` returns results in the order of `items`. The function and items must be picklable;
the function runs in a worker that first called `initializer(*initargs)` (loads the data once per worker).
Results never depend on which worker ran what, so the search stays deterministic for a seed.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from typing import Callable, Iterable, Protocol

from mcuforge.core.errors import McuforgeError
from mcuforge.toolchain.process import die_with_parent


class Executor(Protocol):
    def map(self, function: Callable, items: Iterable) -> list: ...

    def close(self) -> None: ...


class LocalExecutor:
    """`workers` spawned processes (spawn, not fork: torch's thread pools do not survive a fork), each killed when
    the process that started it dies (a killed `doit run` leaves no worker training on)."""

    def __init__(self, workers: int, initializer: Callable, initargs: tuple):
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_start_worker, initargs=(os.getpid(), initializer, initargs))

    def map(self, function: Callable, items: Iterable) -> list:
        return list(self._pool.map(function, items))

    def close(self) -> None:
        self._pool.shutdown()


class RayExecutor:
    """Ray tasks (one CPU each); the initializer runs once per task process through a cached actor-free wrapper."""

    def __init__(self, workers: int, initializer: Callable, initargs: tuple):
        try:
            import ray
        except ImportError:
            raise McuforgeError("search.executor: ray is not installed (pip install ray), or use executor: local") from None
        self._ray = ray
        if not ray.is_initialized():
            ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False)

        @ray.remote(num_cpus=1)
        def run(function, item):
            _ensure_initialized(initializer, initargs)
            return function(item)

        self._run = run

    def map(self, function: Callable, items: Iterable) -> list:
        return self._ray.get([self._run.remote(function, item) for item in items])

    def close(self) -> None:
        self._ray.shutdown()


def _start_worker(parent: int, initializer: Callable, initargs: tuple) -> None:
    die_with_parent(parent)
    initializer(*initargs)


_INITIALIZED: set = set()


def _ensure_initialized(initializer: Callable, initargs: tuple) -> None:
    key = (initializer.__module__, initializer.__name__, repr(initargs))
    if key not in _INITIALIZED:
        initializer(*initargs)
        _INITIALIZED.add(key)


def make(kind: str, workers: int, initializer: Callable, initargs: tuple) -> Executor:
    if kind == "ray":
        return RayExecutor(workers, initializer, initargs)
    return LocalExecutor(workers, initializer, initargs)
