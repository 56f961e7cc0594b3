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

from mf_engine import SANITIZE_ENV, SANITIZE_FLAGS, build_both_paths  # noqa: E402


@pytest.fixture(scope="session")
def engine_libs(tmp_path_factory):
    """Both requant modes compiled into a temporary directory, each as the plain C path and the DSP path with
    portable intrinsics (mf_engine.BothPaths: every call runs on both and they must agree byte for byte).

    With MF_ENGINE_SANITIZE=1 (set by test_sanitizers.py for its subprocess) the engine is built with
    AddressSanitizer and UndefinedBehaviorSanitizer."""
    import os

    out_dir = tmp_path_factory.mktemp("mf_engine")
    extra = SANITIZE_FLAGS if os.environ.get(SANITIZE_ENV) == "1" else ()
    return build_both_paths(out_dir, extra)


@pytest.fixture(scope="session")
def float_engine(engine_libs):
    return engine_libs["float"]


@pytest.fixture(scope="session")
def fixed_engine(engine_libs):
    return engine_libs["fixed"]


@pytest.fixture(scope="session", params=["float", "fixed"])
def engine(request, engine_libs):
    return engine_libs[request.param]


def pytest_configure(config):
    """The controller (or the only process) creates the directory the workers write statistics to."""
    import os
    import tempfile

    from mf_check import STATS_ENV

    if not hasattr(config, "workerinput"):
        os.environ[STATS_ENV] = tempfile.mkdtemp(prefix="mf_engine_stats_")


def pytest_sessionfinish(session):
    from mf_check import dump_stats

    worker = getattr(session.config, "workerinput", {}).get("workerid", "main")
    dump_stats(worker)


def pytest_terminal_summary(terminalreporter, config):
    import os
    import shutil

    from mf_check import STATS_ENV, load_stats

    directory = os.environ.get(STATS_ENV)
    if not directory or hasattr(config, "workerinput"):
        return
    rows = load_stats(directory)
    shutil.rmtree(directory, ignore_errors=True)
    if not rows:
        return
    terminalreporter.section("engine vs ONNX Runtime")
    terminalreporter.write_line(f"{'op':<40}{'mode':<7}{'cases':>7}{'values':>10}{'differ':>9}{'max|d|':>8}")
    for r in rows:
        terminalreporter.write_line(f"{r['op']:<40}{r['mode']:<7}{r['cases']:>7}{r['values']:>10}"
                                    f"{r['diff']:>9}{r['max_abs']:>8}")
