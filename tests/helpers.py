"""Shared helpers of the tests: run doit as a user would; which tools are present."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOIT = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py")]


def run_doit(*args: str, cwd: Path = ROOT, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run `doit <args>` in a subprocess; returns the completed process (text output)."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run([*DOIT, *args], cwd=cwd, capture_output=True, text=True, timeout=timeout, env=env)


def have_cross_tools() -> bool:
    return shutil.which("arm-none-eabi-gcc") is not None and shutil.which("qemu-system-arm") is not None


def _mlperf_dir() -> Path:
    """The MLPerf Tiny reference models (read in place, never copied): $MCUFORGE_MLPERF_DIR, ../shared beside the
    clone, or the workplace's /work/shared."""
    candidates = [os.environ.get("MCUFORGE_MLPERF_DIR", ""), ROOT.parent / "shared" / "models" / "mlperf-tiny",
                  Path("/work/shared/models/mlperf-tiny")]
    for candidate in candidates:
        if candidate and (Path(candidate) / "kws_ref_model.tflite").is_file():
            return Path(candidate)
    return ROOT.parent / "shared" / "models" / "mlperf-tiny"


MLPERF = _mlperf_dir()
