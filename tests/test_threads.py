"""Thread and kernel-path settings (mcuforge/ml/threads.py): passive OpenMP waiting, the AVX2 kernel paths of
training on x86-64, one thread per xdist worker, and the CPU record of the manifest. Each case starts a fresh Python
process: the settings act when torch starts."""
import json
import os
import platform
import subprocess
import sys

import pytest

from helpers import ROOT

PROBE = """
import json, sys
sys.path[:0] = [{root!r}, {tests!r}]
{setup}
import torch
from mcuforge.ml.threads import cpu_record
record = cpu_record()
record["flags"] = len(record["flags"])
print(json.dumps(record))
"""


def probe(setup: str, **env: str) -> dict:
    environment = {k: v for k, v in os.environ.items()
                   if k not in ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "MCUFORGE_KERNELS",
                                "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA", "MKL_CBWR", "PYTEST_XDIST_WORKER")}
    environment.update(env)
    script = PROBE.format(root=str(ROOT), tests=str(ROOT / "tests"), setup=setup)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.skipif(platform.machine() != "x86_64", reason="the pinned kernel paths are x86-64's")
def test_dodo_settings_wait_passively_pin_avx2_kernels_and_record_the_cpu():
    pinned = probe("from mcuforge.ml.threads import configure_environment; configure_environment()")
    assert pinned["omp_wait_policy"] == "PASSIVE"
    assert pinned["torch"].startswith("2.") and pinned["onednn"] and pinned["logical_cpus"] >= 1
    assert pinned["model"] and pinned["flags"] > 0
    native = probe("from mcuforge.ml.threads import configure_environment; configure_environment()",
                   MCUFORGE_KERNELS="native")
    flags = set(open("/proc/cpuinfo").read().split())
    assert pinned["aten_cpu_capability"] == ("AVX2" if "avx2" in flags else "DEFAULT")
    assert pinned["pinned"]["ONEDNN_MAX_CPU_ISA"] == "AVX2" and pinned["pinned"]["MKL_CBWR"] == "AVX2"
    assert native["pinned"] == {"ATEN_CPU_CAPABILITY": None, "ONEDNN_MAX_CPU_ISA": None, "MKL_CBWR": None}
    assert native["aten_cpu_capability"] == ("AVX512" if "avx512f" in flags else pinned["aten_cpu_capability"])


def test_an_xdist_worker_runs_one_thread():
    worker = probe("import conftest", PYTEST_XDIST_WORKER="gw1")
    assert worker["torch_threads"] == 1


def test_training_threads_are_fixed_by_default_and_overridden_by_the_environment(monkeypatch):
    from mcuforge.core.errors import ConfigError
    from mcuforge.ml.threads import training_threads
    from schemas.pipeline import TrainConfig

    default = TrainConfig(epochs=1).threads
    assert default == 2  # not 0 (one per core): another core count would train other weights
    monkeypatch.delenv("MCUFORGE_THREADS", raising=False)
    assert training_threads(default) == 2
    monkeypatch.setenv("MCUFORGE_THREADS", "1")
    assert training_threads(default) == 1
    monkeypatch.setenv("MCUFORGE_THREADS", "many")
    with pytest.raises(ConfigError, match="MCUFORGE_THREADS"):
        training_threads(default)
