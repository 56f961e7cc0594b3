"""Task `schedule`: op order, tensor lifetimes and arena offsets of the int8 model (mcuforge/schedule/) ->
schedule/plan.json, plan.txt, memory.png. Refuses an arena that alone exceeds the board's SRAM budget."""
from __future__ import annotations

import dataclasses

from mcuforge.core.io import write_json, write_text
from mcuforge.frontends import load
from mcuforge.report.plots import memory_plot
from mcuforge.schedule import planner, rewrite
from mcuforge.toolchain import budget as budget_mod
from schemas.pipeline import ScheduleConfig


def run(cfg: dict, paths) -> dict:
    schedule = ScheduleConfig.model_validate(cfg["schedule"])
    graph = load(paths.int8)
    baseline_graph = dataclasses.replace(graph, ops=list(graph.ops))
    layer_macs = sum(op.macs(graph.tensors) for op in graph.ops)
    rewrites = rewrite.choose(graph, schedule)  # patches, fused blocks: graph.ops now has compound ops
    plan = planner.plan_for(graph, schedule)  # graph.ops now in the plan's order
    plan.rewrites = rewrites
    baseline = planner.plan(baseline_graph, "greedy_by_size", inplace_depthwise=False, reorder=False)
    plan.baseline = {"arena_bytes": baseline.peak_bytes(), "lower_bound_bytes": baseline.lower_bound()}
    data = plan.to_json()
    data["macs"] = sum(op.macs(graph.tensors) for op in graph.ops)
    data["macs_layer_by_layer"] = layer_macs
    if rewrites:  # what the rewrites bought: the same planner on the model's own layers
        alone = planner.plan_for(dataclasses.replace(baseline_graph, ops=list(baseline_graph.ops)), schedule)
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
