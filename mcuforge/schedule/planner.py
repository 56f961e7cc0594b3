"""Arena planning: an op order, and for every activation tensor an offset in one static arena.

Lifetimes: a tensor is live from the step that writes it (the graph input: step 0) to the last step that reads it,
inclusive (the graph output: to the last step). Two buffers may share bytes only if their lifetimes do not overlap;
equal or touching intervals overlap. A view (reshape/flatten) shares its source's buffer, whose lifetime grows to
cover the view's.

In-place depthwise (schedule.inplace_depthwise): when a depthwise convolution is the last reader of its input, its
output is written over the input's bytes (engine kernel mf_depthwise_conv2d_inplace_s8, which keeps a few output
rows in a scratch buffer until the input rows under them are no longer needed). The input's buffer then has a
*profile*: input bytes up to that step, output bytes after it; the scratch is a buffer live at that step only.
At that step the arena needs max(input, output) + scratch instead of input + output; the lower bound credits it.

Planners (placement of buffers, given an op order):
- `greedy_by_size` re-implements TensorFlow Lite Micro's GreedyMemoryPlanner: buffers sorted by size (largest
  first, ties by first use), each placed at the lowest offset where it does not collide with an already placed
  buffer whose lifetime overlaps (first fit). The baseline; reported in every plan (ONNX order, no in-place).
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
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op

ALIGN = 4  # offsets are multiples of 4 so int8 buffers can be read word-wise by future SIMD kernels
EXACT_MAX_BUFFERS = 9
EXACT_NODE_LIMIT = 20_000
IMPROVE_MAX_BUFFERS = 200
IMPROVE_TRIALS = 4000
ORDER_STATE_LIMIT = 50_000


@dataclass
class Buffer:
    name: str
    size: int
    first_use: int
    last_use: int
    offset: int = -1
    segments: list[tuple[int, int, int]] = field(default_factory=list)  # (first, last, bytes); empty = one segment

    def spans(self) -> list[tuple[int, int, int]]:
        return self.segments or [(self.first_use, self.last_use, self.size)]

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first_use <= other.last_use and other.first_use <= self.last_use

    def bytes_at(self, step: int) -> int:
        return sum(size for first, last, size in self.spans() if first <= step <= last)


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
    rewrites: list[dict] = field(default_factory=list)  # graph rewrites planned with (tasks/rewrite.py)
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


def _align(value: int) -> int:
    return (value + ALIGN - 1) // ALIGN * ALIGN


# ---- lifetimes ---------------------------------------------------------------------------------------------------
def view_aliases(graph: Graph) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for op in graph.ops:
        if op.kind == "view":
            src = op.inputs[0]
            aliases[op.output] = aliases.get(src, src)
    return aliases


def scratch_name(op: Op) -> str:
    """The arena buffer of an op's working memory (`attrs["scratch_bytes"]`, e.g. a fused block's row bands)."""
    return f"{op.name}/work"


def inplace_scratch_rows(in_dims, out_dims, stride_h: int, pad_top: int) -> int:
    """Output rows mf_depthwise_conv2d_inplace_s8 holds in scratch (the same walk as its get_buffer_size): row j
    is written back once the first input byte still needed, row (y * stride - pad_top) of the next output row y,
    lies at or after the end of row j's output bytes."""
    in_h, in_w, channels = in_dims
    out_h, out_w, _ = out_dims
    row_in, row_out = in_w * channels, out_w * channels
    flushed, rows = 0, 0
    for out_y in range(out_h):
        need = max(0, out_y * stride_h - pad_top) * row_in
        while flushed < out_y and (flushed + 1) * row_out <= need:
            flushed += 1
        rows = max(rows, out_y - flushed + 1)
    return rows


def inplace_scratch_bytes(graph: Graph, op: Op) -> int:
    src, dst = graph.tensors[op.inputs[0]].shape, graph.tensors[op.output].shape
    rows = inplace_scratch_rows(src, dst, op.attrs["strides"][0], op.attrs["pads"][0])
    return rows * dst[1] * dst[2]


def _inplace_candidate(graph: Graph, op: Op) -> bool:
    if op.kind != "depthwise" or "strides" not in op.attrs or "pads" not in op.attrs:
        return False
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.output]
    if len(src.shape) != 3 or dst.shape[0] > src.shape[0] or dst.shape[1] > src.shape[1]:
        return False
    return inplace_scratch_bytes(graph, op) < dst.bytes


def lifetimes(graph: Graph, order: list[Op] | None = None, inplace: bool = False
              ) -> tuple[dict[str, Buffer], dict[str, str], dict[str, dict]]:
    """Buffers with inclusive lifetimes over `order` (default graph.ops; step i = op i), views folded into their
    sources, and (with `inplace`) eligible depthwise outputs folded into their inputs: (buffers, aliases, inplace)."""
    order = graph.ops if order is None else order
    aliases = view_aliases(graph)
    buffers: dict[str, Buffer] = {}
    displacements = graph_displacements(graph)

    def touch(tensor: str, step: int) -> None:
        root = aliases.get(tensor, tensor)
        buf = buffers.get(root)
        if buf is None:
            buffers[root] = Buffer(root, graph.tensors[root].bytes, step, step)
        else:
            buf.first_use = min(buf.first_use, step)
            buf.last_use = max(buf.last_use, step)

    touch(graph.input, 0)
    for step, op in enumerate(order):
        for name in op.inputs:
            touch(name, step)
        touch(op.output, step)
    touch(graph.output, len(order) - 1)
    for step, op in enumerate(order):  # compound ops (tasks/rewrite.py): working memory live at their step only
        if op.attrs.get("scratch_bytes"):
            scratch = scratch_name(op)
            buffers[scratch] = Buffer(scratch, int(op.attrs["scratch_bytes"]), step, step)
        if "overlay" in op.attrs:
            _overlay(graph, buffers, aliases, displacements, op, step)
    done: dict[str, dict] = {}
    if not inplace:
        return buffers, aliases, done
    input_root = aliases.get(graph.input, graph.input)
    output_root = aliases.get(graph.output, graph.output)
    for step, op in enumerate(order):
        if not _inplace_candidate(graph, op):
            continue
        src = aliases.get(op.inputs[0], op.inputs[0])
        host = buffers[src]
        if src in (input_root, output_root) or host.last_use != step or op.output in aliases:
            continue
        out = buffers.pop(op.output)
        spans = host.spans()
        spans[-1] = (spans[-1][0], step, spans[-1][2])
        if out.last_use > step:
            spans.append((step + 1, out.last_use, out.size))
        host.segments = spans
        host.last_use = max(host.last_use, out.last_use)
        aliases[op.output] = src
        for name, root in list(aliases.items()):
            if root == op.output:
                aliases[name] = src
        scratch = f"{op.name}/scratch"
        size = inplace_scratch_bytes(graph, op)
        buffers[scratch] = Buffer(scratch, size, step, step)
        done[op.name] = {"input": src, "output": op.output, "scratch": scratch, "scratch_bytes": size}
    return buffers, aliases, done


def graph_displacements(graph: Graph) -> dict[str, int]:
    """tensor -> its byte offset inside the buffer it shares (overlays of compound ops; 0 when absent)."""
    return {op.inputs[0]: int(op.attrs["overlay"]) for op in graph.ops if "overlay" in op.attrs}


def _overlay(graph: Graph, buffers: dict[str, Buffer], aliases: dict[str, str], displacements: dict[str, int],
             op: Op, step: int) -> None:
    """A compound op whose output may be written over its dying input (patch-based inference: each output tile
    lands below every input byte a later patch reads): one buffer holds the output at 0 and the input at
    `attrs["overlay"]`, so the step needs overlay + input bytes instead of input + output."""
    src = aliases.get(op.inputs[0], op.inputs[0])
    host = buffers[src]
    if host.last_use != step or host.segments or src == aliases.get(graph.output, graph.output):
        raise McuforgeError(f"plan error: '{op.name}' writes over its input, which is still needed after it")
    out = buffers.pop(op.output)
    at = displacements[op.inputs[0]]
    spans = [(host.first_use, step, max(at + host.size, out.size))]
    if out.last_use > step:
        spans.append((step + 1, out.last_use, out.size))
    host.segments, host.last_use = spans, max(step, out.last_use)
    host.size = max(size for _, _, size in spans)
    aliases[op.output] = src
    for name, root in list(aliases.items()):
        if root == op.output:
            aliases[name] = src


def live_bytes(plan: Plan) -> list[int]:
    """Bytes live at each step (the lower bound is their maximum), in-place profiles counted as they are."""
    steps = max((b.last_use for b in plan.buffers.values()), default=-1) + 1
    live = [0] * steps
    for b in plan.buffers.values():
        for first, last, size in b.spans():
            for step in range(first, last + 1):
                live[step] += size
    return live


# ---- placement ---------------------------------------------------------------------------------------------------
def _colliding_blocks(buf: Buffer, placed: list[Buffer]) -> list[tuple[int, int, int]]:
    """(start, end, bytes `buf` needs there) of every placed segment live at the same time as a segment of `buf`."""
    blocks = []
    for other in placed:
        if not buf.overlaps_in_time(other):
            continue
        for fa, la, sa in buf.spans():
            for fb, lb, sb in other.spans():
                if fa <= lb and fb <= la:
                    blocks.append((other.offset, other.offset + sb, sa))
    return blocks


def first_fit(buf: Buffer, placed: list[Buffer]) -> int:
    """The lowest aligned offset where `buf` collides with no placed buffer (segment by segment in time)."""
    blocks = _colliding_blocks(buf, placed)
    blocks.sort()
    candidate = 0
    moved = True
    while moved:
        moved = False
        for start, end, need in blocks:
            if candidate + need > start and candidate < end:
                candidate = _align(end)
                moved = True
    return candidate


def best_fit(buf: Buffer, placed: list[Buffer]) -> int:
    """The aligned offset whose free gap (up to the next colliding buffer above) fits `buf` most tightly; the top
    of the placed buffers when no gap fits."""
    blocks = _colliding_blocks(buf, placed)
    best, best_gap = None, None
    for candidate in sorted({0} | {_align(end) for _, end, _ in blocks}):
        if any(candidate + need > start and candidate < end for start, end, need in blocks):
            continue
        above = [start for start, _, _ in blocks if start >= candidate]
        gap = (min(above) - candidate) if above else None
        if gap is None:
            if best is None:
                best = candidate
            break
        if best_gap is None or gap < best_gap:
            best, best_gap = candidate, gap
    return best if best is not None else 0


def place_in_order(buffers: list[Buffer], fit=first_fit) -> int:
    placed: list[Buffer] = []
    for buf in buffers:
        buf.offset = fit(buf, placed)
        placed.append(buf)
    return max((b.offset + b.size for b in buffers), default=0)


def improve(order: list[Buffer], arena: int, lower: int) -> tuple[int, list[Buffer]]:
    """Local search over the placement order with first fit: move one buffer to another place in the order (the
    buffers reaching the top of the arena first), keep the first move that lowers the arena, repeat; at most
    IMPROVE_TRIALS placements, stopping at the lower bound. First fit in the order of an optimal plan's offsets
    reproduces that plan, so some order reaches the optimum."""
    trials = 0
    improved = True
    while improved and arena > lower and trials < IMPROVE_TRIALS:
        improved = False
        place_in_order(order)
        movers = sorted(range(len(order)), key=lambda i: (order[i].offset + order[i].size != arena, -order[i].offset, i))
        for i in movers:
            rest = order[:i] + order[i + 1:]
            for j in range(len(order)):
                if j == i:
                    continue
                trial = rest[:j] + [order[i]] + rest[j:]
                trials += 1
                value = place_in_order(trial)
                if value < arena:
                    arena, order, improved = value, trial, True
                    break
                if trials >= IMPROVE_TRIALS:
                    break
            if improved or trials >= IMPROVE_TRIALS:
                break
    place_in_order(order)
    return arena, order


def greedy_by_size(buffers: dict[str, Buffer]) -> None:
    """TFLite Micro's greedy planner: largest first (ties: earlier first use, then name), first fit."""
    place_in_order(sorted(buffers.values(), key=lambda b: (-b.size, b.first_use, b.name)))


def _live_around(buffers: list[Buffer]) -> dict[str, int]:
    steps = max((b.last_use for b in buffers), default=-1) + 1
    live = [0] * steps
    for b in buffers:
        for first, last, size in b.spans():
            for step in range(first, last + 1):
                live[step] += size
    return {b.name: max(live[b.first_use:b.last_use + 1]) for b in buffers}


def placement_orders(buffers: dict[str, Buffer]) -> dict[str, list[Buffer]]:
    items = list(buffers.values())
    around = _live_around(items)
    return {
        "size": sorted(items, key=lambda b: (-b.size, b.first_use, b.name)),
        "first_use": sorted(items, key=lambda b: (b.first_use, -b.size, b.name)),
        "area": sorted(items, key=lambda b: (-b.size * (b.last_use - b.first_use + 1), b.first_use, b.name)),
        "lifetime": sorted(items, key=lambda b: (-(b.last_use - b.first_use), -b.size, b.name)),
        "live_around": sorted(items, key=lambda b: (-around[b.name], -b.size, b.first_use, b.name)),
        "live_around_first_use": sorted(items, key=lambda b: (-around[b.name], b.first_use, -b.size, b.name)),
    }


def exact_placement(buffers: dict[str, Buffer], best: int, lower: int) -> tuple[int, dict[str, int] | None, bool]:
    """Depth-first search over placement orders with first fit, pruned by the best arena so far: (arena, offsets of
    the best plan found or None, finished within EXACT_NODE_LIMIT)."""
    items = sorted(buffers.values(), key=lambda b: (-b.size, b.name))
    best_offsets = None
    nodes = 0
    placed: list[Buffer] = []
    used = [False] * len(items)

    def search(top: int) -> bool:
        nonlocal best, best_offsets, nodes
        if len(placed) == len(items):
            if top < best:
                best, best_offsets = top, {b.name: b.offset for b in items}
            return best > lower
        for i, buf in enumerate(items):
            if used[i]:
                continue
            nodes += 1
            if nodes > EXACT_NODE_LIMIT:
                return False
            buf.offset = first_fit(buf, placed)
            reach = max(top, buf.offset + buf.size)
            if reach >= best:
                continue
            used[i] = True
            placed.append(buf)
            go_on = search(reach)
            placed.pop()
            used[i] = False
            if not go_on:
                return False
        return True

    finished = search(0) or best <= lower
    return best, best_offsets, finished and nodes <= EXACT_NODE_LIMIT


def best_placement(buffers: dict[str, Buffer]) -> str:
    """Our placement: the best of the placement orders, then the exact search for small graphs. Returns how."""
    lower = max(_live_around(list(buffers.values())).values(), default=0)
    best_arena, best_offsets, how = None, None, ""
    for name, ordered in placement_orders(buffers).items():
        for fit_name, fit in (("first_fit", first_fit), ("best_fit", best_fit)):
            arena = place_in_order(ordered, fit)
            if best_arena is None or arena < best_arena:
                best_arena, best_offsets, how = arena, {b.name: b.offset for b in ordered}, f"{fit_name}/{name}"
            if arena <= lower:
                break
        if best_arena <= lower:
            break
    if best_arena is not None and best_arena > lower and len(buffers) <= IMPROVE_MAX_BUFFERS:
        start = sorted(buffers.values(), key=lambda b: (best_offsets[b.name], -b.size, b.name))
        arena, order = improve(start, place_in_order(start), lower)
        if arena < best_arena:
            best_arena, best_offsets, how = arena, {b.name: b.offset for b in order}, how + " + local search"
    if best_arena is not None and best_arena > lower and len(buffers) <= EXACT_MAX_BUFFERS:
        arena, offsets, finished = exact_placement(buffers, best_arena, lower)
        if offsets is not None:
            best_arena, best_offsets = arena, offsets
            how = "exact" if finished else "exact (node limit)"
        elif finished:
            how += " (proven optimal by exact search)"
    for name, offset in (best_offsets or {}).items():
        buffers[name].offset = offset
    return how


# ---- op order ----------------------------------------------------------------------------------------------------
class _TooManyStates(Exception):
    pass


class _OrderModel:
    """The graph as the order search sees it: buffers (views folded), who produces and who reads each."""

    def __init__(self, graph: Graph, inplace: bool):
        self.graph = graph
        self.ops = list(graph.ops)
        aliases = view_aliases(graph)
        self.root = lambda t: aliases.get(t, t)
        self.index = {op.name: i for i, op in enumerate(self.ops)}
        producer_of = {op.output: i for i, op in enumerate(self.ops)}
        self.roots = sorted({self.root(t) for t in graph.tensors if self.root(t) in graph.tensors
                             and (self.root(t) == self.root(graph.input) or self.root(t) in producer_of)})
        self.rid = {r: i for i, r in enumerate(self.roots)}
        self.size = [graph.tensors[r].bytes for r in self.roots]
        self.producer = [producer_of.get(r, -1) for r in self.roots]
        self.readers = [0] * len(self.roots)
        self.deps = [0] * len(self.ops)
        self.new_root = [-1] * len(self.ops)
        for i, op in enumerate(self.ops):
            for name in op.inputs:
                r = self.rid[self.root(name)]
                self.readers[r] |= 1 << i
                if name in producer_of:
                    self.deps[i] |= 1 << producer_of[name]
            if op.kind != "view":
                self.new_root[i] = self.rid[op.output]
        self.keep = {self.rid[self.root(graph.output)]}
        self.input_root = self.rid[self.root(graph.input)]
        self.credit = [0] * len(self.ops)  # bytes saved by running op i in place (output size - scratch)
        self.inplace_src = [-1] * len(self.ops)
        if inplace:
            for i, op in enumerate(self.ops):
                src = self.rid[self.root(op.inputs[0])] if op.inputs else -1
                if _inplace_candidate(graph, op) and src not in self.keep and src != self.input_root \
                        and self.root(op.output) == op.output:
                    self.credit[i] = graph.tensors[op.output].bytes - inplace_scratch_bytes(graph, op)
                    self.inplace_src[i] = src

    def live_before(self, done: int) -> int:
        total = 0
        for r, size in enumerate(self.size):
            made = r == self.input_root or (self.producer[r] >= 0 and done >> self.producer[r] & 1)
            if made and (r in self.keep or self.readers[r] & ~done):
                total += size
        return total

    def step_peak(self, done: int, i: int, live: int) -> int:
        extra = self.size[self.new_root[i]] if self.new_root[i] >= 0 else 0
        src = self.inplace_src[i]
        if src >= 0 and not (self.readers[src] & ~(done | 1 << i)):
            extra -= self.credit[i]
        return live + extra

    def ready(self, done: int) -> list[int]:
        return [i for i in range(len(self.ops)) if not done >> i & 1 and self.deps[i] & ~done == 0]

    def exact(self) -> list[Op]:
        """The order minimising the peak of live bytes (dynamic programming over executed sets; ties keep the
        ONNX order)."""
        full = (1 << len(self.ops)) - 1
        memo: dict[int, tuple[int, int]] = {full: (0, -1)}

        def best(done: int) -> int:
            if done in memo:
                return memo[done][0]
            if len(memo) > ORDER_STATE_LIMIT:
                raise _TooManyStates
            live = self.live_before(done)
            value, choice = None, -1
            for i in self.ready(done):
                peak = self.step_peak(done, i, live)
                if value is not None and peak >= value:
                    continue
                peak = max(peak, best(done | 1 << i))
                if value is None or peak < value:
                    value, choice = peak, i
            memo[done] = (value, choice)
            return value

        limit = sys.getrecursionlimit()
        sys.setrecursionlimit(max(limit, 4 * len(self.ops) + 100))
        try:
            best(0)
        finally:
            sys.setrecursionlimit(limit)
        order, done = [], 0
        while done != full:
            i = memo[done][1]
            order.append(self.ops[i])
            done |= 1 << i
        return order

    def greedy(self) -> list[Op]:
        """Among ready ops, the one with the lowest step peak, then the lowest live bytes after it."""
        order, done = [], 0
        for _ in self.ops:
            live = self.live_before(done)
            choice = min(self.ready(done), key=lambda i: (self.step_peak(done, i, live),
                                                          self.live_before(done | 1 << i), i))
            order.append(self.ops[choice])
            done |= 1 << choice
        return order


def candidate_orders(graph: Graph, inplace: bool) -> dict[str, list[Op]]:
    """The ONNX order, and the order that minimises the peak of live bytes (exact or greedy)."""
    orders = {"onnx": list(graph.ops)}
    model = _OrderModel(graph, inplace)
    try:
        orders["min_peak_exact"] = model.exact()
    except _TooManyStates:
        orders["min_peak_greedy"] = model.greedy()
    return orders


# ---- plans -------------------------------------------------------------------------------------------------------
def check_order(graph: Graph, order: list[Op]) -> None:
    """Raise unless `order` runs every op of the graph once, each after the ops producing its inputs."""
    if sorted(op.name for op in order) != sorted(op.name for op in graph.ops):
        raise McuforgeError("plan error: the op order does not list the model's ops; re-run the schedule task")
    produced = {graph.input}
    for op in order:
        missing = [name for name in op.inputs if name not in produced]
        if missing:
            raise McuforgeError(f"plan error: op '{op.name}' runs before its input {missing[0]} is produced")
        produced.add(op.output)


def apply_order(graph: Graph, names: list[str]) -> None:
    """Put graph.ops in the plan's order (codegen and verify index layers in execution order)."""
    by_name = {op.name: op for op in graph.ops}
    if len(by_name) != len(graph.ops) or sorted(names) != sorted(by_name):
        raise McuforgeError("plan error: the plan's op order does not match the model; re-run the schedule task")
    order = [by_name[name] for name in names]
    check_order(graph, order)
    graph.ops = order


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
        wanted = inplace_depthwise and any(_inplace_candidate(graph, op) for op in graph.ops)
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


def plan_for(graph: Graph, schedule) -> Plan:
    """The plan the pipeline's `schedule:` section asks for (its planner, in-place depthwise and reordering); the
    one entry point of the schedule task, the fused-bottleneck and the patch rewriters, so they judge alike."""
    return plan(graph, schedule["planner"], schedule["inplace_depthwise"], schedule["reorder"])


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

