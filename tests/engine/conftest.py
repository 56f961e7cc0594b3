"""Fixtures of the engine tests: the C engine compiled once per session and requant mode."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
for path in (str(HERE), str(REPO)):
    if path not in sys.path:
        sys.path.insert(0, path)

from mf_engine import Engine, build_engine  # noqa: E402


@pytest.fixture(scope="session")
def engine_libs(tmp_path_factory):
    """Both requant modes compiled into a temporary directory: {"float": Engine, "fixed": Engine}."""
    out_dir = tmp_path_factory.mktemp("mf_engine")
    return {mode: Engine(build_engine(mode, out_dir), mode) for mode in ("float", "fixed")}


@pytest.fixture(scope="session")
def float_engine(engine_libs):
    return engine_libs["float"]


@pytest.fixture(scope="session")
def fixed_engine(engine_libs):
    return engine_libs["fixed"]


@pytest.fixture(scope="session", params=["float", "fixed"])
def engine(request, engine_libs):
    return engine_libs[request.param]
