"""Kernel parameters shared by the layer emitters and the patch-stage emitters: a convolution's constants and
initializers, the mf_add_params and mf_pool_params initializers."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mcuforge.codegen.context import BIASES, WEIGHTS, Context, padding, requant_scalar
from mcuforge.codegen.layout import pack_depthwise
from mcuforge.codegen.writer import c_float
from mcuforge.ir import quant as eq
from mcuforge.ir.graph import Graph, Op

CONV_FUNCTIONS = {"conv": "mf_conv2d_s8", "conv1x1": "mf_conv2d_1x1_s8", "depthwise": "mf_depthwise_conv2d_s8"}
POOL_FUNCTIONS = {"avgpool": "mf_avgpool_s8", "maxpool": "mf_maxpool_s8", "avgpool_tflite": "mf_avgpool_tflm_s8"}


@dataclass(frozen=True)
class ConvConstants:
    """A convolution's kernel and the C expressions of its arguments."""
    function: str      # the kernel
    params: str        # mf_conv_params initializer
    filter_dims: str   # mf_dims initializer
    weight: str        # weights.c array (the kernel's filter argument)
    bias: str          # weights.c array or NULL
    quant: str         # mf_quant_params initializer


def conv_constants(ctx: Context, prefix: str, op: Op) -> ConvConstants:
    """Weights, bias and requantization arrays of a convolution in weights.c; the kernel, its parameter
    initializers and argument names."""
    src, dst = ctx.io(op)
    weight = op.consts["weight"]
    reals = (np.float64(src.scale) * op.consts["w_scale"].astype(np.float64)) / np.float64(dst.scale)
    floats = eq.float_multiplier(src.scale, op.consts["w_scale"], dst.scale)
    if op.kind == "depthwise":
        kh, kw, channels = weight.shape
        # the packed int16 layout the SIMD loops read (layout.py); the kernels take its bytes
        ctx.const("int16_t", f"{prefix}_weight", pack_depthwise(weight), group=WEIGHTS)
        weight_arg = f"(const int8_t *){prefix}_weight"
    else:
        _, kh, kw, channels = weight.shape
        ctx.const("int8_t", f"{prefix}_weight", weight, group=WEIGHTS)
        weight_arg = f"{prefix}_weight"
    bias = ctx.const("int32_t", f"{prefix}_bias", op.consts["bias"], group=BIASES) if "bias" in op.consts else "NULL"
    ctx.mode_consts(prefix, reals, floats)
    lo, hi = op.attrs["clamp"]
    sh, sw = op.attrs["strides"]
    dh, dw = op.attrs["dilations"]
    params = f"{{{src.zp}, {dst.zp}, {{{sh}, {sw}}}, {{{dh}, {dw}}}, {padding(op.attrs['pads'])}, {lo}, {hi}}}"
    return ConvConstants(CONV_FUNCTIONS[op.kind], params, f"{{{kh}, {kw}, {channels}}}", weight_arg, bias,
                         f"MF_QUANT({prefix})")


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


def pool_init(src, dst, kernel, strides, pads, count_include_pad, clamp, real) -> str:
    """An mf_pool_params initializer."""
    lo, hi = clamp
    return (f"{{{{{kernel[0]}, {kernel[1]}}}, {{{strides[0]}, {strides[1]}}}, {padding(pads)}, {count_include_pad}, "
            f"{src.zp}, {dst.zp}, {c_float(src.scale)}, {c_float(dst.scale)}, {requant_scalar(real)}, {lo}, {hi}}}")


def pool_setup(g: Graph, op: Op) -> tuple[str, str]:
    """(kernel function, mf_pool_params initializer) of a windowed pool: avgpool, maxpool, or TFLite Micro's
    average pool (imported .tflite models: same scale in and out, one rounding division)."""
    src, dst = g.tensors[op.inputs[0]], g.tensors[op.output]
    a = op.attrs
    if op.kind == "avgpool_tflite":
        init = pool_init(src, dst, a["kernel"], a["strides"], a["pads"], 0, a["clamp"], 1.0)
    else:
        real = float(np.float64(src.scale) / np.float64(dst.scale))
        init = pool_init(src, dst, a["kernel"], a["strides"], a["pads"], a["count_include_pad"], a["clamp"], real)
    return POOL_FUNCTIONS[op.kind], init
