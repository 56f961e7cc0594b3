"""TinyNAS search: the cost model agrees with real builds, stage 1 follows the FLOPs-CDF rule, evolution keeps every
candidate within budget, the same seed gives the same architecture, and impossible budgets give a clear error."""
import json
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, run_doit
from schemas.arch import ArchSpec
from schemas.loader import load_pipeline
from mcuforge.ml import archgraph
from mcuforge.ml import search
from mcuforge.core.errors import McuforgeError


def _space() -> dict:
    cfg = load_pipeline("digits_nas").pipeline.model_dump(mode="json")
    return cfg["search"]["space"]


def test_cost_matches_the_fixed_digits_model_numbers():
    # independent references: MACs counted by torch forward hooks, arena from the planner on the ONNX-derived graph
    from mcuforge.ml.model import count_macs_params

    spec = ArchSpec.model_validate(load_pipeline("digits").pipeline.search.model.model_dump(mode="json"))
    cost = archgraph.cost(spec)
    macs, params = count_macs_params(spec)
    assert cost.macs == macs and cost.params == params
    assert cost.peak_sram_bytes == cost.arena_bytes + archgraph.RUNTIME_SRAM_BYTES


def test_stage1_picks_the_pair_with_largest_mean_fitting_macs():
    space = _space()
    limits = {"sram_bytes": 12000, "flash_bytes": 56000, "macs": 0}
    log: list = []
    resolution, width, stats = search.optimise_space(space, 1, limits, 30, seed=0, log=log, progress=False,
                                                     min_fit_share=0.2)
    assert len(log) == 30 * len(space["resolutions"]) * len(space["width_multipliers"])
    best = max((s for s in stats.values() if s["fitting"] >= 6), key=lambda s: s["mean_macs"])
    assert (resolution, width) == (best["resolution"], best["width"])
    # recompute the chosen pair's mean from the log itself
    chosen = [e["macs"] for e in log if e["resolution"] == resolution and e["width"] == width and e["fits"]]
    assert np.isclose(np.mean(chosen), stats[f"{resolution}x{width}"]["mean_macs"])
    for entry in log:
        assert entry["fits"] == (entry["peak_sram_bytes"] <= 12000 and entry["flash_bytes"] <= 56000)


def test_impossible_budget_names_the_need():
    with pytest.raises(McuforgeError, match=r"no sampled architecture fits the budgets \(peak SRAM 1,000 B"):
        search.optimise_space(_space(), 1, {"sram_bytes": 1000, "flash_bytes": 56000, "macs": 0}, 5, 0, [],
                              progress=False)


def test_evolution_children_fit_and_best_is_best():
    space = _space()
    limits = {"sram_bytes": 12000, "flash_bytes": 56000, "macs": 0}
    evo = {"population": 6, "parents": 2, "mutation_prob": 0.3, "crossover_share": 0.5, "iterations": 3}

    def fake_accuracy(specs):  # deterministic stand-in for training: prefers more MACs
        return [archgraph.cost(s).macs / 1e6 for s in specs]

    log: list = []
    best = search.evolve(space, 1, 16, 0.5, limits, evo, 0, fake_accuracy, log, progress=False)
    assert len(log) >= 6
    assert all(e["fits"] for e in log)
    assert best["entry"]["proxy_accuracy"] == max(e["proxy_accuracy"] for e in log)
    keys = [json.dumps([e["depths"], e["kernels"], e["expansions"]]) for e in log]
    assert len(keys) == len(set(keys)), "a candidate was evaluated twice"


@pytest.mark.slow
def test_same_seed_same_architecture(tmp_path: Path):
    outputs = []
    for name in ("a", "b"):
        result = run_doit("search", "pipeline=digits_nas", f"build={tmp_path / name}")
        assert result.returncode == 0, result.stderr[-3000:]
        folder = tmp_path / name / "search"
        outputs.append({f: (folder / f).read_bytes() for f in ("arch.json", "log.jsonl", "stage1.jsonl")})
        for plot in ("cdf.png", "pareto.png"):
            assert (folder / plot).stat().st_size > 1000
    assert outputs[0] == outputs[1]
    summary = json.loads((tmp_path / "a" / "search" / "summary.json").read_text())
    assert summary["best"]["peak_sram_bytes"] <= 12000 and summary["best"]["flash_bytes"] <= 56000
    log = [json.loads(line) for line in (tmp_path / "a" / "search" / "log.jsonl").read_text().splitlines()]
    assert all(e["fits"] for e in log)
    other = run_doit("search", "pipeline=digits_nas", f"build={tmp_path / 'c'}", "seed=1")
    assert other.returncode == 0
    assert (tmp_path / "c" / "search" / "log.jsonl").read_bytes() != outputs[0]["log.jsonl"]


def test_time_budget_stops_generations():
    space = _space()
    limits = {"sram_bytes": 12000, "flash_bytes": 56000, "macs": 0}
    evo = {"population": 4, "parents": 2, "mutation_prob": 0.3, "crossover_share": 0.5, "iterations": 5}

    def slow_accuracy(specs):
        import time

        time.sleep(0.3)
        return [0.5] * len(specs)

    best = search.evolve(space, 1, 16, 0.5, limits, evo, 0, slow_accuracy, [], progress=False, time_budget_s=0.1)
    assert best["stopped_by_time_budget"] and best["generations"] == 1
    unlimited = search.evolve(space, 1, 16, 0.5, limits, evo, 0, lambda s: [0.5] * len(s), [], progress=False)
    assert not unlimited["stopped_by_time_budget"] and unlimited["generations"] == 5


@pytest.mark.slow
def test_ray_executor_gives_the_local_result(tmp_path: Path):
    pytest.importorskip("ray", reason="Ray is an optional dependency (pip install ray)")
    local = run_doit("search", "pipeline=digits_nas", f"build={tmp_path / 'local'}")
    ray = run_doit("search", "pipeline=digits_nas", f"build={tmp_path / 'ray'}", "search.executor=ray",
                   "search.workers=2")
    assert local.returncode == 0 and ray.returncode == 0, ray.stderr[-3000:]
    for name in ("arch.json", "log.jsonl"):
        assert (tmp_path / "local" / "search" / name).read_bytes() == (tmp_path / "ray" / "search" / name).read_bytes()
