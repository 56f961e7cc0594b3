"""Stage `schedule`: tensor lifetimes and arena offsets of the int8 model -> schedule/plan.json, plan.txt, memory.png."""
from __future__ import annotations

from pathlib import Path

from . import graph as graph_mod
from . import planner
from .io import atomic_path, write_json, write_text


def memory_plot(plan: planner.Plan, graph: graph_mod.Graph, path: Path, budget: int | None = None) -> None:
    """Live activation bytes per op (the lower bound is their peak), the planned arena and the SRAM budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    live = planner.live_bytes(plan)
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=100)
    ax.bar(range(len(live)), [v / 1024 for v in live], color="#4c9be8", label="live tensors")
    ax.axhline(plan.peak_bytes() / 1024, color="#d9534f", linestyle="--",
               label=f"arena ({plan.planner}): {plan.peak_bytes():,} B")
    ax.axhline(plan.lower_bound() / 1024, color="#5cb85c", linestyle=":", label=f"lower bound: {plan.lower_bound():,} B")
    if budget is not None and budget < 4 * plan.peak_bytes():
        ax.axhline(budget / 1024, color="black", linewidth=1, label=f"SRAM budget: {budget:,} B")
    ax.set_xlabel("op (execution order)")
    ax.set_ylabel("KiB")
    ax.set_xticks(range(len(live)))
    ax.set_xticklabels([op.kind for op in graph.ops], rotation=90, fontsize=7)
    ax.legend(fontsize=8, loc="upper right")
    ax.set_title("Activation memory over time")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def run(cfg: dict, paths) -> dict:
    graph = graph_mod.load(paths.int8)
    plan = planner.plan(graph, cfg["schedule"]["planner"])
    data = plan.to_json()
    data["macs"] = sum(op.macs(graph.tensors) for op in graph.ops)
    write_json(paths.plan, data)
    write_text(paths.plan_txt, plan.dump() + "\n")
    memory_plot(plan, graph, paths.memory_png, cfg["resolved"]["sram_budget_bytes"])
    return {"arena_bytes": data["arena_bytes"], "lower_bound_bytes": data["lower_bound_bytes"]}
