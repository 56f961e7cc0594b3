"""Patch-based inference (MCUNetV2): the first layers run patch by patch, so only one patch's activations are live.

The *stage* is a run of spatial layers (convolutions, depthwise, pools, residual adds) that reads one tensor, X
(the model input), and hands one tensor, S (its last output), to the rest of the model. S is cut into a grid of
tiles; for each tile the layers are walked backwards to find the box of every stage tensor that tile needs (a
convolution's receptive field grows by its kernel and stride: the *halo*, computed again by neighbouring patches,
which is the MACs overhead). Each patch then copies its box of X, runs every layer on boxes, and copies its tile
into S. Only X, S and one patch's boxes are live during the stage, instead of the stage's largest
layer-by-layer pair of tensors.

Exactness: a layer run on a box sees padding only where the box touches the real border of its input (elsewhere
the halo rows are real data), so every value is computed from the same inputs by the same kernel arithmetic as
layer by layer: outputs are byte-identical (tests/test_patch.py, host and QEMU).

Constraints: inside the stage, a tensor read by two layers must be needed in the same box by both, unless the extra
reader is an add (the add reads its box out of the larger one row by row). The stage's op set is the first
`layers` ops of the model in its ONNX order; `choose` tries every valid length and grid, keeping the smallest
planned arena whose MACs overhead (relative to the whole model) stays within `patch_max_macs_overhead`, judging
each by the arena after the rewrite that follows patching (fuse.py).
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Compound, Graph, Op
from mcuforge.schedule import fuse
from mcuforge.schedule.lifetimes import Buffer
from mcuforge.schedule.placement import ALIGN, best_placement
from mcuforge.schedule.plan import plan_for

if TYPE_CHECKING:
    from schemas.pipeline import ScheduleConfig

WINDOW_KINDS = ("conv", "conv1x1", "depthwise", "avgpool", "maxpool", "avgpool_tflite")
STAGE_KINDS = WINDOW_KINDS + ("add",)
AUTO_GRIDS = (2, 3, 4, 5, 6, 8, 10, 12)


@dataclass(frozen=True)
class Box:
    """Rows [y0, y1) and columns [x0, x1) of a tensor."""
    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    def union(self, other: "Box | None") -> "Box":
        if other is None:
            return self
        return Box(min(self.y0, other.y0), max(self.y1, other.y1), min(self.x0, other.x0), max(self.x1, other.x1))


def window(op: Op) -> tuple[tuple[int, int], tuple[int, int], tuple[int, int], list[int]]:
    """(kernel, strides, dilations, pads [top, left, bottom, right]) of a window op."""
    if op.kind in ("conv", "conv1x1"):
        kernel = tuple(op.consts["weight"].shape[1:3])
    elif op.kind == "depthwise":
        kernel = tuple(op.consts["weight"].shape[0:2])
    else:
        kernel = tuple(op.attrs["kernel"])
    return kernel, tuple(op.attrs["strides"]), tuple(op.attrs.get("dilations", (1, 1))), list(op.attrs["pads"])


def need(op: Op, out: Box, in_shape: tuple[int, ...]) -> Box:
    """The box of the input that `op` reads to compute the box `out` of its output (clipped to the input)."""
    if op.kind == "add":
        return out
    (kh, kw), (sh, sw), (dh, dw), pads = window(op)
    y0, x0 = out.y0 * sh - pads[0], out.x0 * sw - pads[1]
    y1, x1 = (out.y1 - 1) * sh - pads[0] + (kh - 1) * dh + 1, (out.x1 - 1) * sw - pads[1] + (kw - 1) * dw + 1
    return Box(max(0, y0), min(in_shape[0], y1), max(0, x0), min(in_shape[1], x1))


def box_padding(op: Op, out: Box, src: Box) -> list[int]:
    """Padding [top, left, bottom, right] that makes `op` on the input box `src` produce exactly the output box
    `out`: the real padding where the box touches the border, none inside (the halo is real data there)."""
    (kh, kw), (sh, sw), (dh, dw), pads = window(op)
    top, left = src.y0 - (out.y0 * sh - pads[0]), src.x0 - (out.x0 * sw - pads[1])
    bottom = (out.y1 - 1) * sh - pads[0] + (kh - 1) * dh + 1 - src.y1
    right = (out.x1 - 1) * sw - pads[1] + (kw - 1) * dw + 1 - src.x1
    return [top, left, bottom, right]


def tiles(shape: tuple[int, ...], grid: tuple[int, int]) -> list[Box]:
    """The grid's tiles of an (h, w, c) tensor, row by row; sizes differ by at most one pixel."""
    gh, gw = grid
    h, w = shape[0], shape[1]
    rows = [(i * h // gh, (i + 1) * h // gh) for i in range(gh)]
    cols = [(j * w // gw, (j + 1) * w // gw) for j in range(gw)]
    return [Box(y0, y1, x0, x1) for y0, y1 in rows for x0, x1 in cols]


@dataclass
class Stage:
    ops: list[Op]        # the stage's layers, in execution order
    source: str          # X: the one tensor read from outside the stage
    output: str          # S: the one tensor used after it
    grid: tuple[int, int]
    boxes: list[dict[str, Box]]  # per patch: the box of every stage tensor (and of X) it computes or reads

    def patch_macs(self, graph: Graph) -> int:
        total = 0
        for boxes in self.boxes:
            for op in self.ops:
                out = graph.tensors[op.output].shape
                total += op.macs(graph.tensors) // (out[0] * out[1]) * boxes[op.output].h * boxes[op.output].w
        return total

    def layer_macs(self, graph: Graph) -> int:
        return sum(op.macs(graph.tensors) for op in self.ops)


def stage_io(graph: Graph, ops: list[Op], later: list[Op]) -> tuple[str, str] | None:
    """(X, S) when `ops` can form a stage followed by `later`; None otherwise."""
    if not ops or any(op.kind not in STAGE_KINDS or len(graph.tensors[op.output].shape) != 3 for op in ops):
        return None
    produced = {op.output for op in ops}
    sources = {name for op in ops for name in op.inputs if name not in produced}
    used_after = {name for op in later for name in op.inputs} | {graph.output}
    escaping = produced & used_after
    if len(sources) != 1 or len(escaping) != 1:
        return None
    (source,), (output,) = sources, escaping
    if len(graph.tensors[source].shape) != 3 or output != ops[-1].output or source in used_after:
        return None
    return source, output


def boxes_for(graph: Graph, ops: list[Op], output: str, tile: Box) -> dict[str, Box] | None:
    """Every stage tensor's box for one tile of S, or None when some layer would need a box other than the one
    its input is computed in (two readers with different halos; adds excepted)."""
    boxes: dict[str, Box] = {output: tile}
    needs: list[tuple[Op, str, Box]] = []
    for op in reversed(ops):
        out = boxes.get(op.output)
        if out is None:  # a dead layer: nothing downstream reads it
            return None
        for name in op.inputs:
            box = need(op, out, graph.tensors[name].shape)
            boxes[name] = box.union(boxes.get(name))
            needs.append((op, name, box))
    for op, name, box in needs:
        if op.kind != "add" and box != boxes[name]:
            return None
    return boxes


def make_stage(graph: Graph, ops: list[Op], later: list[Op], grid: tuple[int, int]) -> Stage | None:
    io = stage_io(graph, ops, later)
    if io is None:
        return None
    source, output = io
    shape = graph.tensors[output].shape
    if grid[0] > shape[0] or grid[1] > shape[1] or grid == (1, 1):
        return None
    per_patch = []
    for tile in tiles(shape, grid):
        boxes = boxes_for(graph, ops, output, tile)
        if boxes is None:
            return None
        per_patch.append(boxes)
    return Stage(ops, source, output, grid, per_patch)


# ---- the patch's working memory ----------------------------------------------------------------------------------
def local_buffers(graph: Graph, stage: Stage) -> dict[str, Buffer]:
    """One patch's buffers over its local steps (0: copy in the box of X, 1..n: the layers, n + 1: copy the tile
    out), each as large as its largest box over the patches. `in` is the copy of X's box."""
    def size(name: str) -> int:
        channels = graph.tensors[name].shape[2]
        return max(b[name].h * b[name].w * channels for b in stage.boxes)

    buffers = {"in": Buffer("in", size(stage.source), 0, 0)}
    local = {stage.source: "in"}
    for step, op in enumerate(stage.ops, start=1):
        for name in op.inputs:
            buf = buffers[local[name]]
            buf.last_use = max(buf.last_use, step)
        local[op.output] = op.output
        buffers[op.output] = Buffer(op.output, size(op.output), step, step)
    buffers[stage.output].last_use = len(stage.ops) + 1
    return buffers


def layout(graph: Graph, stage: Stage) -> tuple[int, dict[str, int]]:
    """(bytes, offset of each local buffer) of one patch's working memory, placed by the arena planner."""
    buffers = local_buffers(graph, stage)
    best_placement(buffers)  # offsets are aligned like the arena's
    return max(b.offset + b.size for b in buffers.values()), {name: b.offset for name, b in buffers.items()}


# ---- the rewrite -------------------------------------------------------------------------------------------------
def overlay(graph: Graph, stage: Stage) -> int:
    """Where the stage input X can sit inside one buffer that holds the output S from byte 0, so that every tile
    of S, written after its patch, lands below every byte of X a later patch still reads (S shrinks the image,
    so its tiles advance slower than the patches' boxes of X): the smallest such offset, aligned."""
    src, dst = graph.tensors[stage.source].shape, graph.tensors[stage.output].shape
    starts = [(b[stage.source].y0 * src[1] + b[stage.source].x0) * src[2] for b in stage.boxes]
    ends = [((t.y1 - 1) * dst[1] + t.x1) * dst[2] for t in tiles(dst, stage.grid)]
    later = [min(starts[q:]) for q in range(1, len(starts))] + [None]
    at = max([end - first for end, first in zip(ends, later) if first is not None] + [0])
    return -(-at // ALIGN) * ALIGN


def compound(graph: Graph, stage: Stage) -> Op:
    scratch, offsets = layout(graph, stage)
    first, last = stage.ops[0], stage.ops[-1]
    return Op("patch_stage", f"patch[{first.name}..{last.name}]", "PatchStage", [stage.source], stage.output,
              {"grid": list(stage.grid), "stage": stage, "offsets": offsets},
              consts={f"{j}/{key}": value for j, op in enumerate(stage.ops) for key, value in op.consts.items()},
              nodes=[node for op in stage.ops for node in op.nodes],
              compound=Compound(macs=stage.patch_macs(graph), layer_macs=stage.layer_macs(graph),
                                scratch_bytes=scratch, overlay=overlay(graph, stage)))


def _replace(graph: Graph, stage: Stage) -> None:
    names = {op.name for op in stage.ops}
    at = next(i for i, op in enumerate(graph.ops) if op.name in names)
    rest = [op for op in graph.ops if op.name not in names]
    graph.ops = rest[:at] + [compound(graph, stage)] + rest[at:]


def apply(graph: Graph, spec: dict) -> None:
    """Re-apply a recorded patch rewrite: spec = {"kind": "patch", "layers": [op names], "grid": [rows, cols]}."""
    by_name = {op.name: op for op in graph.ops}
    if any(name not in by_name for name in spec["layers"]):
        raise McuforgeError("plan error: the patch stage names layers the model does not have; re-run the schedule task")
    ops = [by_name[name] for name in spec["layers"]]
    later = [op for op in graph.ops if op.name not in set(spec["layers"])]
    stage = make_stage(graph, ops, later, tuple(spec["grid"]))
    if stage is None:
        raise McuforgeError("plan error: the recorded patch stage is not valid for this model; re-run the schedule task")
    _replace(graph, stage)


def spec_of(graph: Graph, stage: Stage) -> dict:
    patch_macs, layer_macs = stage.patch_macs(graph), stage.layer_macs(graph)
    total = sum(op.macs(graph.tensors) for op in graph.ops)
    overhead = (patch_macs - layer_macs) / total if total else 0.0
    return {"kind": "patch", "layers": [op.name for op in stage.ops], "grid": list(stage.grid),
            "output": stage.output, "macs_overhead": round(overhead, 6), "stage_macs": patch_macs,
            "stage_layer_macs": layer_macs,
            "summary": f"{len(stage.ops)} layers on {stage.grid[0]}x{stage.grid[1]} patches, "
                       f"MACs +{100 * overhead:.1f}%"}


def candidates(graph: Graph, max_overhead: float) -> list[Stage]:
    """Every valid stage (leading layers of the model x grid) within the MACs overhead."""
    total = sum(op.macs(graph.tensors) for op in graph.ops)
    found = []
    for length in range(1, len(graph.ops)):
        ops, later = graph.ops[:length], graph.ops[length:]
        if stage_io(graph, ops, later) is None:
            if any(op.kind not in STAGE_KINDS for op in ops):
                break  # a longer prefix contains the same unsupported layer
            continue
        for grid in [(n, n) for n in AUTO_GRIDS]:
            stage = make_stage(graph, ops, later, grid)
            if stage is None:
                continue
            if total and (stage.patch_macs(graph) - stage.layer_macs(graph)) / total > max_overhead:
                continue
            found.append(stage)
    return found


def stage_bytes(graph: Graph, stage: Stage) -> int:
    """Bytes live while the stage runs: X and S overlaid (see `overlay`) and one patch's working memory."""
    src, dst = graph.tensors[stage.source], graph.tensors[stage.output]
    return max(overlay(graph, stage) + src.bytes, dst.bytes) + layout(graph, stage)[0]


def planned_arena(graph: Graph, stage: Stage | None, schedule: ScheduleConfig) -> int:
    """The arena of the model with this stage (None: without), after the rewrite that follows patching (fusion of
    inverted bottlenecks, rewrite.REWRITERS' order)."""
    trial = dataclasses.replace(graph, ops=list(graph.ops))
    if stage is not None:
        _replace(trial, stage)
    fuse.choose(trial, schedule)
    return plan_for(trial, schedule).peak_bytes()


def choose(graph: Graph, schedule: ScheduleConfig) -> list[dict]:
    """schedule.patch: off (nothing), auto (the stage and grid with the smallest planned arena within the MACs
    overhead limit, if it beats layer by layer), or a PatchStage {layers, grid} (that stage, or an error saying why
    not)."""
    setting = schedule.patch
    if setting == "off":
        return []
    if not isinstance(setting, str):  # a fixed stage
        length, grid = setting.layers, tuple(setting.grid)
        if length >= len(graph.ops):
            raise McuforgeError(f"schedule.patch.layers: {length} but the model has {len(graph.ops)} layers")
        stage = make_stage(graph, graph.ops[:length], graph.ops[length:], grid)
        if stage is None:
            why = stage_io(graph, graph.ops[:length], graph.ops[length:])
            kinds = sorted({op.kind for op in graph.ops[:length]} - set(STAGE_KINDS))
            reason = (f"layers of kind {', '.join(kinds)} cannot run per patch (allowed: {', '.join(STAGE_KINDS)})"
                      if kinds else "the first layers do not read one tensor and hand on one tensor"
                      if why is None else f"grid {grid[0]}x{grid[1]} does not fit the stage output "
                      f"{'x'.join(map(str, graph.tensors[why[1]].shape))} or two layers need different halos "
                      "of one tensor")
            raise McuforgeError(f"schedule.patch: cannot run the first {length} layers per patch: {reason}")
        spec = spec_of(graph, stage)
        _replace(graph, stage)
        return [spec]
    limit = schedule.patch_max_macs_overhead
    by_length: dict[int, list[Stage]] = {}
    for stage in candidates(graph, limit):
        by_length.setdefault(len(stage.ops), []).append(stage)
    # each length with its grid of fewest bytes while the stage runs, judged by the whole arena
    best, best_arena = None, planned_arena(graph, None, schedule)
    for length, stages in sorted(by_length.items()):
        stage = min(stages, key=lambda s: (stage_bytes(graph, s), s.patch_macs(graph), s.grid))
        if stage_bytes(graph, stage) >= best_arena:
            continue  # the stage alone needs more than the best arena so far
        arena = planned_arena(graph, stage, schedule)
        if arena < best_arena:
            best, best_arena = stage, arena
    if best is None:
        return []
    for stage in sorted(by_length[len(best.ops)], key=lambda s: (s.patch_macs(graph), s.grid)):
        if stage.patch_macs(graph) >= best.patch_macs(graph):
            break  # the cheapest grid of that length that reaches the same arena
        if stage_bytes(graph, stage) <= best_arena and planned_arena(graph, stage, schedule) == best_arena:
            best = stage
            break
    spec = spec_of(graph, best)
    _replace(graph, best)
    return [spec]
