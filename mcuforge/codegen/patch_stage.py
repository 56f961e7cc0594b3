"""Patch-based inference (mcuforge/schedule/patch.py) in C: for each patch, copy its box of the stage input into
the working memory, run every layer of the stage on boxes (per-patch shapes and padding from geometry tables),
copy the tile into the stage output.

Each layer of a stage is written by the emitter of its kind in STAGE_EMITTERS, in two places: its geometry table
and constant parameters above the patch loop (the Context's body), and its per-patch block inside the loop (the
StageContext's loop writer)."""
from __future__ import annotations

from dataclasses import dataclass, field

from mcuforge.codegen.context import Context, describe
from mcuforge.codegen.params import CONV_FUNCTIONS, add_init, conv_constants, pool_setup
from mcuforge.codegen.writer import CWriter
from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Op
from mcuforge.schedule.patch import Stage, box_padding, need, tiles


@dataclass
class StageContext:
    """One patch stage being written: where its tensors live in the working memory, and the patch loop's body."""
    ctx: Context
    stage: Stage
    work: str           # arena address of the working memory
    offsets: dict       # tensor name ("in" for the stage input) -> offset in the working memory
    loop: CWriter = field(default_factory=CWriter)

    def buf(self, tensor: str) -> str:
        local = "in" if tensor == self.stage.source else tensor
        return f"{self.work} + {self.offsets[local]}"


def geometry_table(writer: CWriter, name: str, rows: list[list[int]]) -> str:
    """A per-patch geometry table (int16 rows) as a static const inside the stage's block."""
    with writer.block(f"static const int16_t {name}[{len(rows)}][{len(rows[0])}] = {{", "};"):
        for row in rows:
            writer.line("{" + ", ".join(map(str, row)) + "},")
    return name


def _window_rows(sc: StageContext, op: Op) -> list[list[int]]:
    """Per patch: input box h, w, output box h, w, and the padding of the box (top, left, bottom, right)."""
    in_name = op.inputs[0]
    in_shape = sc.ctx.graph.tensors[in_name].shape
    rows = []
    for boxes in sc.stage.boxes:
        o, i = boxes[op.output], boxes[in_name]
        if need(op, o, in_shape) != i:
            raise McuforgeError(f"plan error: patch layer '{op.name}' reads a box other than its input's")
        rows.append([i.h, i.w, o.h, o.w, *box_padding(op, o, i)])
    return rows


def _window_loop(sc: StageContext, table: str, params_type: str, prefix: str, op: Op, call: str) -> None:
    """The per-patch block of a windowed layer: dims and padding of this patch's boxes, then the kernel call."""
    g, loop = sc.ctx.graph, sc.loop
    loop.line(f"const int16_t *geom = {table}[p];")
    loop.line(f"{params_type} params = {prefix}_params;")
    loop.line("mf_dims in_dims, out_dims;")
    loop.line(f"in_dims.h = geom[0]; in_dims.w = geom[1]; in_dims.c = {g.tensors[op.inputs[0]].shape[2]};")
    loop.line(f"out_dims.h = geom[2]; out_dims.w = geom[3]; out_dims.c = {g.tensors[op.output].shape[2]};")
    loop.line("params.padding.top = geom[4]; params.padding.left = geom[5];")
    loop.line("params.padding.bottom = geom[6]; params.padding.right = geom[7];")
    loop.checked_call(call)


def stage_conv(sc: StageContext, prefix: str, op: Op) -> None:
    rows = _window_rows(sc, op)
    table = geometry_table(sc.ctx.body, f"{prefix}_geom", rows)
    c = conv_constants(sc.ctx, prefix, op)
    function = c.function
    if op.kind == "conv1x1" and any(any(row[4:]) for row in rows):
        function = CONV_FUNCTIONS["conv"]  # a padded box: the general kernel (same arithmetic)
    body = sc.ctx.body
    body.line(f"static const mf_conv_params {prefix}_params = {c.params};")
    body.line(f"static const mf_quant_params {prefix}_quant = {c.quant};")
    body.line(f"static const mf_dims {prefix}_filter = {c.filter_dims};")
    _window_loop(sc, table, "mf_conv_params", prefix, op,
                 f"{function}(&params, &{prefix}_quant, &in_dims, {sc.buf(op.inputs[0])}, &{prefix}_filter, "
                 f"{c.weight}, {c.bias}, &out_dims, {sc.buf(op.output)})")


def stage_pool(sc: StageContext, prefix: str, op: Op) -> None:
    table = geometry_table(sc.ctx.body, f"{prefix}_geom", _window_rows(sc, op))
    function, init = pool_setup(sc.ctx.graph, op)
    sc.ctx.body.line(f"static const mf_pool_params {prefix}_params = {init};")
    _window_loop(sc, table, "mf_pool_params", prefix, op,
                 f"{function}(&params, &in_dims, {sc.buf(op.inputs[0])}, &out_dims, {sc.buf(op.output)})")


def stage_add(sc: StageContext, prefix: str, op: Op) -> None:
    """An add on boxes: row by row, as its inputs' boxes may be wider than the output's."""
    a, b = op.inputs
    rows = []
    for boxes in sc.stage.boxes:
        o, ba, bb = boxes[op.output], boxes[a], boxes[b]
        rows.append([o.h, o.w, o.y0 - ba.y0, o.x0 - ba.x0, ba.w, o.y0 - bb.y0, o.x0 - bb.x0, bb.w])
    table = geometry_table(sc.ctx.body, f"{prefix}_geom", rows)
    sc.ctx.body.line(f"static const mf_add_params {prefix}_params = {add_init(sc.ctx.graph, op)};")
    c = sc.ctx.graph.tensors[op.output].shape[2]
    loop = sc.loop
    loop.line(f"const int16_t *geom = {table}[p];")
    with loop.for_range("row", "geom[0]"):
        loop.checked_call(f"mf_add_s8(&{prefix}_params, geom[1] * {c}, "
                          f"{sc.buf(a)} + ((row + geom[2]) * geom[4] + geom[3]) * {c}, "
                          f"{sc.buf(b)} + ((row + geom[5]) * geom[7] + geom[6]) * {c}, "
                          f"{sc.buf(op.output)} + row * geom[1] * {c})")


STAGE_EMITTERS = {
    "conv": stage_conv,
    "conv1x1": stage_conv,
    "depthwise": stage_conv,
    "avgpool": stage_pool,
    "maxpool": stage_pool,
    "avgpool_tflite": stage_pool,
    "add": stage_add,
}


def emit_patch_stage(ctx: Context, index: int, op: Op) -> None:
    g, stage = ctx.graph, op.attrs["stage"]
    sc = StageContext(ctx, stage, ctx.scratch(op), op.attrs["offsets"])
    src, dst = g.tensors[stage.source], g.tensors[stage.output]
    copy_in = geometry_table(ctx.body, f"l{index}_in", [[b[stage.source].y0, b[stage.source].x0, b[stage.source].h,
                                                         b[stage.source].w] for b in stage.boxes])
    copy_out = geometry_table(ctx.body, f"l{index}_out", [[t.y0, t.x0, t.h, t.w]
                                                          for t in tiles(dst.shape, stage.grid)])
    for j, inner in enumerate(stage.ops):
        emitter = STAGE_EMITTERS.get(inner.kind)
        if emitter is None:
            raise McuforgeError(f"unsupported: {inner.onnx_type} node '{inner.name}': no patch-stage code generator "
                                f"for '{inner.kind}'")
        with sc.loop.block(f"{{ /* {describe(g, inner)} */"):
            emitter(sc, f"l{index}_{j}", inner)
    body, (_, src_w, src_c), (_, dst_w, dst_c) = ctx.body, src.shape, dst.shape
    with body.for_range("p", len(stage.boxes)):
        body.line(f"const int16_t *box = {copy_in}[p], *tile = {copy_out}[p];")
        body.checked_call(f"mf_copy_rows_s8({ctx.arena(src.name)} + (box[0] * {src_w} + box[1]) * {src_c}, "
                          f"{src_w * src_c}, {sc.buf(stage.source)}, box[3] * {src_c}, box[2], box[3] * {src_c})")
        body.embed(sc.loop)
        body.checked_call(f"mf_copy_rows_s8({sc.buf(stage.output)}, tile[3] * {dst_c}, {ctx.arena(dst.name)} + "
                          f"(tile[0] * {dst_w} + tile[1]) * {dst_c}, {dst_w * dst_c}, tile[2], tile[3] * {dst_c})")
