"""Stage `search`: `search/arch.json`, either the fixed `search.model` or the winner of a TinyNAS search.

TinyNAS, as MCUNet describes it (no search code was released):
1. Search-space optimisation. For every (resolution, width multiplier) pair, sample `stage1.samples` random
   architectures, cost each with the real arena planner (peak SRAM) and its int8 constants plus the runtime (flash),
   and its latency predicted by the cost model (ml/latency.py; budget search.constraints.latency_ms at the board's
   clock), and keep the pair whose architectures that fit the budgets have the largest mean MACs: the FLOPs-CDF
   rule (a space where fitting models can afford more computation holds more accurate models).
2. Evolutionary search in that space. Candidates are scored by an accuracy proxy (short training from scratch on a
   seeded subset, accuracy on held-out training samples; the test set is never looked at). Each generation keeps the
   best `parents`, and refills the population with crossovers and mutations; every child is re-sampled until it fits
   all budgets. The best candidate is written to arch.json and trained from scratch by the `train` task.
Determinism: every random choice comes from the seed, and each candidate's training seed from the seed and the
architecture, so the result does not depend on how many workers ran or in which order.
"""
from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from schemas.arch import ArchSpec

from mcuforge.ml import archgraph, latency
from mcuforge.core.errors import BudgetError, McuforgeError
from mcuforge.core.figures import pyplot, save_png
from mcuforge.core.io import write_json, write_text


# ---- genes -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Genes:
    """Per stage: depth, and for each possible block a kernel and an expansion (blocks past the depth are unused)."""

    depths: tuple[int, ...]
    kernels: tuple[tuple[int, ...], ...]
    expansions: tuple[tuple[int, ...], ...]

    def key(self) -> tuple:
        """Identity of the architecture (unused blocks ignored)."""
        return tuple((d, k[:d], e[:d]) for d, k, e in zip(self.depths, self.kernels, self.expansions))


def sample_genes(space: dict, rng: np.random.Generator) -> Genes:
    depths, kernels, expansions = [], [], []
    for stage in space["stages"]:
        most = max(stage["depths"])
        depths.append(int(rng.choice(stage["depths"])))
        kernels.append(tuple(int(rng.choice(stage["kernels"])) for _ in range(most)))
        expansions.append(tuple(int(rng.choice(stage["expansions"])) for _ in range(most)))
    return Genes(tuple(depths), tuple(kernels), tuple(expansions))


def mutate(genes: Genes, space: dict, prob: float, rng: np.random.Generator) -> Genes:
    depths, kernels, expansions = list(genes.depths), [list(k) for k in genes.kernels], [list(e) for e in genes.expansions]
    for i, stage in enumerate(space["stages"]):
        if rng.random() < prob:
            depths[i] = int(rng.choice(stage["depths"]))
        for j in range(len(kernels[i])):
            if rng.random() < prob:
                kernels[i][j] = int(rng.choice(stage["kernels"]))
            if rng.random() < prob:
                expansions[i][j] = int(rng.choice(stage["expansions"]))
    return Genes(tuple(depths), tuple(map(tuple, kernels)), tuple(map(tuple, expansions)))


def crossover(a: Genes, b: Genes, rng: np.random.Generator) -> Genes:
    pick = lambda x, y: x if rng.random() < 0.5 else y  # noqa: E731
    return Genes(tuple(pick(x, y) for x, y in zip(a.depths, b.depths)),
                 tuple(tuple(pick(x, y) for x, y in zip(ka, kb)) for ka, kb in zip(a.kernels, b.kernels)),
                 tuple(tuple(pick(x, y) for x, y in zip(ea, eb)) for ea, eb in zip(a.expansions, b.expansions)))


def to_spec(genes: Genes, space: dict, resolution: int, width: float, channels: int) -> ArchSpec:
    stages = [{"channels": stage["channels"], "stride": stage["stride"], "depth": d,
               "kernel": list(k[:d]), "expansion": list(e[:d])}
              for stage, d, k, e in zip(space["stages"], genes.depths, genes.kernels, genes.expansions)]
    return ArchSpec.model_validate({
        "input": {"resolution": resolution, "channels": channels}, "num_classes": space["num_classes"],
        "width_multiplier": width, "activation": space["activation"], "stem": space["stem"], "stages": stages,
        "head": space["head"],
    })


# ---- budgets -----------------------------------------------------------------------------------------------------
def budgets(cfg: dict) -> dict:
    """The search's limits: SRAM, flash, MACs and predicted latency (0 = none), with the core family and clock the
    latency is predicted for."""
    constraints = cfg["search"]["constraints"]
    return {
        "sram_bytes": constraints["sram_bytes"] or cfg["resolved"]["sram_budget_bytes"],
        "flash_bytes": constraints["flash_bytes"] or cfg["resolved"]["flash_budget_bytes"],
        "macs": constraints["macs"],
        "latency_ms": constraints["latency_ms"],
        "core_family": latency.family(cfg["board"]["core"]),
        "clock_mhz": cfg["board"]["clock_mhz"],
    }


def _cost(spec: ArchSpec, limits: dict) -> archgraph.Cost:
    return archgraph.cost(spec, core_family=limits.get("core_family", "dsp"))


def _latency_ms(cost: archgraph.Cost, limits: dict) -> float | None:
    """The predicted latency (ms) at the limits' clock; None without a clock (limits made by hand)."""
    return round(cost.latency_ms(limits["clock_mhz"]), 3) if limits.get("clock_mhz") else None


def _fits(cost: archgraph.Cost, limits: dict) -> bool:
    instructions = limits.get("latency_ms", 0) * limits.get("clock_mhz", 0) * 1e3
    return archgraph.fits(cost, limits["sram_bytes"], limits["flash_bytes"], limits["macs"], instructions)


def _budget_text(limits: dict) -> str:
    text = f"peak SRAM {limits['sram_bytes']:,} B, flash {limits['flash_bytes']:,} B"
    if limits["macs"]:
        text += f", MACs {limits['macs']:,}"
    if limits.get("latency_ms"):
        text += (f", predicted latency {limits['latency_ms']:g} ms at {limits['clock_mhz']:g} MHz "
                 f"({limits['core_family']} cost model)")
    return text


# ---- stage 1 -----------------------------------------------------------------------------------------------------
def optimise_space(space: dict, channels: int, limits: dict, samples: int, seed: int, log: list,
                   progress: bool = True, min_fit_share: float = 0.0) -> tuple[int, float, dict]:
    """Return (resolution, width, per-pair statistics) by the FLOPs-CDF rule; every sample is appended to `log`."""
    stats = {}
    pairs = [(r, w) for r in space["resolutions"] for w in space["width_multipliers"]]
    for resolution, width in tqdm(pairs, desc="search stage 1", disable=not progress, mininterval=2.0):
        rng = np.random.default_rng([seed, resolution, int(width * 1000)])
        fitting = []
        for _ in range(samples):
            genes = sample_genes(space, rng)
            cost = _cost(to_spec(genes, space, resolution, width, channels), limits)
            ok = _fits(cost, limits)
            log.append({"resolution": resolution, "width": width, "macs": cost.macs,
                        "peak_sram_bytes": cost.peak_sram_bytes, "flash_bytes": cost.flash_bytes,
                        "predicted_instructions": cost.instructions,
                        "predicted_latency_ms": _latency_ms(cost, limits), "fits": ok})
            if ok:
                fitting.append(cost.macs)
        stats[f"{resolution}x{width}"] = {"resolution": resolution, "width": width, "fitting": len(fitting),
                                          "samples": samples, "mean_macs": float(np.mean(fitting)) if fitting else 0.0}
    eligible = [s for s in stats.values() if s["fitting"] and s["fitting"] >= min_fit_share * samples] \
        or [s for s in stats.values() if s["fitting"]] or list(stats.values())
    best = max(eligible, key=lambda s: (s["mean_macs"], s["fitting"]))
    if best["fitting"] == 0:
        smallest = min(log, key=lambda e: e["peak_sram_bytes"])
        lightest = min(log, key=lambda e: e["flash_bytes"])
        fastest = min(log, key=lambda e: e["predicted_instructions"])
        fastest_text = ""
        if limits.get("latency_ms"):
            fastest_text = (f", the smallest predicted latency {fastest['predicted_latency_ms']:,.3f} ms "
                            f"(resolution {fastest['resolution']}, width {fastest['width']})")
        raise BudgetError(
            f"search: no sampled architecture fits the budgets ({_budget_text(limits)}); "
            f"the smallest peak SRAM sampled was {smallest['peak_sram_bytes']:,} B "
            f"(resolution {smallest['resolution']}, width {smallest['width']}) and the smallest flash "
            f"{lightest['flash_bytes']:,} B{fastest_text}. Loosen search.constraints or shrink search.space.")
    return best["resolution"], best["width"], stats


# ---- accuracy proxy (runs in worker processes) -------------------------------------------------------------------
_WORKER: dict = {}


def _worker_init(data_dir: str, resolution: int, proxy: dict, seed: int) -> None:
    import torch

    from mcuforge.ml.data import read_cache

    torch.set_num_threads(1)
    data = read_cache(Path(data_dir), resolution)
    order = np.random.default_rng(seed).permutation(len(data.y_train))
    train = order[:proxy["train_samples"]]
    val = order[len(order) - proxy["val_samples"]:]
    if len(train) + len(val) > len(order):
        train = order[: len(order) - len(val)]
    _WORKER["data"] = data.__class__(data.x_train[train], data.y_train[train], data.x_train[val], data.y_train[val],
                                     data.classes, data.source)
    _WORKER["proxy"] = proxy


def candidate_seed(seed: int, spec: ArchSpec) -> int:
    digest = hashlib.sha256(f"{seed}:{json.dumps(spec.model_dump(mode='json'), sort_keys=True)}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def _evaluate(job: tuple[dict, int]) -> float:
    """Proxy accuracy of one candidate: short training on the worker's subset, accuracy on its held-out part."""
    from mcuforge.ml.train import train

    spec_dict, cand_seed = job
    proxy = _WORKER["proxy"]
    cfg = {"epochs": proxy["epochs"], "batch_size": proxy["batch_size"], "lr": proxy["lr"], "optimizer": "adamw",
           "weight_decay": 5e-4, "label_smoothing": 0.0, "augment": False, "threads": 1}
    _, metrics = train(ArchSpec.model_validate(spec_dict), _WORKER["data"], cfg, cand_seed, progress=False)
    return metrics["fp32_test_accuracy_torch"]


# ---- stage 2 -----------------------------------------------------------------------------------------------------
def evolve(space: dict, channels: int, resolution: int, width: float, limits: dict, evo: dict, seed: int,
           evaluate, log: list, progress: bool = True, time_budget_s: float = 0.0) -> dict:
    """Evolutionary search; `evaluate(list of ArchSpec) -> list of accuracies`. Returns the best result
    ({"genes", "entry", "spec", "generations", "stopped_by_time_budget"})."""
    rng = np.random.default_rng([seed, 2])
    started = time.monotonic()
    stopped = False
    results: dict[tuple, dict] = {}

    def propose(make) -> Genes | None:
        for _ in range(200):
            genes = make()
            if genes.key() in results or genes.key() in seen:
                continue
            spec = to_spec(genes, space, resolution, width, channels)
            if _fits(_cost(spec, limits), limits):
                return genes
        return None

    seen: set = set()
    population: list[Genes] = []
    while len(population) < evo["population"]:
        genes = propose(lambda: sample_genes(space, rng))
        if genes is None:
            break
        seen.add(genes.key())
        population.append(genes)
    if not population:
        raise BudgetError(f"search: no architecture of the chosen space fits the budgets ({_budget_text(limits)}) "
                            "after 200 tries")

    bar = tqdm(total=evo["iterations"], desc="search stage 2", disable=not progress, mininterval=2.0)
    generations = 0
    for generation in range(evo["iterations"]):
        if generation and time_budget_s and time.monotonic() - started > time_budget_s:
            stopped = True
            break
        generations += 1
        fresh = [g for g in population if g.key() not in results]
        specs = [to_spec(g, space, resolution, width, channels) for g in fresh]
        accuracies = evaluate(specs)
        for genes, spec, accuracy in zip(fresh, specs, accuracies):
            cost = _cost(spec, limits)
            entry = {"generation": generation, "resolution": resolution, "width": width,
                     "depths": list(genes.depths),
                     "kernels": [list(k[:d]) for k, d in zip(genes.kernels, genes.depths)],
                     "expansions": [list(e[:d]) for e, d in zip(genes.expansions, genes.depths)],
                     "macs": cost.macs, "params": cost.params, "arena_bytes": cost.arena_bytes,
                     "peak_sram_bytes": cost.peak_sram_bytes, "flash_bytes": cost.flash_bytes,
                     "predicted_instructions": cost.instructions, "predicted_latency_ms": _latency_ms(cost, limits),
                     "proxy_accuracy": round(float(accuracy), 6), "fits": _fits(cost, limits)}
            results[genes.key()] = {"genes": genes, "entry": entry, "spec": spec}
            log.append(entry)
        ranked = sorted(population, key=lambda g: (-results[g.key()]["entry"]["proxy_accuracy"],
                                                   results[g.key()]["entry"]["macs"]))
        bar.update(1)
        bar.set_postfix(best=f"{results[ranked[0].key()]['entry']['proxy_accuracy']:.4f}", refresh=False)
        if generation == evo["iterations"] - 1:
            break
        parents = ranked[:evo["parents"]]
        children: list[Genes] = []
        slots = evo["population"] - len(parents)
        crossovers = int(round(slots * evo["crossover_share"]))
        for index in range(slots):
            if index < crossovers and len(parents) > 1:
                a, b = rng.choice(len(parents), size=2, replace=False)
                make = lambda a=a, b=b: mutate(crossover(parents[a], parents[b], rng), space, evo["mutation_prob"] / 2, rng)  # noqa: E731
            else:
                p = int(rng.integers(len(parents)))
                make = lambda p=p: mutate(parents[p], space, evo["mutation_prob"], rng)  # noqa: E731
            genes = propose(make)
            if genes is not None:
                seen.add(genes.key())
                children.append(genes)
        population = parents + children
    bar.close()
    best = max(results.values(), key=lambda r: (r["entry"]["proxy_accuracy"], -r["entry"]["macs"]))
    return dict(best, generations=generations, stopped_by_time_budget=stopped)


# ---- plots -------------------------------------------------------------------------------------------------------
def plot_cdfs(stage1_log: list, chosen: tuple, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    pairs = sorted({(e["resolution"], e["width"]) for e in stage1_log})
    for resolution, width in pairs:
        macs = np.sort([e["macs"] / 1e6 for e in stage1_log
                        if e["fits"] and e["resolution"] == resolution and e["width"] == width])
        if len(macs) == 0:
            continue
        style = {"linewidth": 2.5} if (resolution, width) == chosen else {"linewidth": 1, "alpha": 0.7}
        ax.plot(macs, np.arange(1, len(macs) + 1) / len(macs), label=f"r{resolution} w{width}", **style)
    ax.set_xlabel("MMACs of architectures that fit the budgets")
    ax.set_ylabel("cumulative share")
    ax.set_title("Search-space optimisation: MACs CDF per (resolution, width); thick = chosen")
    ax.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    save_png(fig, path)


def plot_pareto(log: list, limits: dict, best: dict, path: Path) -> None:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.scatter([e["peak_sram_bytes"] / 1024 for e in log], [e["proxy_accuracy"] for e in log], s=18,
               c=[e["generation"] for e in log], cmap="viridis", label="candidates (colour: generation)")
    ax.scatter([best["peak_sram_bytes"] / 1024], [best["proxy_accuracy"]], marker="*", s=200, c="red", label="chosen")
    ax.axvline(limits["sram_bytes"] / 1024, color="black", linestyle="--", label="SRAM budget")
    ax.set_xlabel("peak SRAM (KiB)")
    ax.set_ylabel("proxy accuracy")
    ax.set_title("Evolutionary search: accuracy proxy vs peak SRAM")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_png(fig, path)


# ---- the stage ---------------------------------------------------------------------------------------------------
def run_search(cfg: dict, paths, progress: bool = True) -> dict:
    from mcuforge.ml import executor as executor_mod

    search = cfg["search"]
    space = search["space"]
    channels = cfg["dataset"]["channels"]
    limits = budgets(cfg)
    seed = cfg["seed"]
    stage1_log: list = []
    resolution, width, stats = optimise_space(space, channels, limits, search["stage1"]["samples"], seed, stage1_log,
                                              progress, search["stage1"]["min_fit_share"])
    log: list = []
    pool = executor_mod.make(search["executor"], search["workers"], _worker_init,
                             (str(paths.data), resolution, search["proxy"], seed))
    try:
        def evaluate(specs):
            jobs = [(spec.model_dump(mode="json"), candidate_seed(seed, spec)) for spec in specs]
            return pool.map(_evaluate, jobs)

        best = evolve(space, channels, resolution, width, limits, search["evolution"], seed, evaluate, log, progress,
                      search["time_budget_s"])
    finally:
        pool.close()
    search_dir = paths.arch.parent
    write_text(search_dir / "stage1.jsonl", "".join(json.dumps(e, sort_keys=True) + "\n" for e in stage1_log))
    write_text(search_dir / "log.jsonl", "".join(json.dumps(e, sort_keys=True) + "\n" for e in log))
    plot_cdfs(stage1_log, (resolution, width), search_dir / "cdf.png")
    plot_pareto(log, limits, best["entry"], search_dir / "pareto.png")
    summary = {"budgets": limits, "chosen_space": {"resolution": resolution, "width": width}, "stage1": stats,
               "evaluated": len(log), "generations": best["generations"],
               "stopped_by_time_budget": best["stopped_by_time_budget"], "best": best["entry"]}
    write_json(search_dir / "summary.json", summary)
    write_json(paths.arch, best["spec"].model_dump(mode="json"))
    return {"resolution": resolution, "width": width, "proxy_accuracy": best["entry"]["proxy_accuracy"],
            "macs": best["entry"]["macs"], "peak_sram_bytes": best["entry"]["peak_sram_bytes"]}


def search_outputs(paths) -> list[Path]:
    folder = paths.arch.parent
    return [folder / name for name in ("stage1.jsonl", "log.jsonl", "cdf.png", "pareto.png", "summary.json")]
