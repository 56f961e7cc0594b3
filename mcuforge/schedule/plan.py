"""Arena planning: an op order, and for every activation tensor an offset in one static arena.

The buffers and their lifetimes (views, in-place depthwise, compound ops' working memory) come from
lifetimes.py, the candidate op orders from order.py, the placements from placement.py. Planners:
- `greedy_by_size`: TensorFlow Lite Micro's GreedyMemoryPlanner (largest first, first fit) on the ONNX order. The
  baseline; reported in every plan (ONNX order, no in-place).
- `best` (ours): the minimum arena over several candidates, the baseline's own configuration among them, so it is
  never worse than the baseline: op orders (the ONNX order, and with `reorder` the order that minimises the peak of
  live bytes: exact dynamic programming over the sets of executed ops when the graph has few enough of them
  (ORDER_STATE_LIMIT), a greedy choice among ready ops otherwise), in-place on and off, and placement orders (by
  size, by first use, by size x lifetime, by the live bytes around the buffer) with first fit and with best fit
  (the tightest gap); then a local search over the placement order (move one buffer elsewhere in the order, keep
  improvements; at most IMPROVE_TRIALS placements); for graphs of at most EXACT_MAX_BUFFERS buffers an exact search
  over placement orders (first fit in the order of an optimal plan's offsets reproduces that plan, so trying every
  order finds an optimum), bounded by EXACT_NODE_LIMIT nodes. Each stops early once it reaches the lower bound.
Limits are node/state counts, not wall time, so plans are reproducible across machines. The lower bound (max over
steps of the live bytes) is exact for the chosen order; no placement can beat it, and a plan at it is optimal.

A Plan is written as plan.json (`to_json`) and read back by codegen and verify (`from_json`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op
from mcuforge.schedule.lifetimes import Buffer, graph_displacements, inplace_candidate, lifetimes, live_per_step
from mcuforge.schedule.order import apply_order, candidate_orders
from mcuforge.schedule.placement import best_placement, greedy_by_size

if TYPE_CHECKING:
    from schemas.pipeline import ScheduleConfig


@dataclass
class Plan:
    planner: str
    order: list[str]
    buffers: dict[str, Buffer]
    aliases: dict[str, str] = field(default_factory=dict)  # tensor -> buffer it shares (views, in-place outputs)
    inplace: dict[str, dict] = field(default_factory=dict)  # op name -> {input, output, scratch, scratch_bytes}
    layers: list[str] = field(default_factory=list)  # op kind per step, for the dumps
    baseline: dict = field(default_factory=dict)  # greedy_by_size on the ONNX order without in-place
    candidates: list[dict] = field(default_factory=list)  # what `best` tried
    rewrites: list[dict] = field(default_factory=list)  # graph rewrites planned with (rewrite.py)
    displacements: dict[str, int] = field(default_factory=dict)  # tensor -> offset inside its shared buffer
    how: str = ""  # the placement that produced the offsets

    def offset(self, tensor: str) -> int:
        return self.buffers[self.aliases.get(tensor, tensor)].offset + self.displacements.get(tensor, 0)

    def peak_bytes(self) -> int:
        return max((b.offset + max(s for _, _, s in b.spans()) for b in self.buffers.values()), default=0)

    def lower_bound(self) -> int:
        return max(live_bytes(self), default=0)

    def peak_step(self) -> int:
        live = live_bytes(self)
        return live.index(max(live)) if live else 0

    def check_no_overlap(self) -> None:
        """Raise if two buffers that are live at the same time share a byte."""
        items = sorted(self.buffers.values(), key=lambda b: (b.offset, b.name))
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if b.offset >= a.offset + a.size:
                    break
                for fa, la, sa in a.spans():
                    for fb, lb, sb in b.spans():
                        if fa <= lb and fb <= la and a.offset < b.offset + sb and b.offset < a.offset + sa:
                            raise McuforgeError(
                                f"plan error: {a.name} [{a.offset}, {a.offset + sa}) and {b.name} "
                                f"[{b.offset}, {b.offset + sb}) overlap while both live (steps {max(fa, fb)}.."
                                f"{min(la, lb)})")

    def dump(self) -> str:
        """One line per buffer: offsets, size, lifetime, and a bar of its live steps ('+' = in-place profile)."""
        steps = max((b.last_use for b in self.buffers.values()), default=-1) + 1
        lines = [f"planner {self.planner}: arena {self.peak_bytes()} B, lower bound {self.lower_bound()} B"]
        if self.baseline:
            lines.append(f"baseline greedy_by_size (ONNX order, no in-place): arena {self.baseline['arena_bytes']} B, "
                         f"lower bound {self.baseline['lower_bound_bytes']} B")
        for name, info in sorted(self.inplace.items()):
            lines.append(f"in place: {name}: {info['output']} over {info['input']}, scratch {info['scratch_bytes']} B")
        for b in sorted(self.buffers.values(), key=lambda b: (b.first_use, b.offset, b.name)):
            bar = "".join(("+" if b.segments else "#") if b.bytes_at(s) else "." for s in range(steps))
            lines.append(f"{b.offset:>8} {b.offset + b.size:>8} {b.size:>8}  [{b.first_use:>3},{b.last_use:>3}] "
                         f"{bar}  {b.name}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        tensors = {}
        for name, b in sorted(self.buffers.items()):
            entry = {"bytes": b.size, "first_use": b.first_use, "last_use": b.last_use, "offset": b.offset}
            if b.segments:
                entry["segments"] = [list(s) for s in b.segments]
            tensors[name] = entry
        return {
            "planner": self.planner,
            "order": self.order,
            "layers": self.layers,
            "arena_bytes": self.peak_bytes(),
            "lower_bound_bytes": self.lower_bound(),
            "peak_step": self.peak_step(),
            "live_bytes": live_bytes(self),
            "tensors": tensors,
            "aliases": dict(sorted(self.aliases.items())),
            "inplace": {k: dict(sorted(v.items())) for k, v in sorted(self.inplace.items())},
            "baseline": self.baseline,
            "candidates": self.candidates,
            "rewrites": self.rewrites,
            "displacements": dict(sorted(self.displacements.items())),
        }


def live_bytes(plan: Plan) -> list[int]:
    """Bytes live at each step (the lower bound is their maximum), in-place profiles counted as they are."""
    return live_per_step(plan.buffers.values())


def _make(graph: Graph, planner: str, order: list[Op], inplace: bool, place) -> Plan:
    buffers, aliases, done = lifetimes(graph, order, inplace)
    how = place(buffers)
    return Plan(planner, [op.name for op in order], buffers, aliases, done, [op.kind for op in order],
                how=how or "first_fit/size", displacements=graph_displacements(graph))


def _summary(result: Plan) -> dict:
    return {"arena_bytes": result.peak_bytes(), "lower_bound_bytes": result.lower_bound()}


def plan(graph: Graph, planner: str = "best", inplace_depthwise: bool = True, reorder: bool = True) -> Plan:
    """Plan the arena of `graph`, and put graph.ops in the plan's order.

    `greedy_by_size`: TFLite Micro's planner on the ONNX order (with in-place depthwise if asked).
    `best`: the smallest arena over the candidates described at the top of this module; never above the baseline.
    """
    if planner not in PLANNERS:
        raise McuforgeError(f"unknown planner '{planner}' (allowed: {', '.join(PLANNERS)})")
    baseline = _make(graph, "greedy_by_size", list(graph.ops), False, greedy_by_size)
    if planner == "greedy_by_size":
        wanted = inplace_depthwise and any(inplace_candidate(graph, op) for op in graph.ops)
        result = _make(graph, planner, list(graph.ops), True, greedy_by_size) if wanted else baseline
        result.candidates = []
    else:
        candidates = [("onnx", False, "greedy_by_size", baseline)]
        for inplace in ([False, True] if inplace_depthwise else [False]):
            orders = candidate_orders(graph, inplace) if reorder else {"onnx": list(graph.ops)}
            for order_name, order in orders.items():
                candidates.append((order_name, inplace, "best", _make(graph, "best", order, inplace, best_placement)))
        # smallest arena; on ties the configuration asked for (in-place on when enabled), then the ONNX order
        ranked = sorted(enumerate(candidates), key=lambda ic: (ic[1][3].peak_bytes(), ic[1][1] != inplace_depthwise,
                                                               ic[0]))
        result = ranked[0][1][3]
        result.planner = "best"
        result.candidates = [{"order": o, "inplace": i, "placement": c.how, "arena_bytes": c.peak_bytes(),
                              "lower_bound_bytes": c.lower_bound()} for o, i, _, c in candidates]
    result.baseline = _summary(baseline)
    result.check_no_overlap()
    apply_order(graph, result.order)
    return result


PLANNERS = {"greedy_by_size": greedy_by_size, "best": best_placement}


def plan_for(graph: Graph, schedule: ScheduleConfig) -> Plan:
    """The plan the pipeline's `schedule:` section asks for (its planner, in-place depthwise and reordering); the
    one entry point of the schedule task, the fused-bottleneck and the patch rewriters, so they judge alike."""
    planner = schedule.planner  # a validated value is the planner's name; an unset default is the Planner member
    name = planner.value if isinstance(planner, Enum) else planner
    return plan(graph, name, schedule.inplace_depthwise, schedule.reorder)


def from_json(data: dict) -> Plan:
    """The Plan written by Plan.to_json (plan.json), for codegen and verify."""
    buffers = {name: Buffer(name, t["bytes"], t["first_use"], t["last_use"], t["offset"],
                            [tuple(s) for s in t.get("segments", [])])
               for name, t in data["tensors"].items()}
    result = Plan(data["planner"], list(data["order"]), buffers, dict(data["aliases"]),
                  dict(data.get("inplace", {})), list(data.get("layers", [])), dict(data.get("baseline", {})),
                  list(data.get("candidates", [])), list(data.get("rewrites", [])),
                  dict(data.get("displacements", {})))
    result.check_no_overlap()
    return result

