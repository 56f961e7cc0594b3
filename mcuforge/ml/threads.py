"""Thread settings of training and search that survive a loaded machine, and what the manifest records about the CPU.

On a shared 2-core machine one competing CPU-bound process made training 10-20x slower: torch's OpenMP threads
spin in their barriers (libgomp's default wait policy), and two spinning threads on one effective core mostly wait
for each other's time slice. Passive waiting (OMP_WAIT_POLICY=PASSIVE: a thread that waits sleeps) removes the
collapse at a small idle cost (benchmarks/loaded_bench.py). It must be set before the OpenMP runtime starts, i.e.
before torch is imported: dodo.py calls `configure_environment` first thing. Test workers under pytest-xdist use
one thread each (tests/conftest.py), so two workers never oversubscribe two cores.

`configure_training(threads)` is for the process that trains: threads > 0 pins torch's intra-op threads (the
pipeline's train.threads, default 2 so that machines with other core counts train the same weights; the environment
variable MCUFORGE_THREADS overrides it), 0 keeps torch's default (one per core, or OMP_NUM_THREADS).
"""
from __future__ import annotations

import os
import platform
from pathlib import Path

from mcuforge.core.errors import ConfigError

WAIT_POLICY = "PASSIVE"
# The x86-64 kernel paths training is pinned to (MCUFORGE_KERNELS=portable, the default): AVX2 is on every x86-64
# CI runner and laptop of the last decade; an AVX-512 machine would otherwise pick other kernels (other summation
# orders) in ATen, oneDNN (the channels_last convolutions) and MKL, and train slightly different weights.
PORTABLE_KERNELS = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"}


def configure_environment() -> None:
    """Before torch (and its OpenMP runtime) starts: passive waiting, unless the user chose a policy; on x86-64 the
    AVX2 kernel paths (PORTABLE_KERNELS) unless MCUFORGE_KERNELS=native or the user set them."""
    os.environ.setdefault("OMP_WAIT_POLICY", WAIT_POLICY)
    os.environ.setdefault("KMP_BLOCKTIME", "0")  # the same for Intel's OpenMP runtime, if a build links it
    if os.environ.get("MCUFORGE_KERNELS", "portable") != "native" and platform.machine() in ("x86_64", "AMD64"):
        for name, value in PORTABLE_KERNELS.items():
            os.environ.setdefault(name, value)


def training_threads(threads: int) -> int:
    """The thread count training uses: MCUFORGE_THREADS when set (the test suite: one per xdist worker), else the
    pipeline's train.threads (default 2, fixed so other core counts train the same weights; 0 = torch's default)."""
    override = os.environ.get("MCUFORGE_THREADS", "").strip()
    if override:
        if not override.isdigit() or not 0 <= int(override) <= 256:
            raise ConfigError(f"environment: MCUFORGE_THREADS={override!r}: expected an integer 0..256")
        return int(override)
    return threads


def configure_training(threads: int) -> None:
    """Pin torch's intra-op threads when threads > 0 (after MCUFORGE_THREADS, see training_threads)."""
    import torch

    threads = training_threads(threads)
    if threads:
        torch.set_num_threads(threads)


def cpu_record() -> dict:
    """The CPU and the torch kernel path the build ran on (the manifest's "cpu"): the model and flags from
    /proc/cpuinfo, torch's and ATen's CPU capability, the MKL and oneDNN versions, threads, OpenMP wait policy."""
    record: dict = {"machine": platform.machine(), "model": None, "flags": [], "logical_cpus": os.cpu_count()}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and record["model"] is None:
                record["model"] = value.strip()
            elif key.strip() in ("flags", "Features") and not record["flags"]:
                record["flags"] = sorted(value.split())
    try:
        import torch
    except ImportError:
        return record
    config = torch.__config__.show()
    record.update({
        "torch": torch.__version__,
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "pinned": {name: os.environ.get(name) for name in PORTABLE_KERNELS},
        "mkl": _version_line(config, "Math Kernel Library Version"),
        "onednn": _version_line(config, "MKL-DNN v") or _version_line(config, "oneDNN v"),
        "torch_threads": torch.get_num_threads(),
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
    })
    return record


def _version_line(config: str, marker: str) -> str | None:
    for line in config.splitlines():
        if marker in line:
            return line.strip(" -")
    return None
