import os
import sys
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker (torch, OpenMP, MKL, in this process and the doit runs it starts): two workers on
    # two cores never oversubscribe them (mcuforge/ml/threads.py)
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MCUFORGE_THREADS"):
        os.environ.setdefault(_name, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py

import pytest  # noqa: E402

from helpers import run_doit  # noqa: E402


@pytest.fixture(scope="session")
def digits_built(tmp_path_factory) -> Path:
    """One `doit run pipeline=digits` per test session (per xdist worker), for tests that only read the build."""
    build = tmp_path_factory.mktemp("digits_session") / "digits"
    result = run_doit("run", "pipeline=digits", f"build={build}")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return build
