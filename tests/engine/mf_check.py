"""Comparison of engine outputs with ONNX Runtime, and the mismatch statistics shown after the run."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from pathlib import Path

import numpy as np

STATS_ENV = "MF_ENGINE_STATS_DIR"
_stats: dict = defaultdict(lambda: {"cases": 0, "values": 0, "diff": 0, "max_abs": 0})


def check_op(op: str, mode: str, ours: np.ndarray, ref: np.ndarray, tolerance: int | None = None) -> int:
    """Compares int8 outputs: exact in float mode, within +-1 LSB in fixed mode (or within ``tolerance``).

    Returns the number of differing values; the counts are summarised after the test run."""
    ours = np.asarray(ours)
    ref = np.asarray(ref)
    assert ours.shape == ref.shape, f"{op}: shape {ours.shape} != ORT {ref.shape}"
    diff = np.abs(ours.astype(np.int32) - ref.astype(np.int32))
    n_diff = int(np.count_nonzero(diff))
    max_abs = int(diff.max()) if diff.size else 0
    s = _stats[(op, mode)]
    s["cases"] += 1
    s["values"] += int(diff.size)
    s["diff"] += n_diff
    s["max_abs"] = max(s["max_abs"], max_abs)
    if tolerance is None:
        tolerance = 0 if mode == "float" else 1
    if tolerance == 0:
        where = np.argwhere(diff)
        assert n_diff == 0, (f"{op} ({mode} mode): {n_diff}/{diff.size} values differ from ORT, first at "
                             f"{where[0].tolist()}: ours {ours[tuple(where[0])]} vs ORT {ref[tuple(where[0])]}")
    else:
        assert max_abs <= tolerance, (f"{op} ({mode} mode): max abs diff {max_abs} > {tolerance} LSB "
                                      f"({n_diff}/{diff.size} differ)")
    return n_diff


def dump_stats(worker: str) -> None:
    directory = os.environ.get(STATS_ENV)
    if not directory or not _stats:
        return
    rows = [{"op": op, "mode": mode, **s} for (op, mode), s in _stats.items()]
    (Path(directory) / f"stats_{worker}.json").write_text(json.dumps(rows))


def load_stats(directory: str) -> list[dict]:
    total: dict = defaultdict(lambda: {"cases": 0, "values": 0, "diff": 0, "max_abs": 0})
    for path in Path(directory).glob("stats_*.json"):
        for row in json.loads(path.read_text()):
            t = total[(row["op"], row["mode"])]
            for key in ("cases", "values", "diff"):
                t[key] += row[key]
            t["max_abs"] = max(t["max_abs"], row["max_abs"])
    return [{"op": op, "mode": mode, **s} for (op, mode), s in sorted(total.items())]
