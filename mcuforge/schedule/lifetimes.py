"""Buffers and their lifetimes: which arena bytes each activation tensor needs, and when.

Lifetimes: a tensor is live from the step that writes it (the graph input: step 0) to the last step that reads it,
inclusive (the graph output: to the last step). Two buffers may share bytes only if their lifetimes do not overlap;
equal or touching intervals overlap. A view (reshape/flatten) shares its source's buffer, whose lifetime grows to
cover the view's.

In-place depthwise (schedule.inplace_depthwise): when a depthwise convolution is the last reader of its input, its
output is written over the input's bytes (engine kernel mf_depthwise_conv2d_inplace_s8, which keeps a few output
rows in a scratch buffer until the input rows under them are no longer needed). The input's buffer then has a
*profile*: input bytes up to that step, output bytes after it; the scratch is a buffer live at that step only.
At that step the arena needs max(input, output) + scratch instead of input + output; the lower bound credits it.

Compound ops (mcuforge/schedule/rewrite.py) add a working-memory buffer live at their step only, and a patch stage
may overlay its output on its dying input (`Op.compound.overlay`: the input's displacement inside the shared buffer).
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op


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


def live_per_step(buffers: Iterable[Buffer]) -> list[int]:
    """Bytes live at each step, in-place profiles counted as they are."""
    buffers = list(buffers)
    steps = max((b.last_use for b in buffers), default=-1) + 1
    live = [0] * steps
    for b in buffers:
        for first, last, size in b.spans():
            for step in range(first, last + 1):
                live[step] += size
    return live


def view_aliases(graph: Graph) -> dict[str, str]:
    aliases: dict[str, str] = {}
    for op in graph.ops:
        if op.kind == "view":
            src = op.inputs[0]
            aliases[op.output] = aliases.get(src, src)
    return aliases


def scratch_name(op: Op) -> str:
    """The arena buffer of an op's working memory (`Op.compound.scratch_bytes`, e.g. a fused block's row bands)."""
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


def inplace_candidate(graph: Graph, op: Op) -> bool:
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
    for step, op in enumerate(order):  # compound ops (rewrite.py): working memory live at their step only
        if op.compound is not None and op.compound.scratch_bytes:
            scratch = scratch_name(op)
            buffers[scratch] = Buffer(scratch, op.compound.scratch_bytes, step, step)
        if op.compound is not None and op.compound.overlay is not None:
            _overlay(graph, buffers, aliases, displacements, op, step)
    done: dict[str, dict] = {}
    if not inplace:
        return buffers, aliases, done
    input_root = aliases.get(graph.input, graph.input)
    output_root = aliases.get(graph.output, graph.output)
    for step, op in enumerate(order):
        if not inplace_candidate(graph, op):
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
    return {op.inputs[0]: op.compound.overlay for op in graph.ops
            if op.compound is not None and op.compound.overlay is not None}


def _overlay(graph: Graph, buffers: dict[str, Buffer], aliases: dict[str, str], displacements: dict[str, int],
             op: Op, step: int) -> None:
    """A compound op whose output may be written over its dying input (patch-based inference: each output tile
    lands below every input byte a later patch reads): one buffer holds the output at 0 and the input at
    `Op.compound.overlay`, so the step needs overlay + input bytes instead of input + output."""
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
