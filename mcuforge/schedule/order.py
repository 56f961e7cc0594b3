"""Op order: the order the ops run in, which decides the tensors' lifetimes and so the arena's lower bound.

`candidate_orders` gives the ONNX order and the topological order that minimises the peak of live bytes: exact
dynamic programming over the sets of executed ops while it visits at most ORDER_STATE_LIMIT states (a count, not
wall time, so orders are reproducible across machines), a greedy choice among ready ops otherwise. With in-place
depthwise, running a depthwise convolution as the last reader of its input is credited with the bytes it saves.
`check_order` / `apply_order` validate a recorded order and put a graph's ops in it.
"""
from __future__ import annotations

import sys

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op
from mcuforge.schedule.lifetimes import inplace_candidate, inplace_scratch_bytes, view_aliases

ORDER_STATE_LIMIT = 50_000


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
                if inplace_candidate(graph, op) and src not in self.keep and src != self.input_root \
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
