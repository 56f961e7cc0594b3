"""Graph rewrites chosen by the scheduler: compound ops that run several layers at once in less memory.

- `patch` (tasks/patch.py): MCUNetV2's patch-based inference; the first layers run patch by patch.
- `fuse_mbconv` (tasks/fuse.py): an inverted bottleneck (1x1 expansion, depthwise, 1x1 projection) computed row
  band by row band, so its expanded tensor never exists whole.

A compound op replaces its inner ops in `graph.ops`; its output is the last inner op's output (a tensor of the
model, so verification compares it like any layer), its working memory is `attrs["scratch_bytes"]` (the planner
gives it an arena buffer live at its step only) and `attrs["macs"]` counts what it executes. The schedule task
records each rewrite in plan.json["rewrites"] ({"kind": ..., ...}); every later stage that reads the model
re-applies them in order (`planned`), so the plan's op names exist.

A rewriter module has `choose(graph, schedule_cfg) -> list[dict]` (the rewrites worth applying to `graph`, already
applied to it) and `apply(graph, spec)`.
"""
from __future__ import annotations

import importlib
from pathlib import Path

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph

# applied in this order: patches first (on the model's own layers), then fusion of the blocks after them
REWRITERS = {"patch": "mcuforge.schedule.patch", "fuse_mbconv": "mcuforge.schedule.fuse"}


def rewriter(kind: str):
    if kind not in REWRITERS:
        raise McuforgeError(f"plan error: unknown graph rewrite '{kind}' (known: {', '.join(REWRITERS)}); "
                            "re-run the schedule task")
    return importlib.import_module(REWRITERS[kind])


def apply(graph: Graph, rewrites: list[dict]) -> None:
    for spec in rewrites:
        rewriter(spec["kind"]).apply(graph, spec)


def choose(graph: Graph, schedule_cfg: dict, after: str | None = None) -> list[dict]:
    """Every rewrite the schedule config enables and that pays off, applied to `graph`, in REWRITERS order (only
    the kinds after `after`: a rewriter judging its options by the arena they lead to runs the later ones)."""
    kinds = list(REWRITERS)
    chosen: list[dict] = []
    for kind in kinds[kinds.index(after) + 1:] if after else kinds:
        chosen += rewriter(kind).choose(graph, schedule_cfg)
    return chosen


def planned(int8_path: Path, plan_path: Path):
    """(graph, plan): the int8 model with the plan's rewrites applied and its ops in the plan's order."""
    from mcuforge import frontends
    from mcuforge.schedule import planner
    from mcuforge.core.io import read_json

    graph = frontends.load(int8_path)
    plan = planner.from_json(read_json(plan_path))
    apply(graph, plan.rewrites)
    planner.apply_order(graph, plan.order)
    return graph, plan
