"""Arena planning: every activation tensor gets an offset in one static arena.

Lifetimes: a tensor is live from the step that writes it (the graph input: step 0) to the last step that reads it,
inclusive (the graph output: to the last step). Two tensors may share bytes only if their lifetimes do not overlap;
equal or touching intervals overlap. A view (reshape/flatten) shares its source's buffer, whose lifetime grows to
cover the view's.

`greedy_by_size` re-implements TensorFlow Lite Micro's GreedyMemoryPlanner: buffers sorted by size (largest first,
ties by first use), each placed at the lowest offset where it does not collide with an already placed buffer whose
lifetime overlaps. It is not optimal; the lower bound (max over steps of the bytes live at that step) says how far
from optimal a plan can be.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .errors import McuforgeError
from .graph import Graph

ALIGN = 4  # offsets are multiples of 4 so int8 buffers can be read word-wise by future SIMD kernels


@dataclass
class Buffer:
    name: str
    size: int
    first_use: int
    last_use: int
    offset: int = -1

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first_use <= other.last_use and other.first_use <= self.last_use


@dataclass
class Plan:
    planner: str
    order: list[str]
    buffers: dict[str, Buffer]
    aliases: dict[str, str] = field(default_factory=dict)  # view tensor -> buffer it shares

    def offset(self, tensor: str) -> int:
        return self.buffers[self.aliases.get(tensor, tensor)].offset

    def peak_bytes(self) -> int:
        return max((b.offset + b.size for b in self.buffers.values()), default=0)

    def lower_bound(self) -> int:
        return max(live_bytes(self), default=0)

    def check_no_overlap(self) -> None:
        """Raise if two buffers that are live at the same time share a byte."""
        items = sorted(self.buffers.values(), key=lambda b: b.offset)
        for i, a in enumerate(items):
            for b in items[i + 1:]:
                if b.offset >= a.offset + a.size:
                    break
                if a.overlaps_in_time(b):
                    raise McuforgeError(f"plan error: {a.name} [{a.offset}, {a.offset + a.size}) and {b.name} "
                                        f"[{b.offset}, {b.offset + b.size}) overlap while both live")

    def dump(self) -> str:
        """One line per buffer: offsets, size, lifetime, and a bar of its live steps."""
        steps = max((b.last_use for b in self.buffers.values()), default=-1) + 1
        lines = [f"planner {self.planner}: arena {self.peak_bytes()} B, lower bound {self.lower_bound()} B"]
        for b in sorted(self.buffers.values(), key=lambda b: (b.first_use, b.offset)):
            bar = "".join("#" if b.first_use <= s <= b.last_use else "." for s in range(steps))
            lines.append(f"{b.offset:>8} {b.offset + b.size:>8} {b.size:>8}  [{b.first_use:>3},{b.last_use:>3}] {bar}  {b.name}")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "planner": self.planner,
            "order": self.order,
            "arena_bytes": self.peak_bytes(),
            "lower_bound_bytes": self.lower_bound(),
            "tensors": {
                name: {"bytes": b.size, "first_use": b.first_use, "last_use": b.last_use, "offset": b.offset}
                for name, b in sorted(self.buffers.items())
            },
            "aliases": dict(sorted(self.aliases.items())),
        }


def _align(value: int) -> int:
    return (value + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(graph: Graph) -> tuple[dict[str, Buffer], dict[str, str]]:
    """Buffers with inclusive lifetimes over the op order of `graph` (step i = op i), views folded into sources."""
    aliases: dict[str, str] = {}
    for op in graph.ops:
        if op.kind == "view":
            src = op.inputs[0]
            aliases[op.output] = aliases.get(src, src)
    buffers: dict[str, Buffer] = {}

    def touch(tensor: str, step: int) -> None:
        root = aliases.get(tensor, tensor)
        buf = buffers.get(root)
        if buf is None:
            buffers[root] = Buffer(root, graph.tensors[root].bytes, step, step)
        else:
            buf.first_use = min(buf.first_use, step)
            buf.last_use = max(buf.last_use, step)

    touch(graph.input, 0)
    for step, op in enumerate(graph.ops):
        for name in op.inputs:
            touch(name, step)
        touch(op.output, step)
    touch(graph.output, len(graph.ops) - 1)
    return buffers, aliases


def greedy_by_size(buffers: dict[str, Buffer]) -> None:
    """TFLite Micro's greedy planner: largest first, first fit among time-overlapping placed buffers."""
    placed: list[Buffer] = []
    for buf in sorted(buffers.values(), key=lambda b: (-b.size, b.first_use, b.name)):
        candidate = 0
        for other in sorted((p for p in placed if p.overlaps_in_time(buf)), key=lambda p: p.offset):
            if candidate + buf.size <= other.offset:
                break
            candidate = max(candidate, _align(other.offset + other.size))
        buf.offset = candidate
        placed.append(buf)


PLANNERS = {"greedy_by_size": greedy_by_size}


def plan(graph: Graph, planner: str = "greedy_by_size") -> Plan:
    buffers, aliases = lifetimes(graph)
    PLANNERS[planner](buffers)
    result = Plan(planner, [op.name for op in graph.ops], buffers, aliases)
    result.check_no_overlap()
    return result


def from_json(data: dict) -> Plan:
    """The Plan written by Plan.to_json (plan.json), for codegen."""
    buffers = {name: Buffer(name, t["bytes"], t["first_use"], t["last_use"], t["offset"])
               for name, t in data["tensors"].items()}
    result = Plan(data["planner"], list(data["order"]), buffers, dict(data["aliases"]))
    result.check_no_overlap()
    return result


def live_bytes(plan: Plan) -> list[int]:
    """Bytes live at each step (the lower bound is their maximum)."""
    steps = max((b.last_use for b in plan.buffers.values()), default=-1) + 1
    return [sum(b.size for b in plan.buffers.values() if b.first_use <= s <= b.last_use) for s in range(steps)]
