"""Fused inverted bottlenecks: a 1x1 expansion -> depthwise -> 1x1 projection chain run as one op
(`mbconv_fused`, engine kernel mf_mbconv_fused_s8), row band by row band, so its expanded tensor never exists whole.

Layer by layer, the block's steps need input + expanded (C_in*H*W + e*C_in*H*W), expanded + depthwise output, and
depthwise output + output; fused, one step needs input + output + scratch, the scratch being the few expanded rows
the depthwise window spans (a ring of min(H, dilation * (K - 1) + 1) rows) and one depthwise output row. Outputs
are byte-identical (same int32 sums, same requantization).

A chain qualifies when both 1x1 convolutions have stride 1, the expanded and depthwise tensors each have exactly
one reader (the next op of the chain) and neither is the model's output. Chains may overlap (MobileNetV1's
pw -> dw -> pw -> dw -> pw: the middle 1x1 projects one and expands the next); fused blocks may not. `choose` plans
with every qualifying block fused (of overlapping ones, the first in graph order), un-fuses each block whose
removal does not grow the arena, tries each block left out in place of the kept blocks it overlaps (kept when the
arena shrinks), prunes again, and applies the result if its arena is below the unfused one: every block fused is
one the arena needs. Each step is a full plan of the graph (plan.py), about 3 plans per block. The spec
is JSON:
{"kind": "fuse_mbconv", "blocks": [[expand, depthwise, project], ...] (op names), "summary": ...}.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Compound, Graph, Op
from mcuforge.schedule.plan import plan_for

if TYPE_CHECKING:
    from schemas.pipeline import ScheduleConfig

KIND = "mbconv_fused"
STAGES = ("expand", "depthwise", "project")


def expanded_rows(in_h: int, out_h: int, k_h: int, stride_h: int, dilation_h: int, pad_top: int) -> int:
    """Expanded rows mf_mbconv_fused_s8 computes (its walk): each row some depthwise window reads, once."""
    reach = dilation_h * (k_h - 1)
    next_row, computed = 0, 0
    for out_y in range(out_h):
        top = out_y * stride_h - pad_top
        first, last = max(top, 0), min(top + reach, in_h - 1)
        next_row = max(next_row, first)
        if next_row <= last:
            computed += last - next_row + 1
            next_row = last + 1
    return computed


def scratch_bytes(in_shape, out_shape, mid_c: int, k_h: int, dilation_h: int) -> int:
    """mf_mbconv_fused_s8_get_buffer_size: a ring of expanded rows plus one depthwise output row."""
    in_h, in_w, _ = in_shape
    ring = min(in_h, dilation_h * (k_h - 1) + 1)
    return (ring * in_w + out_shape[1]) * mid_c


def _readers(graph: Graph) -> dict[str, list[Op]]:
    readers: dict[str, list[Op]] = {}
    for op in graph.ops:
        for name in op.inputs:
            readers.setdefault(name, []).append(op)
    return readers


def _pointwise(op: Op) -> bool:
    return op.kind == "conv1x1" and list(op.attrs.get("strides", [1, 1])) == [1, 1]


def candidates(graph: Graph) -> list[list[str]]:
    """[expand, depthwise, project] op names of every qualifying chain, in graph order."""
    readers = _readers(graph)
    blocks = []
    for op in graph.ops:
        if not _pointwise(op) or len(graph.tensors[op.inputs[0]].shape) != 3:
            continue
        after = readers.get(op.output, [])
        if len(after) != 1 or after[0].kind != "depthwise" or op.output == graph.output:
            continue
        dw = after[0]
        last = readers.get(dw.output, [])
        if len(last) != 1 or not _pointwise(last[0]) or dw.output == graph.output:
            continue
        blocks.append([op.name, dw.name, last[0].name])
    return blocks


def fused_op(graph: Graph, expand: Op, depthwise: Op, project: Op) -> Op:
    """One `mbconv_fused` op running the three (they are not removed from the graph here)."""
    src = graph.tensors[expand.inputs[0]]
    mid = graph.tensors[depthwise.output]
    out = graph.tensors[project.output]
    k_h = depthwise.consts["weight"].shape[0]
    stride_h = depthwise.attrs["strides"][0]
    dilation_h = depthwise.attrs["dilations"][0]
    pad_top = depthwise.attrs["pads"][0]
    cin, mid_c = src.shape[2], mid.shape[2]
    rows = expanded_rows(src.shape[0], mid.shape[0], k_h, stride_h, dilation_h, pad_top)
    macs = rows * src.shape[1] * mid_c * cin + depthwise.macs(graph.tensors) + project.macs(graph.tensors)
    stages = []
    consts = {}
    for stage, op in zip(STAGES, (expand, depthwise, project)):
        stages.append({"name": op.name, "kind": op.kind, "onnx_type": op.onnx_type, "input": op.inputs[0],
                       "output": op.output, "attrs": dict(op.attrs), "nodes": list(op.nodes)})
        consts.update({f"{stage}/{key}": value for key, value in op.consts.items()})
    layer_macs = sum(op.macs(graph.tensors) for op in (expand, depthwise, project))
    compound = Compound(macs=int(macs), layer_macs=int(layer_macs),
                        scratch_bytes=scratch_bytes(src.shape, out.shape, mid_c, k_h, dilation_h))
    nodes = [node for op in (expand, depthwise, project) for node in op.nodes]
    return Op(KIND, f"{expand.name}+fused", "MBConv", [expand.inputs[0]], project.output, {"stages": stages}, consts,
              nodes, compound)


def inner_ops(op: Op) -> list[Op]:
    """The expansion, depthwise and projection ops a `mbconv_fused` op runs (for codegen and reports)."""
    ops = []
    for stage, info in zip(STAGES, op.attrs["stages"]):
        consts = {key.split("/", 1)[1]: value for key, value in op.consts.items() if key.startswith(stage + "/")}
        ops.append(Op(info["kind"], info["name"], info["onnx_type"], [info["input"]], info["output"],
                      dict(info["attrs"]), consts, list(info["nodes"])))
    return ops


def _fuse(graph: Graph, names: list[str]) -> None:
    by_name = {op.name: op for op in graph.ops}
    missing = [name for name in names if name not in by_name]
    if missing:
        raise McuforgeError(f"plan error: fused block {'/'.join(names)}: op '{missing[0]}' is not in the model; "
                            "re-run the schedule task")
    expand, depthwise, project = (by_name[name] for name in names)
    fused = fused_op(graph, expand, depthwise, project)
    drop = {depthwise.name, project.name}
    graph.ops = [fused if op is expand else op for op in graph.ops if op.name not in drop]


def apply(graph: Graph, spec: dict) -> None:
    """Replace each block of `spec` with its fused op (at the expansion's place in graph.ops)."""
    qualifying = {tuple(block) for block in candidates(graph)}
    used: set[str] = set()
    for block in spec["blocks"]:
        if tuple(block) not in qualifying:
            raise McuforgeError(f"plan error: {' -> '.join(block)} is not a fusable inverted bottleneck of this "
                                "model; re-run the schedule task")
        if used & set(block):
            raise McuforgeError(f"plan error: fused block {' -> '.join(block)} shares an op with another fused "
                                "block; re-run the schedule task")
        used |= set(block)
        _fuse(graph, list(block))


def _arena(graph: Graph, blocks: list[list[str]], schedule: ScheduleConfig) -> int:
    trial = dataclasses.replace(graph, ops=list(graph.ops))  # planning reorders the ops it is given
    for block in blocks:
        _fuse(trial, block)
    return plan_for(trial, schedule).peak_bytes()


def _overlap(a: list[str], b: list[str]) -> bool:
    return bool(set(a) & set(b))


def choose(graph: Graph, schedule: ScheduleConfig) -> list[dict]:
    """The fused blocks that lower the planned arena (see the module docstring), applied to `graph`."""
    if not schedule.fuse_mbconv:
        return []
    blocks = candidates(graph)
    if not blocks:
        return []
    rank = {tuple(block): i for i, block in enumerate(blocks)}

    def arena(chosen: list[list[str]]) -> int:
        return _arena(graph, chosen, schedule)

    def prune(chosen: list[list[str]], value: int) -> tuple[list[list[str]], int]:
        for block in list(chosen):  # un-fuse what the arena does not need
            fewer = [b for b in chosen if b != block]
            smaller = arena(fewer)
            if smaller <= value:
                chosen, value = fewer, smaller
        return chosen, value

    unfused = arena([])
    kept: list[list[str]] = []
    for block in blocks:  # chains may share a 1x1 (pw -> dw -> pw -> dw -> pw): first come, first kept
        if not any(_overlap(block, other) for other in kept):
            kept.append(block)
    kept, best = prune(kept, arena(kept))
    for block in blocks:  # a block left out, in place of the kept ones it overlaps
        if block in kept:
            continue
        swapped = sorted([b for b in kept if not _overlap(b, block)] + [block], key=lambda b: rank[tuple(b)])
        value = arena(swapped)
        if value < best:
            kept, best = swapped, value
    kept, best = prune(kept, best)
    if not kept or best >= unfused:
        return []
    spec = {"kind": "fuse_mbconv", "blocks": kept,
            "summary": f"{len(kept)} inverted bottleneck{'s' if len(kept) != 1 else ''} fused"}
    apply(graph, spec)
    return [spec]
