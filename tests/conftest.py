import os
import sys
from pathlib import Path

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one thread per xdist worker (torch, OpenMP, MKL, in this process and the doit runs it starts): two workers on
    # two cores never oversubscribe them (mcuforge/ml/threads.py)
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/helpers.py
