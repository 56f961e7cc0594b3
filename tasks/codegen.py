"""Task `codegen`: C for the engine (mcuforge/codegen/): codegen/model.c, model.h, weights.c, weights.h."""
from __future__ import annotations

from mcuforge.codegen.generate import generate, write
from mcuforge.ml import anomaly_stages
from mcuforge.schedule import rewrite


def run(cfg: dict, paths) -> dict:
    """Stage `codegen`: model.h, model.c, weights.c, weights.h from the int8 model and schedule/plan.json."""
    graph, plan = rewrite.planned(paths.int8, paths.plan)  # kernels run, and layers are numbered, in the plan's order
    anomaly = anomaly_stages.codegen_constants(cfg, paths) if cfg.get("autoencoder") else None
    write(generate(graph, plan, cfg["name"], anomaly), paths.codegen)
    return {"layers": len(graph.ops)}
