"""One emitter per op kind, and the EMITTERS table codegen dispatches on. An emitter writes the op's constants
(weights.c / weights.h through the Context) and, inside the op's block of mf_model_invoke(), its parameters and
its checked kernel call; ops of layer `index` name their constants `l<index>...`."""
from __future__ import annotations

import numpy as np

from mcuforge.codegen.context import BIASES, WEIGHTS, Context, dims, padding, requant_scalar
from mcuforge.codegen.params import add_init, conv_constants, pool_init, pool_setup
from mcuforge.codegen.patch_stage import emit_patch_stage
from mcuforge.codegen.writer import c_float
from mcuforge.core.errors import McuforgeError
from mcuforge.ir import quant as eq
from mcuforge.ir.graph import Op
from mcuforge.schedule.fuse import inner_ops


def emit_conv(ctx: Context, index: int, op: Op) -> None:
    src, dst = ctx.io(op)
    c = conv_constants(ctx, f"l{index}", op)
    inplace = ctx.plan.inplace.get(op.name)
    body = ctx.body
    body.line(f"static const mf_conv_params params = {c.params};")
    body.line(f"static const mf_quant_params quant = {c.quant};")
    body.line(f"static const mf_dims in_dims = {dims(src.shape)}, filter_dims = {c.filter_dims}, "
              f"out_dims = {dims(dst.shape)};")
    if inplace is not None:  # the output overwrites the input (mcuforge/schedule/planner.py: in-place depthwise)
        if ctx.plan.offset(src.name) != ctx.plan.offset(dst.name):
            raise McuforgeError(f"plan error: in-place op '{op.name}' has different input and output offsets")
        body.checked_call(f"mf_depthwise_conv2d_inplace_s8(&params, &quant, &in_dims, {ctx.arena(src.name)}, "
                          f"&filter_dims, {c.weight}, {c.bias}, &out_dims, {ctx.arena(inplace['scratch'])}, "
                          f"{inplace['scratch_bytes']})")
        return
    body.checked_call(f"{c.function}(&params, &quant, &in_dims, {ctx.arena(src.name)}, &filter_dims, "
                      f"{c.weight}, {c.bias}, &out_dims, {ctx.arena(dst.name)})")


def emit_mbconv_fused(ctx: Context, index: int, op: Op) -> None:
    """A fused inverted bottleneck (mcuforge/schedule/fuse.py): one mf_conv_stage per inner conv; scratch from the
    plan."""
    src, dst = ctx.io(op)
    with ctx.body.block("static const mf_mbconv_params params = {", "};"):
        for letter, inner in zip("edp", inner_ops(op)):
            c = conv_constants(ctx, f"l{index}{letter}", inner)
            ctx.body.line(f"{{{c.params}, {c.quant}, {c.filter_dims}, {c.weight}, {c.bias}}},")
    ctx.body.line(f"static const mf_dims in_dims = {dims(src.shape)}, out_dims = {dims(dst.shape)};")
    ctx.body.checked_call(f"mf_mbconv_fused_s8(&params, &in_dims, {ctx.arena(src.name)}, &out_dims, "
                          f"{ctx.arena(dst.name)}, {ctx.scratch(op)}, {op.compound.scratch_bytes})")


def emit_fc(ctx: Context, index: int, op: Op) -> None:
    src, dst = ctx.io(op)
    weight = op.consts["weight"]
    n_out, n_in = weight.shape
    if src.bytes != n_in:
        raise McuforgeError(f"unsupported: {op.onnx_type} node '{op.name}': input has {src.bytes} values but the "
                            f"weights expect {n_in}")
    reals = (np.float64(src.scale) * op.consts["w_scale"].astype(np.float64)) / np.float64(dst.scale)
    floats = eq.float_multiplier(src.scale, op.consts["w_scale"], dst.scale)
    prefix = f"l{index}"
    ctx.const("int8_t", f"{prefix}_weight", weight, group=WEIGHTS)
    bias = ctx.const("int32_t", f"{prefix}_bias", op.consts["bias"], group=BIASES) if "bias" in op.consts else "NULL"
    ctx.mode_consts(prefix, reals, floats)
    lo, hi = op.attrs["clamp"]
    ctx.body.line(f"static const mf_fc_params params = {{{src.zp}, {dst.zp}, {lo}, {hi}}};")
    ctx.body.line(f"static const mf_quant_params quant = MF_QUANT({prefix});")
    ctx.body.line(f"static const mf_dims in_dims = {{1, 1, {n_in}}}, filter_dims = {{{n_out}, 1, {n_in}}}, "
                  f"out_dims = {{1, 1, {n_out}}};")
    ctx.body.checked_call(f"mf_fully_connected_s8(&params, &quant, &in_dims, {ctx.arena(src.name)}, &filter_dims, "
                          f"{prefix}_weight, {bias}, &out_dims, {ctx.arena(dst.name)})")


def emit_add(ctx: Context, index: int, op: Op) -> None:
    a, b, dst = (ctx.graph.tensors[name] for name in (*op.inputs, op.output))
    ctx.body.line(f"static const mf_add_params params = {add_init(ctx.graph, op)};")
    ctx.body.checked_call(f"mf_add_s8(&params, {dst.bytes}, {ctx.arena(a.name)}, {ctx.arena(b.name)}, "
                          f"{ctx.arena(dst.name)})")


def emit_global_avgpool(ctx: Context, index: int, op: Op) -> None:
    src, dst = ctx.io(op)
    h, w, _ = src.shape
    real = float(np.float64(src.scale) / (np.float64(dst.scale) * h * w))
    ctx.body.line(f"static const mf_pool_params params = "
                  f"{pool_init(src, dst, (h, w), (1, 1), [0, 0, 0, 0], 0, op.attrs['clamp'], real)};")
    ctx.body.line(f"static const mf_dims in_dims = {dims(src.shape)};")
    ctx.body.checked_call(f"mf_global_avgpool_s8(&params, &in_dims, {ctx.arena(src.name)}, {ctx.arena(dst.name)})")


def emit_pool(ctx: Context, index: int, op: Op) -> None:
    src, dst = ctx.io(op)
    function, init = pool_setup(ctx.graph, op)
    ctx.body.line(f"static const mf_pool_params params = {init};")
    ctx.body.line(f"static const mf_dims in_dims = {dims(src.shape)}, out_dims = {dims(dst.shape)};")
    ctx.body.checked_call(f"{function}(&params, &in_dims, {ctx.arena(src.name)}, &out_dims, "
                          f"{ctx.arena(dst.name)})")


def emit_concat(ctx: Context, index: int, op: Op) -> None:
    g = ctx.graph
    dst = g.tensors[op.output]
    ctx.body.line(f"static const mf_concat_params params = {{{c_float(dst.scale)}, {dst.zp}}};")
    ctx.body.line(f"static const mf_dims out_dims = {dims(dst.shape)};")
    # data pointers are arena addresses: not constant expressions in C99, so the table lives on the stack
    with ctx.body.block("const mf_concat_input inputs[] = {", "};"):
        for name in op.inputs:
            src = g.tensors[name]
            real = float(np.float64(src.scale) / np.float64(dst.scale))
            ctx.body.line(f"{{{ctx.arena(name)}, {src.shape[-1]}, {src.zp}, {c_float(src.scale)}, "
                          f"{requant_scalar(real)}}},")
    ctx.body.checked_call(f"mf_concat_s8(&params, inputs, {len(op.inputs)}, &out_dims, {ctx.arena(dst.name)})")


def emit_softmax(ctx: Context, index: int, op: Op) -> None:
    src, dst = ctx.io(op)
    table = ctx.const("float", f"l{index}_exp_table", eq.softmax_exp_table(src.scale, src.shape[-1]))
    recip = eq.softmax_output_scale_recip(dst.scale)
    ctx.body.line(f"static const mf_softmax_params params = {{{table}, {c_float(recip)}, {dst.zp}}};")
    ctx.body.line(f"static const mf_dims in_dims = {dims(src.shape)};")
    ctx.body.checked_call(f"mf_softmax_s8(&params, &in_dims, {ctx.arena(src.name)}, {ctx.arena(dst.name)})")


def emit_softmax_tflite(ctx: Context, index: int, op: Op) -> None:
    """TFLite Micro's int8 softmax (gemmlowp fixed point; output scale 1/256, zero point -128)."""
    src, dst = ctx.io(op)
    p = eq.softmax_params(src.scale, op.attrs["beta"])
    ctx.body.line(f"static const mf_softmax_tflm_params params = {{{p['input_multiplier']}, "
                  f"{p['input_left_shift']}, {p['diff_min']}}};")
    ctx.body.line(f"static const mf_dims in_dims = {dims(src.shape)};")
    ctx.body.checked_call(f"mf_softmax_tflm_s8(&params, &in_dims, {ctx.arena(src.name)}, {ctx.arena(dst.name)})")


def emit_pad(ctx: Context, index: int, op: Op) -> None:
    """TFLite PAD / PADV2: the input bytes with a constant around them along H, W and C."""
    src, dst = ctx.io(op)
    before, after = op.attrs["channels"]
    ctx.body.line(f"static const mf_pad_params params = {{{padding(op.attrs['pads'])}, {before}, {after}, "
                  f"{op.attrs['value']}}};")
    ctx.body.line(f"static const mf_dims in_dims = {dims(src.shape)}, out_dims = {dims(dst.shape)};")
    ctx.body.checked_call(f"mf_pad_s8(&params, &in_dims, {ctx.arena(src.name)}, &out_dims, {ctx.arena(dst.name)})")


def emit_mean_tflite(ctx: Context, index: int, op: Op) -> None:
    """TFLite Micro's int8 MEAN over H, W and/or C (one multiplier holds the rescale and the division)."""
    src, dst = ctx.io(op)
    p = eq.mean_params(src.scale, dst.scale, op.attrs["count"])
    reduce = ", ".join(str(int(flag)) for flag in op.attrs["reduce"])
    ctx.body.line(f"static const mf_mean_params params = {{{reduce}, {src.zp}, {dst.zp}, {p['multiplier']}, "
                  f"{p['shift']}}};")
    ctx.body.line(f"static const mf_dims in_dims = {dims(src.shape)};")
    ctx.body.checked_call(f"mf_mean_tflm_s8(&params, &in_dims, {ctx.arena(src.name)}, {ctx.arena(dst.name)})")


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
