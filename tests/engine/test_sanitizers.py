"""The engine built with -fsanitize=address,undefined passes a subset of the kernel tests, and the
sanitizers are really active (a deliberate out-of-bounds write is caught)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from mf_engine import REPO, SANITIZE_ENV, SANITIZE_FLAGS, asan_runtime, build_engine

SUBSET = ["tests/engine/test_conv.py", "tests/engine/test_pool.py", "tests/engine/test_eltwise.py",
          "tests/engine/test_fully_connected.py", "tests/engine/test_softmax.py", "tests/engine/test_requant.py",
          "tests/test_fuse.py::test_kernel_identical_to_separate_kernels",
          "tests/test_fuse.py::test_kernel_refuses_small_scratch_and_strided_1x1"]


def _sanitized_env() -> dict:
    env = dict(os.environ)
    env.update({"LD_PRELOAD": asan_runtime(), "ASAN_OPTIONS": "detect_leaks=0:abort_on_error=0",
                "UBSAN_OPTIONS": "print_stacktrace=1:halt_on_error=1", SANITIZE_ENV: "1"})
    env.pop("PYTEST_XDIST_WORKER", None)
    return env


def test_kernel_tests_pass_under_asan_and_ubsan():
    cmd = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", "-p", "no:xdist",
           "--hypothesis-seed=0", *SUBSET, "-k", "not realistic"]
    proc = subprocess.run(cmd, cwd=REPO, env=_sanitized_env(), capture_output=True, text=True, timeout=300)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-4000:]
    assert "passed" in output and "Sanitizer" not in output


def test_sanitizer_catches_an_out_of_bounds_write(tmp_path: Path):
    """Same harness, but the output buffer is 48 bytes too small: ASan must stop the process."""
    lib = build_engine("float", tmp_path, SANITIZE_FLAGS)
    script = textwrap.dedent(f"""
        import sys
        sys.path[:0] = [{str(REPO / 'tests' / 'engine')!r}, {str(REPO)!r}]
        import ctypes as C
        import numpy as np
        from mf_engine import ConvParams, Dims, Padding, QuantParams, Tile, _ptr
        lib = C.CDLL({str(lib)!r})
        x = np.zeros(16 * 16 * 8, np.int8)
        w = np.zeros(8 * 8, np.int8)
        scale = np.ones(8, np.float32)
        out = np.zeros(16 * 16 * 8 - 48, np.int8)  # one row short
        params = ConvParams(0, 0, Tile(1, 1), Tile(1, 1), Padding(0, 0, 0, 0), -128, 127)
        quant = QuantParams(_ptr(scale, C.c_float), None, None)
        lib.mf_conv2d_s8(C.byref(params), C.byref(quant), C.byref(Dims(16, 16, 8)), _ptr(x, C.c_int8),
                         C.byref(Dims(1, 1, 8)), _ptr(w, C.c_int8), None, C.byref(Dims(16, 16, 8)),
                         _ptr(out, C.c_int8))
        print("no error detected")
    """)
    proc = subprocess.run([sys.executable, "-c", script], env=_sanitized_env(), capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode != 0
    assert "AddressSanitizer" in proc.stderr and "heap-buffer-overflow" in proc.stderr, proc.stderr[-2000:]
    assert "no error detected" not in proc.stdout


@pytest.mark.parametrize("flags", [(), SANITIZE_FLAGS])
def test_engine_builds_warning_free(tmp_path, flags):
    for mode in ("float", "fixed"):
        assert build_engine(mode, tmp_path, tuple(flags)).exists()
