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

from . import engine_quant as eq
from .cwriter import CWriter, c_array, c_float
from .errors import McuforgeError
from .graph import Graph, Op
from .io import write_text
from .planner import Plan

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


def emit_conv(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    weight = op.consts["weight"]
    reals = (np.float64(src.scale) * op.consts["w_scale"].astype(np.float64)) / np.float64(dst.scale)
    floats = eq.float_multiplier(src.scale, op.consts["w_scale"], dst.scale)
    prefix = f"l{index}"
    ctx.const("int8_t", f"{prefix}_weight", weight, align=4)
    bias = ctx.const("int32_t", f"{prefix}_bias", op.consts["bias"]) if "bias" in op.consts else "NULL"
    ctx.mode_consts(prefix, reals, floats)
    lo, hi = op.attrs["clamp"]
    sh, sw = op.attrs["strides"]
    dh, dw = op.attrs["dilations"]
    inplace = ctx.plan.inplace.get(op.name)
    if op.kind == "depthwise":
        kh, kw, _ = weight.shape
        filter_dims = f"{{{kh}, {kw}, {weight.shape[2]}}}"
        function = "mf_depthwise_conv2d_s8"
    else:
        _, kh, kw, cin = weight.shape
        filter_dims = f"{{{kh}, {kw}, {cin}}}"
        function = "mf_conv2d_1x1_s8" if op.kind == "conv1x1" else "mf_conv2d_s8"
    body = ctx.body
    body.line(f"static const mf_conv_params params = {{{src.zp}, {dst.zp}, {{{sh}, {sw}}}, {{{dh}, {dw}}}, "
              f"{_padding(op.attrs['pads'])}, {lo}, {hi}}};")
    body.line(f"static const mf_quant_params quant = MF_QUANT({prefix});")
    body.line(f"static const mf_dims in_dims = {_dims(src.shape)}, filter_dims = {filter_dims}, "
              f"out_dims = {_dims(dst.shape)};")
    if inplace is not None:  # the output overwrites the input (tasks/planner.py: in-place depthwise)
        if ctx.plan.offset(src.name) != ctx.plan.offset(dst.name):
            raise McuforgeError(f"plan error: in-place op '{op.name}' has different input and output offsets")
        _call(ctx, index, f"mf_depthwise_conv2d_inplace_s8(&params, &quant, &in_dims, {ctx.arena(src.name)}, "
                          f"&filter_dims, {prefix}_weight, {bias}, &out_dims, {ctx.arena(inplace['scratch'])}, "
                          f"{inplace['scratch_bytes']})")
        return
    _call(ctx, index, f"{function}(&params, &quant, &in_dims, {ctx.arena(src.name)}, &filter_dims, "
                      f"{prefix}_weight, {bias}, &out_dims, {ctx.arena(dst.name)})")


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


def emit_add(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    a, b, dst = g.tensors[op.inputs[0]], g.tensors[op.inputs[1]], g.tensors[op.output]
    fixed = eq.add_fixed_params(a.scale, b.scale, dst.scale)
    lo, hi = op.attrs["clamp"]

    def requant(pair) -> str:
        return f"{{0.0f, {pair[0]}, {pair[1]}}}"

    ctx.body.line(
        f"static const mf_add_params params = {{{a.zp}, {b.zp}, {dst.zp}, {c_float(a.scale)}, {c_float(b.scale)}, "
        f"{c_float(dst.scale)}, {fixed['left_shift']}, {requant(fixed['input1'])}, {requant(fixed['input2'])}, "
        f"{requant(fixed['output'])}, {lo}, {hi}}};")
    _call(ctx, index, f"mf_add_s8(&params, {dst.bytes}, {ctx.arena(a.name)}, {ctx.arena(b.name)}, "
                      f"{ctx.arena(dst.name)})")


def _pool_params(src, dst, kernel, strides, pads, count_include_pad, clamp, real) -> str:
    lo, hi = clamp
    return (f"static const mf_pool_params params = {{{{{kernel[0]}, {kernel[1]}}}, {{{strides[0]}, {strides[1]}}}, "
            f"{_padding(pads)}, {count_include_pad}, {src.zp}, {dst.zp}, {c_float(src.scale)}, {c_float(dst.scale)}, "
            f"{_requant_scalar(real)}, {lo}, {hi}}};")


def emit_global_avgpool(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    h, w, _ = src.shape
    real = float(np.float64(src.scale) / (np.float64(dst.scale) * h * w))
    ctx.body.line(_pool_params(src, dst, (h, w), (1, 1), [0, 0, 0, 0], 0, op.attrs["clamp"], real))
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)};")
    _call(ctx, index, f"mf_global_avgpool_s8(&params, &in_dims, {ctx.arena(src.name)}, {ctx.arena(dst.name)})")


def emit_pool(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    real = float(np.float64(src.scale) / np.float64(dst.scale))
    ctx.body.line(_pool_params(src, dst, op.attrs["kernel"], op.attrs["strides"], op.attrs["pads"],
                               op.attrs["count_include_pad"], op.attrs["clamp"], real))
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)}, out_dims = {_dims(dst.shape)};")
    function = "mf_avgpool_s8" if op.kind == "avgpool" else "mf_maxpool_s8"
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


def emit_avgpool_tflite(ctx: Context, index: int, op: Op) -> None:
    """TFLite Micro's average pool (imported .tflite models): same scale in and out, one rounding division."""
    g = ctx.graph
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    ctx.body.line(_pool_params(src, dst, op.attrs["kernel"], op.attrs["strides"], op.attrs["pads"], 0,
                               op.attrs["clamp"], 1.0))
    ctx.body.line(f"static const mf_dims in_dims = {_dims(src.shape)}, out_dims = {_dims(dst.shape)};")
    _call(ctx, index, f"mf_avgpool_tflm_s8(&params, &in_dims, {ctx.arena(src.name)}, &out_dims, "
                      f"{ctx.arena(dst.name)})")


def emit_softmax_tflite(ctx: Context, index: int, op: Op) -> None:
    """TFLite Micro's int8 softmax (gemmlowp fixed point; output scale 1/256, zero point -128)."""
    from .tflite_import import softmax_params

    src = ctx.graph.tensors[op.inputs[0]]
    depth = src.shape[-1]
    p = softmax_params(src.scale, op.attrs.get("beta", 1.0))
    ctx.body.line(f"static const mf_softmax_tflm_params params = {{{p['input_multiplier']}, "
                  f"{p['input_left_shift']}, {p['diff_min']}}};")
    _call(ctx, index, f"mf_softmax_tflm_s8(&params, {src.bytes // depth}, {depth}, {ctx.arena(src.name)}, "
                      f"{ctx.arena(op.output)})")


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
    "avgpool_tflite": emit_avgpool_tflite,
    "softmax_tflite": emit_softmax_tflite,
    "view": emit_view,
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


def run(cfg: dict, paths) -> dict:
    """Stage `codegen`: model.h, model.c, weights.c, weights.h from the int8 model and schedule/plan.json."""
    from . import graph as graph_mod
    from . import planner
    from .io import read_json

    graph = graph_mod.load(paths.int8)
    plan = planner.from_json(read_json(paths.plan))
    planner.apply_order(graph, plan.order)  # kernels run, and layers are numbered, in the plan's order
    write(generate(graph, plan, cfg["name"]), paths.codegen)
    return {"layers": len(graph.ops)}
