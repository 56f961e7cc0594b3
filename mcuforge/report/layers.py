"""The review's per-layer table: one row per op in the plan's order (shapes, MACs, weight and activation bytes, live
bytes and arena offset), with the instructions verify counted per layer under QEMU when it did."""
from __future__ import annotations

from mcuforge.ir.graph import Graph, Op
from mcuforge.report import energy
from mcuforge.schedule import planner, rewrite


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def _short(name: str) -> str:
    """A readable op name: the ONNX node path without the exporter's repetition."""
    parts = [p for p in name.strip("/").split("/") if p]
    keep = [p for i, p in enumerate(parts) if i + 1 == len(parts) or not parts[i + 1].startswith(p)]
    return "/".join(keep)


def layer_table(paths, requant: str) -> tuple[list[dict], Graph, list[Op]]:
    """(rows, graph, ops): the int8 model as the plan runs it (rewrites applied, ops in the plan's order)."""
    graph, plan = rewrite.planned(paths.int8, paths.plan)
    live = planner.live_bytes(plan)
    ops = graph.ops
    rows = []
    for step, op in enumerate(ops):
        # compound ops (mcuforge/schedule/fuse.py) keep each inner op's constants as "<stage>/weight", "<stage>/bias"
        weights = [v for k, v in op.consts.items() if k.rsplit("/", 1)[-1] == "weight"]
        biases = [v for k, v in op.consts.items() if k.rsplit("/", 1)[-1] == "bias"]
        traffic = energy.layer_traffic(op, graph.tensors, requant)
        rows.append({
            "index": step,
            "kind": op.kind,
            "name": _short(op.name),
            "inputs": ", ".join(_shape(graph.tensors[t].shape) for t in op.inputs),
            "output": _shape(graph.tensors[op.output].shape),
            "macs": op.macs(graph.tensors),
            "weight_bytes": sum(int(w.size) for w in weights),
            "bias_bytes": sum(int(b.nbytes) for b in biases),
            "in_bytes": sum(graph.tensors[t].bytes for t in op.inputs),
            "out_bytes": graph.tensors[op.output].bytes,
            "live_bytes": live[step] if step < len(live) else 0,
            "offset": plan.offset(op.output),
            "flash_read": traffic["flash_read"],
        })
    return rows, graph, ops


def layer_instructions(rows: list[dict], ops, verify: dict | None) -> dict | None:
    """Adds each layer's instruction count under QEMU (verify's layer-dump run: mean over the layer samples) and
    instructions per MAC to the per-layer rows; returns verify's summary (sum, tail, whole inference, difference),
    or None when verify counted no layers (no QEMU machine, deploy.emulate off, layer_samples 0, an older report)."""
    layers = (verify or {}).get("layers", [])
    summary = (verify or {}).get("layer_instructions")
    counted = (summary is not None and ops is not None and len(layers) == len(rows)
               and all("instructions" in layer and layer["name"] == op.name for layer, op in zip(layers, ops)))
    for row, layer in zip(rows, layers if counted else [{}] * len(rows)):
        row["instructions"] = layer.get("instructions")
        row["instructions_per_mac"] = row["instructions"] / row["macs"] if counted and row["macs"] else None
    return summary if counted else None
