"""Graph rewrites chosen by the scheduler: compound ops that run several layers at once in less memory.

- `patch` (patch.py): MCUNetV2's patch-based inference; the first layers run patch by patch.
- `fuse_mbconv` (fuse.py): an inverted bottleneck (1x1 expansion, depthwise, 1x1 projection) computed row
  band by row band, so its expanded tensor never exists whole.

A compound op replaces its inner ops in `graph.ops`; its output is the last inner op's output (a tensor of the
model, so verification compares it like any layer), its working memory is `Op.compound.scratch_bytes` (the planner
gives it an arena buffer live at its step only) and `Op.compound.macs` counts what it executes. The schedule task
records each rewrite in plan.json["rewrites"] ({"kind": ..., ...}); every later stage that reads the model
re-applies them in order (`planned`), so the plan's op names exist.

A rewriter module has `choose(graph, schedule) -> list[dict]` (the rewrites worth applying to `graph`, already
applied to it; `schedule` is the pipeline's schemas.pipeline.ScheduleConfig) and `apply(graph, spec)`.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from mcuforge import frontends
from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import read_json
from mcuforge.ir.graph import Graph
from mcuforge.schedule import fuse, patch
from mcuforge.schedule.order import apply_order
from mcuforge.schedule.plan import Plan, from_json

if TYPE_CHECKING:
    from schemas.pipeline import ScheduleConfig

# applied in this order: patches first (on the model's own layers), then fusion of the blocks after them
REWRITERS = {"patch": patch, "fuse_mbconv": fuse}


def rewriter(kind: str):
    if kind not in REWRITERS:
        raise McuforgeError(f"plan error: unknown graph rewrite '{kind}' (known: {', '.join(REWRITERS)}); "
                            "re-run the schedule task")
    return REWRITERS[kind]


def apply(graph: Graph, rewrites: list[dict]) -> None:
    for spec in rewrites:
        rewriter(spec["kind"]).apply(graph, spec)


def choose(graph: Graph, schedule: ScheduleConfig) -> list[dict]:
    """Every rewrite the schedule config enables and that pays off, applied to `graph`, in REWRITERS order."""
    chosen: list[dict] = []
    for module in REWRITERS.values():
        chosen += module.choose(graph, schedule)
    return chosen


def planned(int8_path: Path, plan_path: Path) -> tuple[Graph, Plan]:
    """(graph, plan): the int8 model with the plan's rewrites applied and its ops in the plan's order."""
    graph = frontends.load(int8_path)
    plan = from_json(read_json(plan_path))
    apply(graph, plan.rewrites)
    apply_order(graph, plan.order)
    return graph, plan
