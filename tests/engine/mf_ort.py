"""One-node quantized ONNX models run in ONNX Runtime (CPU EP): the reference of the engine tests.

Every builder takes NCHW tensors (ONNX layout) and returns ORT's output. Constant inputs (weights, scales,
zero points, bias) are initializers, as in a real exported model, so ORT picks the same kernels it would
pick for a deployed network. A fused activation is modelled as an int8 ``Clip`` node after the op.
"""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 13
MS_DOMAIN = "com.microsoft"
_NP_TO_ONNX = {np.dtype(np.int8): TensorProto.INT8, np.dtype(np.uint8): TensorProto.UINT8,
               np.dtype(np.int32): TensorProto.INT32, np.dtype(np.float32): TensorProto.FLOAT,
               np.dtype(np.int64): TensorProto.INT64}


class Graph:
    """A tiny graph builder: named initializers, one or more nodes, one output."""

    def __init__(self):
        self.nodes = []
        self.inits = []
        self.inputs = []
        self.feeds = {}
        self._count = 0

    def const(self, value, dtype) -> str:
        self._count += 1
        name = f"c{self._count}"
        self.inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def input(self, name: str, value: np.ndarray) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, _NP_TO_ONNX[value.dtype], list(value.shape)))
        self.feeds[name] = value
        return name

    def node(self, op, inputs, output, domain="", **attrs) -> str:
        self.nodes.append(helper.make_node(op, inputs, [output], domain=domain, **attrs))
        return output

    def clip(self, tensor: str, act) -> str:
        if tuple(act) == (-128, 127):
            return tensor
        lo = self.const(np.int8(act[0]), np.int8)
        hi = self.const(np.int8(act[1]), np.int8)
        return self.node("Clip", [tensor, lo, hi], tensor + "_clip")

    def run(self, output: str, out_dtype=np.int8, optimize: bool = True) -> np.ndarray:
        return self.run_many([output], out_dtype, optimize)[0]

    def run_many(self, outputs, out_dtype=np.int8, optimize: bool = True) -> list:
        out_infos = [helper.make_tensor_value_info(o, _NP_TO_ONNX[np.dtype(out_dtype)], None) for o in outputs]
        graph = helper.make_graph(self.nodes, "g", self.inputs, out_infos, initializer=self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                        helper.make_opsetid(MS_DOMAIN, 1)])
        model.ir_version = 8
        return run_model(model, self.feeds, optimize)


def session_options(optimize: bool = True) -> ort.SessionOptions:
    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    so.inter_op_num_threads = 1
    so.graph_optimization_level = (ort.GraphOptimizationLevel.ORT_ENABLE_ALL if optimize
                                   else ort.GraphOptimizationLevel.ORT_DISABLE_ALL)
    return so


def run_model(model: onnx.ModelProto, feeds: dict, optimize: bool = True):
    sess = ort.InferenceSession(model.SerializeToString(), session_options(optimize),
                                providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


def _f32(v):
    return np.asarray(v, dtype=np.float32)


def qlinear_conv(x, xs, xzp, w, ws, bias, ys, yzp, strides, pads, dilations, group=1, act=(-128, 127),
                 optimize=True):
    """ONNX QLinearConv. x: [1, C, H, W] int8; w: [M, C/group, KH, KW] int8; ws: [M]; pads t, l, b, r."""
    g = Graph()
    ins = [g.input("x", x), g.const(_f32(xs), np.float32), g.const(np.int8(xzp), np.int8),
           g.const(w, np.int8), g.const(_f32(ws), np.float32), g.const(np.zeros(len(ws), np.int8), np.int8),
           g.const(_f32(ys), np.float32), g.const(np.int8(yzp), np.int8)]
    if bias is not None:
        ins.append(g.const(bias, np.int32))
    t, l, b, r = pads
    y = g.node("QLinearConv", ins, "y", strides=list(strides), pads=[t, l, b, r], dilations=list(dilations),
               group=group, kernel_shape=list(w.shape[2:]))
    return g.run(g.clip(y, act), optimize=optimize)


def qgemm(a, a_s, a_zp, b_nk, b_s, bias, ys, yzp, act=(-128, 127)):
    """com.microsoft QGemm with transB = 1. a: [M, K]; b_nk: [N, K]; b_s: [N]; bias: [N] or None."""
    g = Graph()
    b_s = _f32(b_s)
    ins = [g.input("a", a), g.const(_f32(a_s), np.float32), g.const(np.int8(a_zp), np.int8),
           g.const(b_nk, np.int8), g.const(b_s, np.float32), g.const(np.zeros(b_s.shape, np.int8), np.int8),
           g.const(bias, np.int32) if bias is not None else "", g.const(_f32(ys), np.float32),
           g.const(np.int8(yzp), np.int8)]
    y = g.node("QGemm", ins, "y", domain=MS_DOMAIN, transB=1)
    return g.run(g.clip(y, act))


def qlinear_matmul(a, a_s, a_zp, b_kn, b_s, ys, yzp):
    """ONNX QLinearMatMul (no bias). a: [M, K]; b_kn: [K, N]; b_s: scalar or [N]."""
    g = Graph()
    n = b_kn.shape[1]
    b_s = _f32(b_s)
    b_zp = np.zeros(n, np.int8) if b_s.ndim == 1 else np.int8(0)
    ins = [g.input("a", a), g.const(_f32(a_s), np.float32), g.const(np.int8(a_zp), np.int8),
           g.const(b_kn, np.int8), g.const(b_s, np.float32), g.const(b_zp, np.int8),
           g.const(_f32(ys), np.float32), g.const(np.int8(yzp), np.int8)]
    return g.run(g.node("QLinearMatMul", ins, "y"))


def qlinear_add(a, sa, zpa, b, sb, zpb, sy, zpy, act=(-128, 127), optimize=True):
    g = Graph()
    ins = [g.input("a", a), g.const(_f32(sa), np.float32), g.const(np.int8(zpa), np.int8),
           g.input("b", b), g.const(_f32(sb), np.float32), g.const(np.int8(zpb), np.int8),
           g.const(_f32(sy), np.float32), g.const(np.int8(zpy), np.int8)]
    y = g.node("QLinearAdd", ins, "y", domain=MS_DOMAIN)
    return g.run(g.clip(y, act), optimize=optimize)


def qlinear_global_avgpool(x, xs, xzp, ys, yzp, act=(-128, 127)):
    g = Graph()
    ins = [g.input("x", x), g.const(_f32(xs), np.float32), g.const(np.int8(xzp), np.int8),
           g.const(_f32(ys), np.float32), g.const(np.int8(yzp), np.int8)]
    y = g.node("QLinearGlobalAveragePool", ins, "y", domain=MS_DOMAIN, channels_last=0)
    return g.run(g.clip(y, act))


def qlinear_avgpool(x, kernel, strides, pads, count_include_pad, xs, xzp, ys, yzp, act=(-128, 127),
                    optimize=True):
    g = Graph()
    ins = [g.input("x", x), g.const(_f32(xs), np.float32), g.const(np.int8(xzp), np.int8),
           g.const(_f32(ys), np.float32), g.const(np.int8(yzp), np.int8)]
    y = g.node("QLinearAveragePool", ins, "y", domain=MS_DOMAIN, kernel_shape=list(kernel),
               strides=list(strides), pads=list(pads), count_include_pad=int(count_include_pad))
    return g.run(g.clip(y, act), optimize=optimize)


def maxpool(x, kernel, strides, pads, act=(-128, 127)):
    g = Graph()
    y = g.node("MaxPool", [g.input("x", x)], "y", kernel_shape=list(kernel), strides=list(strides),
               pads=list(pads))
    return g.run(g.clip(y, act))


def qlinear_concat(xs, scales, zps, ys, yzp, axis=1):
    g = Graph()
    ins = [g.const(_f32(ys), np.float32), g.const(np.int8(yzp), np.int8)]
    for i, (x, s, zp) in enumerate(zip(xs, scales, zps)):
        ins += [g.input(f"x{i}", x), g.const(_f32(s), np.float32), g.const(np.int8(zp), np.int8)]
    return g.run(g.node("QLinearConcat", ins, "y", domain=MS_DOMAIN, axis=axis))


def qlinear_softmax(x, xs, xzp, ys, yzp):
    g = Graph()
    ins = [g.input("x", x), g.const(_f32(xs), np.float32), g.const(np.int8(xzp), np.int8),
           g.const(_f32(ys), np.float32), g.const(np.int8(yzp), np.int8)]
    return g.run(g.node("QLinearSoftmax", ins, "y", domain=MS_DOMAIN, axis=-1, opset=OPSET))


def argmax(x, axis=-1):
    g = Graph()
    return g.run(g.node("ArgMax", [g.input("x", x)], "y", axis=axis, keepdims=0), out_dtype=np.int64)
