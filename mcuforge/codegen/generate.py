"""Generate C for the engine: `model.h` (the ABI of docs/engine_abi.md), `model.c` (kernels called in plan order,
arena offsets as constants, parameters as `static const` structs), `weights.c`/`weights.h` (const arrays in flash).

The backend is data: EMITTERS maps an op kind to a function that writes the op's constants and its kernel call.
Requantization constants are written for both modes under `#if MF_REQUANT_MODE`, so one generated model builds
either way; only the chosen mode's arrays reach the binary.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcuforge.ir import quant as eq
from mcuforge.codegen.writer import CWriter, c_array, c_float
from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op
from mcuforge.core.io import write_text
from mcuforge.schedule.planner import Plan

FLOAT_MODE = "#if MF_REQUANT_MODE == MF_REQUANT_FLOAT"


@dataclass
class Context:
    graph: Graph
    plan: Plan
    weights: CWriter   # weights.c
    decls: CWriter     # weights.h
    body: CWriter      # inside mf_model_invoke()

    def arena(self, tensor: str) -> str:
        return f"mf_arena + {self.plan.offset(tensor)}"

    def const(self, ctype: str, name: str, values: np.ndarray, align: int = 4) -> str:
        c_array(self.weights, ctype, name, values, align=align)
        self.weights.line()
        self.decls.line(f"extern const {ctype} {name}[{np.asarray(values).size}];")
        return name

    def mode_consts(self, name: str, reals: np.ndarray, float_values: np.ndarray) -> None:
        """Per-channel requantization arrays: `<name>_scale` (float mode) or `<name>_mult`/`<name>_shift` (fixed)."""
        mult, shift = eq.quantize_multipliers(reals)
        for writer in (self.weights, self.decls):
            writer.line(FLOAT_MODE)
        self.const("float", f"{name}_scale", float_values)
        for writer in (self.weights, self.decls):
            writer.line("#else")
        self.const("int32_t", f"{name}_mult", mult)
        self.const("int32_t", f"{name}_shift", shift)
        for writer in (self.weights, self.decls):
            writer.line("#endif")


def _dims(shape) -> str:
    h, w, c = shape if len(shape) == 3 else (1, 1, shape[0])
    return f"{{{h}, {w}, {c}}}"


def _requant_scalar(real: float, float_value: float | None = None) -> str:
    """A `mf_requant` initializer {scale, multiplier, shift}."""
    mult, shift = eq.quantize_multiplier(real)
    return f"{{{c_float(real if float_value is None else float_value)}, {mult}, {shift}}}"


def _call(ctx: Context, index: int, call: str) -> None:
    ctx.body.line(f"status = {call};")
    with ctx.body.block("if (status != MF_OK) {"):
        ctx.body.line("return status;")


def _padding(pads: list[int]) -> str:
    top, left, bottom, right = pads
    return f"{{{top}, {left}, {bottom}, {right}}}"


def conv_constants(ctx: Context, prefix: str, op: Op) -> dict:
    """Weights, bias and requantization arrays of a convolution in weights.c; the kernel, its parameter
    initializers and argument names."""
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    weight = op.consts["weight"]
    reals = (np.float64(src.scale) * op.consts["w_scale"].astype(np.float64)) / np.float64(dst.scale)
    floats = eq.float_multiplier(src.scale, op.consts["w_scale"], dst.scale)
    ctx.const("int8_t", f"{prefix}_weight", weight, align=4)
    bias = ctx.const("int32_t", f"{prefix}_bias", op.consts["bias"]) if "bias" in op.consts else "NULL"
    ctx.mode_consts(prefix, reals, floats)
    lo, hi = op.attrs["clamp"]
    sh, sw = op.attrs["strides"]
    dh, dw = op.attrs["dilations"]
    if op.kind == "depthwise":
        kh, kw, _ = weight.shape
        filter_dims = f"{{{kh}, {kw}, {weight.shape[2]}}}"
        function = "mf_depthwise_conv2d_s8"
    else:
        _, kh, kw, cin = weight.shape
        filter_dims = f"{{{kh}, {kw}, {cin}}}"
        function = "mf_conv2d_1x1_s8" if op.kind == "conv1x1" else "mf_conv2d_s8"
    params = (f"{{{src.zp}, {dst.zp}, {{{sh}, {sw}}}, {{{dh}, {dw}}}, {_padding(op.attrs['pads'])}, {lo}, {hi}}}")
    return {"function": function, "params": params, "filter_dims": filter_dims, "weight": f"{prefix}_weight",
            "bias": bias, "quant": f"MF_QUANT({prefix})"}


def emit_conv(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    c = conv_constants(ctx, f"l{index}", op)
    inplace = ctx.plan.inplace.get(op.name)
    body = ctx.body
    body.line(f"static const mf_conv_params params = {c['params']};")
    body.line(f"static const mf_quant_params quant = {c['quant']};")
    body.line(f"static const mf_dims in_dims = {_dims(src.shape)}, filter_dims = {c['filter_dims']}, "
              f"out_dims = {_dims(dst.shape)};")
    if inplace is not None:  # the output overwrites the input (tasks/planner.py: in-place depthwise)
        if ctx.plan.offset(src.name) != ctx.plan.offset(dst.name):
            raise McuforgeError(f"plan error: in-place op '{op.name}' has different input and output offsets")
        _call(ctx, index, f"mf_depthwise_conv2d_inplace_s8(&params, &quant, &in_dims, {ctx.arena(src.name)}, "
                          f"&filter_dims, {c['weight']}, {c['bias']}, &out_dims, {ctx.arena(inplace['scratch'])}, "
                          f"{inplace['scratch_bytes']})")
        return
    _call(ctx, index, f"{c['function']}(&params, &quant, &in_dims, {ctx.arena(src.name)}, &filter_dims, "
                      f"{c['weight']}, {c['bias']}, &out_dims, {ctx.arena(dst.name)})")


def emit_mbconv_fused(ctx: Context, index: int, op: Op) -> None:
    """A fused inverted bottleneck (tasks/fuse.py): one mf_conv_stage per inner conv; scratch from the plan."""
    from mcuforge.schedule.fuse import inner_ops

    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    with ctx.body.block("static const mf_mbconv_params params = {", "};"):
        for letter, inner in zip("edp", inner_ops(op)):
            c = conv_constants(ctx, f"l{index}{letter}", inner)
            ctx.body.line(f"{{{c['params']}, {c['quant']}, {c['filter_dims']}, {c['weight']}, {c['bias']}}},")
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)}, out_dims = {_dims(dst.shape)};")
    _call(ctx, index, f"mf_mbconv_fused_s8(&params, &in_dims, {ctx.arena(src.name)}, &out_dims, "
                      f"{ctx.arena(dst.name)}, {planner_scratch(ctx, op)}, {op.attrs['scratch_bytes']})")


def emit_fc(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    weight = op.consts["weight"]
    n_out, n_in = weight.shape
    if src.bytes != n_in:
        raise McuforgeError(f"unsupported: {op.onnx_type} node '{op.name}': input has {src.bytes} values but the "
                            f"weights expect {n_in}")
    reals = (np.float64(src.scale) * op.consts["w_scale"].astype(np.float64)) / np.float64(dst.scale)
    floats = eq.float_multiplier(src.scale, op.consts["w_scale"], dst.scale)
    prefix = f"l{index}"
    ctx.const("int8_t", f"{prefix}_weight", weight)
    bias = ctx.const("int32_t", f"{prefix}_bias", op.consts["bias"]) if "bias" in op.consts else "NULL"
    ctx.mode_consts(prefix, reals, floats)
    lo, hi = op.attrs["clamp"]
    ctx.body.line(f"static const mf_fc_params params = {{{src.zp}, {dst.zp}, {lo}, {hi}}};")
    ctx.body.line(f"static const mf_quant_params quant = MF_QUANT({prefix});")
    _call(ctx, index, f"mf_fully_connected_s8(&params, &quant, 1, {n_in}, {n_out}, {ctx.arena(src.name)}, "
                      f"{prefix}_weight, {bias}, {ctx.arena(dst.name)})")


def add_init(g: Graph, op: Op) -> str:
    """The mf_add_params initializer of an add."""
    a, b, dst = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.output]
    fixed = eq.add_fixed_params(a.scale, b.scale, dst.scale)
    lo, hi = op.attrs["clamp"]

    def requant(pair) -> str:
        return f"{{0.0f, {pair[0]}, {pair[1]}}}"

    return (f"{{{a.zp}, {b.zp}, {dst.zp}, {c_float(a.scale)}, {c_float(b.scale)}, {c_float(dst.scale)}, "
            f"{fixed['left_shift']}, {requant(fixed['input1'])}, {requant(fixed['input2'])}, "
            f"{requant(fixed['output'])}, {lo}, {hi}}}")


def emit_add(ctx: Context, index: int, op: Op) -> None:
    a, b, dst = (ctx.graph.tensors[name] for name in (*op.inputs, op.output))
    ctx.body.line(f"static const mf_add_params params = {add_init(ctx.graph, op)};")
    _call(ctx, index, f"mf_add_s8(&params, {dst.bytes}, {ctx.arena(a.name)}, {ctx.arena(b.name)}, "
                      f"{ctx.arena(dst.name)})")


def _pool_init(src, dst, kernel, strides, pads, count_include_pad, clamp, real) -> str:
    lo, hi = clamp
    return (f"{{{{{kernel[0]}, {kernel[1]}}}, {{{strides[0]}, {strides[1]}}}, {_padding(pads)}, {count_include_pad}, "
            f"{src.zp}, {dst.zp}, {c_float(src.scale)}, {c_float(dst.scale)}, {_requant_scalar(real)}, {lo}, {hi}}}")


def pool_setup(g: Graph, op: Op) -> tuple[str, str]:
    """(kernel function, mf_pool_params initializer) of a windowed pool: avgpool, maxpool, or TFLite Micro's
    average pool (imported .tflite models: same scale in and out, one rounding division)."""
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    a = op.attrs
    if op.kind == "avgpool_tflite":
        return "mf_avgpool_tflm_s8", _pool_init(src, dst, a["kernel"], a["strides"], a["pads"], 0, a["clamp"], 1.0)
    real = float(np.float64(src.scale) / np.float64(dst.scale))
    function = "mf_avgpool_s8" if op.kind == "avgpool" else "mf_maxpool_s8"
    return function, _pool_init(src, dst, a["kernel"], a["strides"], a["pads"], a["count_include_pad"], a["clamp"],
                                real)


def emit_global_avgpool(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    h, w, _ = src.shape
    real = float(np.float64(src.scale) / (np.float64(dst.scale) * h * w))
    ctx.body.line(f"static const mf_pool_params params = "
                  f"{_pool_init(src, dst, (h, w), (1, 1), [0, 0, 0, 0], 0, op.attrs['clamp'], real)};")
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)};")
    _call(ctx, index, f"mf_global_avgpool_s8(&params, &in_dims, {ctx.arena(src.name)}, {ctx.arena(dst.name)})")


def emit_pool(ctx: Context, index: int, op: Op) -> None:
    src, dst = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.output]
    function, init = pool_setup(ctx.graph, op)
    ctx.body.line(f"static const mf_pool_params params = {init};")
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)}, out_dims = {_dims(dst.shape)};")
    _call(ctx, index, f"{function}(&params, &in_dims, {ctx.arena(src.name)}, &out_dims, {ctx.arena(dst.name)})")


def emit_concat(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    dst = g.tensors[op.output]
    pixels = dst.shape[0] * dst.shape[1] if len(dst.shape) == 3 else 1
    entries = []
    for name in op.inputs:
        src = g.tensors[name]
        real = float(np.float64(src.scale) / np.float64(dst.scale))
        entries.append(f"{{{ctx.arena(name)}, {src.shape[-1]}, {src.zp}, {c_float(src.scale)}, {_requant_scalar(real)}}}")
    # data pointers are arena addresses: not constant expressions in C99, so the table lives on the stack
    with ctx.body.block("const mf_concat_input inputs[] = {", "};"):
        for entry in entries:
            ctx.body.line(entry + ",")
    _call(ctx, index, f"mf_concat_s8(inputs, {len(entries)}, {pixels}, {c_float(dst.scale)}, {dst.zp}, "
                      f"{ctx.arena(dst.name)})")


def emit_softmax(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    depth = src.shape[-1]
    table = ctx.const("float", f"l{index}_exp_table", eq.softmax_exp_table(src.scale, depth))
    recip = eq.softmax_output_scale_recip(dst.scale)
    _call(ctx, index, f"mf_softmax_s8({table}, {c_float(recip)}, {dst.zp}, {src.bytes // depth}, {depth}, "
                      f"{ctx.arena(src.name)}, {ctx.arena(dst.name)})")


def emit_softmax_tflite(ctx: Context, index: int, op: Op) -> None:
    """TFLite Micro's int8 softmax (gemmlowp fixed point; output scale 1/256, zero point -128)."""
    src = ctx.graph.tensors[op.inputs[0]]
    depth = src.shape[-1]
    p = eq.softmax_params(src.scale, op.attrs.get("beta", 1.0))
    ctx.body.line(f"static const mf_softmax_tflm_params params = {{{p['input_multiplier']}, "
                  f"{p['input_left_shift']}, {p['diff_min']}}};")
    _call(ctx, index, f"mf_softmax_tflm_s8(&params, {src.bytes // depth}, {depth}, {ctx.arena(src.name)}, "
                      f"{ctx.arena(op.output)})")


def _geometry_table(ctx: Context, name: str, rows: list[list[int]]) -> str:
    """A per-patch geometry table (int16 rows) as a static const inside the stage's block."""
    width = len(rows[0])
    ctx.body.line(f"static const int16_t {name}[{len(rows)}][{width}] = {{")
    for row in rows:
        ctx.body.line("    {" + ", ".join(map(str, row)) + "},")
    ctx.body.line("};")
    return name


def emit_patch_stage(ctx: Context, index: int, op: Op) -> None:
    """Patch-based inference (tasks/patch.py): for each patch, copy its box of the stage input into the working
    memory, run every layer of the stage on boxes (per-patch shapes and padding from geometry tables), copy the
    tile into the stage output."""
    from mcuforge.schedule.patch import box_padding, need, tiles

    g, stage = ctx.graph, op.attrs["stage"]
    offsets, work = op.attrs["offsets"], planner_scratch(ctx, op)
    patches = len(stage.boxes)
    src, dst = g.tensors[stage.source], g.tensors[stage.output]
    local = {stage.source: "in"}

    def buf(name: str) -> str:
        return f"{work} + {offsets[local.get(name, name)]}"

    copy_in = _geometry_table(ctx, f"l{index}_in", [[b[stage.source].y0, b[stage.source].x0, b[stage.source].h,
                                                     b[stage.source].w] for b in stage.boxes])
    copy_out = _geometry_table(ctx, f"l{index}_out", [[t.y0, t.x0, t.h, t.w]
                                                      for t in tiles(dst.shape, stage.grid)])
    calls = []  # (statics written above the loop, the loop body of this layer)
    for j, inner in enumerate(stage.ops):
        prefix = f"l{index}_{j}"
        out_t = g.tensors[inner.output]
        if inner.kind == "add":
            a, b = inner.inputs
            rows = []
            for boxes in stage.boxes:
                o, ba, bb = boxes[inner.output], boxes[a], boxes[b]
                rows.append([o.h, o.w, o.y0 - ba.y0, o.x0 - ba.x0, ba.w, o.y0 - bb.y0, o.x0 - bb.x0, bb.w])
            table = _geometry_table(ctx, f"{prefix}_geom", rows)
            ctx.body.line(f"static const mf_add_params {prefix}_params = {add_init(g, inner)};")
            c = out_t.shape[2]
            calls.append([f"const int16_t *geom = {table}[p];",
                          "int32_t row;",
                          "for (row = 0; row < geom[0]; row++) {",
                          f"    status = mf_add_s8(&{prefix}_params, geom[1] * {c}, "
                          f"{buf(a)} + ((row + geom[2]) * geom[4] + geom[3]) * {c}, "
                          f"{buf(b)} + ((row + geom[5]) * geom[7] + geom[6]) * {c}, "
                          f"{buf(inner.output)} + row * geom[1] * {c});",
                          "    if (status != MF_OK) {", "        return status;", "    }", "}"])
            continue
        in_name = inner.inputs[0]
        in_t = g.tensors[in_name]
        rows = []
        for boxes in stage.boxes:
            o, i = boxes[inner.output], boxes[in_name]
            if need(inner, o, in_t.shape) != i:
                raise McuforgeError(f"plan error: patch layer '{inner.name}' reads a box other than its input's")
            rows.append([i.h, i.w, o.h, o.w, *box_padding(inner, o, i)])
        table = _geometry_table(ctx, f"{prefix}_geom", rows)
        if inner.kind in ("conv", "conv1x1", "depthwise"):
            cc = conv_constants(ctx, prefix, inner)
            if inner.kind == "conv1x1" and any(any(r[4:]) for r in rows):
                cc["function"] = "mf_conv2d_s8"  # a padded box: the general kernel (same arithmetic)
            ctx.body.line(f"static const mf_conv_params {prefix}_params = {cc['params']};")
            ctx.body.line(f"static const mf_quant_params {prefix}_quant = {cc['quant']};")
            ctx.body.line(f"static const mf_dims {prefix}_filter = {cc['filter_dims']};")
            call = (f"{cc['function']}(&params, &{prefix}_quant, &in_dims, {buf(in_name)}, &{prefix}_filter, "
                    f"{cc['weight']}, {cc['bias']}, &out_dims, {buf(inner.output)})")
            ptype = "mf_conv_params"
        else:
            function, init = pool_setup(g, inner)
            ctx.body.line(f"static const mf_pool_params {prefix}_params = {init};")
            call = f"{function}(&params, &in_dims, {buf(in_name)}, &out_dims, {buf(inner.output)})"
            ptype = "mf_pool_params"
        calls.append([f"const int16_t *geom = {table}[p];",
                      f"{ptype} params = {prefix}_params;",
                      f"mf_dims in_dims, out_dims;",
                      f"in_dims.h = geom[0]; in_dims.w = geom[1]; in_dims.c = {in_t.shape[2]};",
                      f"out_dims.h = geom[2]; out_dims.w = geom[3]; out_dims.c = {out_t.shape[2]};",
                      "params.padding.top = geom[4]; params.padding.left = geom[5];",
                      "params.padding.bottom = geom[6]; params.padding.right = geom[7];",
                      f"status = {call};",
                      "if (status != MF_OK) {", "    return status;", "}"])
    ctx.body.line("int32_t p;")
    with ctx.body.block(f"for (p = 0; p < {patches}; p++) {{"):
        sc, dc = src.shape[2], dst.shape[2]
        ctx.body.line(f"const int16_t *box = {copy_in}[p], *tile = {copy_out}[p];")
        ctx.body.line(f"status = mf_copy_rows_s8({ctx.arena(src.name)} + (box[0] * {src.shape[1]} + box[1]) * {sc}, "
                      f"{src.shape[1] * sc}, {buf(stage.source)}, box[3] * {sc}, box[2], box[3] * {sc});")
        with ctx.body.block("if (status != MF_OK) {"):
            ctx.body.line("return status;")
        for j, lines in enumerate(calls):
            with ctx.body.block(f"{{ /* {_describe(g, stage.ops[j])} */"):
                ctx.body.lines(lines)
        ctx.body.line(f"status = mf_copy_rows_s8({buf(stage.output)}, tile[3] * {dc}, {ctx.arena(dst.name)} + "
                      f"(tile[0] * {dst.shape[1]} + tile[1]) * {dc}, {dst.shape[1] * dc}, tile[2], tile[3] * {dc});")
        with ctx.body.block("if (status != MF_OK) {"):
            ctx.body.line("return status;")


def planner_scratch(ctx: Context, op: Op) -> str:
    """The arena address of a compound op's working memory."""
    from mcuforge.schedule.planner import scratch_name

    return ctx.arena(scratch_name(op))


def emit_pad(ctx: Context, index: int, op: Op) -> None:
    """TFLite PAD / PADV2: the input bytes with a constant around them along H, W and C."""
    src, dst = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.output]
    before, after = op.attrs["channels"]
    ctx.body.line(f"static const mf_pad_params params = {{{_padding(op.attrs['pads'])}, {before}, {after}, "
                  f"{op.attrs['value']}}};")
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)}, out_dims = {_dims(dst.shape)};")
    _call(ctx, index, f"mf_pad_s8(&params, &in_dims, {ctx.arena(src.name)}, &out_dims, {ctx.arena(dst.name)})")


def emit_mean_tflite(ctx: Context, index: int, op: Op) -> None:
    """TFLite Micro's int8 MEAN over H, W and/or C (one multiplier holds the rescale and the division)."""
    src, dst = ctx.graph.tensors[op.inputs[0]], ctx.graph.tensors[op.output]
    p = eq.mean_params(src.scale, dst.scale, op.attrs["count"])
    reduce = ", ".join(str(int(flag)) for flag in op.attrs["reduce"])
    ctx.body.line(f"static const mf_mean_params params = {{{reduce}, {src.zp}, {dst.zp}, {p['multiplier']}, "
                  f"{p['shift']}}};")
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)};")
    _call(ctx, index, f"mf_mean_tflm_s8(&params, &in_dims, {ctx.arena(src.name)}, {ctx.arena(dst.name)})")


def emit_view(ctx: Context, index: int, op: Op) -> None:
    ctx.body.line("/* a view: shares its input's bytes, nothing to compute */")


EMITTERS = {
    "conv": emit_conv,
    "conv1x1": emit_conv,
    "depthwise": emit_conv,
    "fc": emit_fc,
    "add": emit_add,
    "global_avgpool": emit_global_avgpool,
    "avgpool": emit_pool,
    "maxpool": emit_pool,
    "concat": emit_concat,
    "softmax": emit_softmax,
    "avgpool_tflite": emit_pool,
    "softmax_tflite": emit_softmax_tflite,
    "pad": emit_pad,
    "mean_tflite": emit_mean_tflite,
    "view": emit_view,
    "patch_stage": emit_patch_stage,
    "mbconv_fused": emit_mbconv_fused,
}


def _describe(graph: Graph, op: Op) -> str:
    shapes = " + ".join("x".join(map(str, graph.tensors[i].shape)) for i in op.inputs)
    out = "x".join(map(str, graph.tensors[op.output].shape))
    return f"{op.kind} ({op.onnx_type} '{op.name}'): {shapes} -> {out}"


def header(graph: Graph, plan: Plan, name: str) -> str:
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    w = CWriter()
    w.lines([
        f"/* Generated by mcuforge from the int8 ONNX model of pipeline '{name}'. Do not edit. */",
        "#ifndef MF_MODEL_H",
        "#define MF_MODEL_H",
        "",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        f"#define MF_MODEL_INPUT_BYTES {src.bytes}",
        f"#define MF_MODEL_OUTPUT_BYTES {dst.bytes}",
        f"#define MF_MODEL_ARENA_BYTES {plan.peak_bytes()}",
        f"#define MF_MODEL_NUM_LAYERS {len(graph.ops)}",
        "",
        "/* Input: int8 NHWC " + "x".join(map(str, src.shape)) + "; real = scale * (q - zero_point). */",
        f"#define MF_MODEL_INPUT_SCALE {c_float(src.scale)}",
        f"#define MF_MODEL_INPUT_ZERO_POINT {src.zp}",
        "/* Output: int8 " + "x".join(map(str, dst.shape)) + ". */",
        f"#define MF_MODEL_OUTPUT_SCALE {c_float(dst.scale)}",
        f"#define MF_MODEL_OUTPUT_ZERO_POINT {dst.zp}",
        "",
        "int8_t *mf_model_input(void);",
        "const int8_t *mf_model_output(void);",
        "int mf_model_invoke(void);",
        "#ifdef MF_LAYER_DUMP",
        "void mf_layer_dump(int layer_index, const int8_t *data, size_t bytes);",
        "#endif",
        "",
        "#endif /* MF_MODEL_H */",
    ])
    return w.text()


def generate(graph: Graph, plan: Plan, name: str) -> dict[str, str]:
    """C sources of the model: {file name: text}."""
    if plan.order != [op.name for op in graph.ops]:
        raise McuforgeError("plan error: graph.ops are not in the plan's order (planner.apply_order)")
    weights, decls, body = CWriter(), CWriter(), CWriter()
    ctx = Context(graph, plan, weights, decls, body)
    weights.lines([f"/* Generated by mcuforge: constants of pipeline '{name}' (in flash). Do not edit. */",
                   '#include "weights.h"', ""])
    decls.lines(["/* Generated by mcuforge. Do not edit. */", "#ifndef MF_WEIGHTS_H", "#define MF_WEIGHTS_H", "",
                 '#include "mcuforge.h"', ""])
    for index, op in enumerate(graph.ops):
        emitter = EMITTERS.get(op.kind)
        if emitter is None:
            raise McuforgeError(f"unsupported: {op.onnx_type} node '{op.name}': no code generator for '{op.kind}'")
        with body.block(f"{{ /* layer {index}: {_describe(graph, op)} */"):
            emitter(ctx, index, op)
            body.line(f"MF_DUMP({index}, {ctx.arena(op.output)}, {graph.tensors[op.output].bytes});")
    decls.lines(["", "#endif /* MF_WEIGHTS_H */"])

    model = CWriter()
    model.lines([
        f"/* Generated by mcuforge: pipeline '{name}', planner {plan.planner}, arena {plan.peak_bytes()} B "
        f"(lower bound {plan.lower_bound()} B). Do not edit. */",
        '#include "model.h"',
        '#include "mcuforge.h"',
        '#include "weights.h"',
        "",
        FLOAT_MODE,
        "#define MF_QUANT(layer) {layer##_scale, NULL, NULL}",
        "#else",
        "#define MF_QUANT(layer) {NULL, layer##_mult, layer##_shift}",
        "#endif",
        "",
        "#ifdef MF_LAYER_DUMP",
        "#define MF_DUMP(index, data, bytes) mf_layer_dump((index), (data), (bytes))",
        "#else",
        "#define MF_DUMP(index, data, bytes) ((void)0)",
        "#endif",
        "",
        "static int8_t mf_arena[MF_MODEL_ARENA_BYTES] __attribute__((aligned(16)));",
        "",
        f"int8_t *mf_model_input(void) {{ return {ctx.arena(graph.input)}; }}",
        "",
        f"const int8_t *mf_model_output(void) {{ return {ctx.arena(graph.output)}; }}",
        "",
    ])
    with model.block("int mf_model_invoke(void) {"):
        model.line("mf_status status;")
        model.lines(body.text().rstrip("\n").split("\n"))
        model.line("return MF_OK;")
    return {"model.h": header(graph, plan, name), "model.c": model.text(), "weights.c": weights.text(),
            "weights.h": decls.text()}


def write(sources: dict[str, str], out_dir: Path) -> None:
    for file_name, text in sorted(sources.items()):
        write_text(out_dir / file_name, text)
