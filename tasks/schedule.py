"""Stage `schedule`: op order, tensor lifetimes and arena offsets of the int8 model -> schedule/plan.json, plan.txt,
memory.png. Refuses (McuforgeError) an arena that alone exceeds the board's SRAM budget."""
from __future__ import annotations

import dataclasses
from pathlib import Path

from . import budget as budget_mod
from . import graph as graph_mod
from . import planner, rewrite
from .io import atomic_path, write_json, write_text


def memory_plot(plan: planner.Plan, baseline: planner.Plan, path: Path, budget: int | None = None) -> None:
    """Live activation bytes per step: the greedy_by_size baseline (ONNX order, one step per layer) above, the
    chosen plan (its order; a compound op of tasks/rewrite.py is one step) below; both arenas, the plan's lower
    bound and the SRAM budget on both."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    what = f"{plan.planner}, {len(plan.inplace)} ops in place" + (", reordered" if plan.order != baseline.order else "")
    for spec in plan.rewrites:
        what += f", {spec['kind']}" + (f" ({spec['summary']})" if spec.get("summary") else "")
    panels = [(baseline, "baseline: greedy_by_size, ONNX order, no in-place", "#bbbbbb"), (plan, what, "#4c9be8")]
    steps = max(len(baseline.layers), len(plan.layers))
    fig, axes = plt.subplots(2, 1, figsize=(max(10.0, 4 + 0.22 * steps), 7.5), dpi=100, sharey=True)
    top = max(baseline.peak_bytes(), plan.peak_bytes())
    for ax, (shown, label, color) in zip(axes, panels):
        live = planner.live_bytes(shown)
        ax.bar(range(len(live)), [v / 1024 for v in live], width=0.7, color=color, label=f"live tensors, {label}")
        ax.axhline(baseline.peak_bytes() / 1024, color="#888888", linestyle="--",
                   label=f"arena, baseline: {baseline.peak_bytes():,} B")
        ax.axhline(plan.peak_bytes() / 1024, color="#d9534f", linestyle="--",
                   label=f"arena, {plan.planner}: {plan.peak_bytes():,} B")
        ax.axhline(plan.lower_bound() / 1024, color="#5cb85c", linestyle=":",
                   label=f"lower bound ({plan.planner}'s order): {plan.lower_bound():,} B")
        if budget is not None and budget < 4 * top:
            ax.axhline(budget / 1024, color="black", linewidth=1, label=f"SRAM budget: {budget:,} B")
        ax.set_ylabel("KiB")
        ax.set_xlim(-0.6, steps - 0.4)
        ax.set_xticks(range(len(shown.layers)))
        ax.set_xticklabels(shown.layers, rotation=90, fontsize=7)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_title("Activation memory over time")
    axes[1].set_xlabel("step")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": None})
    plt.close(fig)


def make_plan(graph: graph_mod.Graph, schedule_cfg: dict) -> planner.Plan:
    return planner.plan(graph, schedule_cfg["planner"], schedule_cfg.get("inplace_depthwise", True),
                        schedule_cfg.get("reorder", True))


def run(cfg: dict, paths) -> dict:
    graph = graph_mod.load(paths.int8)
    baseline_graph = dataclasses.replace(graph, ops=list(graph.ops))
    layer_macs = sum(op.macs(graph.tensors) for op in graph.ops)
    rewrites = rewrite.choose(graph, cfg["schedule"])  # patches, fused blocks: graph.ops now has compound ops
    plan = make_plan(graph, cfg["schedule"])  # graph.ops now in the plan's order
    plan.rewrites = rewrites
    baseline = planner.plan(baseline_graph, "greedy_by_size", inplace_depthwise=False, reorder=False)
    plan.baseline = {"arena_bytes": baseline.peak_bytes(), "lower_bound_bytes": baseline.lower_bound()}
    data = plan.to_json()
    data["macs"] = sum(op.macs(graph.tensors) for op in graph.ops)
    data["macs_layer_by_layer"] = layer_macs
    if rewrites:  # what the rewrites bought: the same planner on the model's own layers
        alone = make_plan(dataclasses.replace(baseline_graph, ops=list(baseline_graph.ops)), cfg["schedule"])
        data["arena_layer_by_layer"] = alone.peak_bytes()
    write_json(paths.plan, data)
    write_text(paths.plan_txt, plan.dump() + "\n")
    sram_budget = cfg["resolved"]["sram_budget_bytes"]
    memory_plot(plan, baseline, paths.memory_png, sram_budget)
    budget_mod.check_arena(plan, graph, sram_budget, cfg["board"]["name"])
    result = {"arena_bytes": data["arena_bytes"], "lower_bound_bytes": data["lower_bound_bytes"],
              "greedy_by_size_bytes": data["baseline"]["arena_bytes"]}
    if rewrites:
        result["arena_layer_by_layer"] = data["arena_layer_by_layer"]
        result["rewrites"] = "; ".join(spec["summary"] for spec in rewrites)
    return result
