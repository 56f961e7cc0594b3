"""Read an int8 ONNX model in QOperator format into the engine's graph.

ONNX Runtime's fused integer ops (QLinearConv, QGemm, QLinearAdd, QLinearGlobalAveragePool...) carry their scales and
zero points as inputs; the engine reproduces their arithmetic. MaxPool and reshapes run on the int8 tensors
directly, an int8 Relu/Clip right after a QLinear* op is fused into its output clamp. Shapes come from one ONNX
Runtime run on zeros: ONNX shape inference does not know the com.microsoft QLinear* ops.
"""
from __future__ import annotations

import numpy as np

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op, OpKind, Tensor

from .onnx_common import (ACTIVATIONS, QOPERATOR_TYPES, VIEW_OPS, check_views, conv_layout, conv_window,
                          nchw_to_nhwc_shape, node_attrs, pool_window, single_io, unsupported, weight_scales, wiring)


def read(model) -> Graph:
    """A QOperator model (nodes already named) as a Graph; McuforgeError naming the op and node when unsupported."""
    return QOperatorReader(model).read()


def int8_shapes(model) -> dict[str, list[int]]:
    """Shapes (batch 1) of every tensor, by running ONNX Runtime once on zeros with every value exposed."""
    import onnx
    import onnxruntime as ort

    probe = onnx.ModelProto.FromString(model.SerializeToString())
    graph_input = probe.graph.input[0]
    dims = [d.dim_value if d.HasField("dim_value") else 1 for d in graph_input.type.tensor_type.shape.dim]
    if any(d.HasField("dim_param") for d in graph_input.type.tensor_type.shape.dim[1:]):
        raise McuforgeError(f"graph input '{graph_input.name}' has a dynamic shape; only the batch may be dynamic")
    present = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in present:
                probe.graph.output.append(onnx.ValueInfoProto(name=name))
                present.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    session = ort.InferenceSession(probe.SerializeToString(), options, providers=["CPUExecutionProvider"])
    dtype = {1: np.float32, 3: np.int8, 2: np.uint8}[graph_input.type.tensor_type.elem_type]
    names = [o.name for o in session.get_outputs()]
    values = session.run(names, {graph_input.name: np.zeros(dims, dtype=dtype)})
    return {name: list(value.shape) for name, value in zip(names, values)}


class QOperatorReader:
    """One QOperator model's constants, wiring and int8 tensors, and one builder per supported op type."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.graph = model.graph
        self.inits = {init.name: numpy_helper.to_array(init) for init in self.graph.initializer}
        self.shapes = int8_shapes(model)
        self.producer, self.consumers = wiring(self.graph)
        self.tensors: dict[str, Tensor] = {}

    def read(self) -> Graph:
        onnx_input, onnx_output = single_io(self.graph)
        first = self.consumers[onnx_input]
        if len(first) != 1 or first[0].op_type != "QuantizeLinear":
            raise McuforgeError(f"graph input '{onnx_input}' must feed exactly one QuantizeLinear")
        q = first[0]
        input_name = self.define(q.output[0], q.input[1], q.input[2] if len(q.input) > 2 else "", q).name
        last = self.producer.get(onnx_output)
        if last is None or last.op_type != "DequantizeLinear":
            raise McuforgeError(f"graph output '{onnx_output}' must come from a DequantizeLinear of an int8 tensor")
        builders = {"QLinearConv": self.conv, "QGemm": self.fully_connected, "QLinearMatMul": self.fully_connected,
                    "QLinearAdd": self.add, "QLinearGlobalAveragePool": self.global_avgpool,
                    "QLinearAveragePool": self.pool, "MaxPool": self.pool, "QLinearConcat": self.concat,
                    "QLinearSoftmax": self.softmax}
        builders.update({view: self.view for view in VIEW_OPS})
        ops: list[Op] = []
        for node in self.graph.node:
            kind = node.op_type
            if node is q or node is last:
                continue
            if kind in ACTIVATIONS:
                prev = self.producer.get(node.input[0])
                if prev is not None and prev.op_type in QOPERATOR_TYPES:
                    continue  # fused by clamp_of
                raise unsupported(node, "a standalone activation; only Relu/Clip directly after a compute op are fused")
            if kind not in builders:
                raise unsupported(node, "op type not supported")
            op = builders[kind](node, node.name or f"{kind}_{len(ops)}", node_attrs(node))
            op.nodes = [node.name]
            ops.append(op)
        output_name = self.use(last.input[0], last)
        check_views(ops, self.tensors)
        return Graph(self.tensors, ops, input_name, output_name, onnx_input, onnx_output, "qoperator")

    # ---- tensors ------------------------------------------------------------------------------------------------
    def const(self, name: str, node) -> np.ndarray:
        if name not in self.inits:
            raise unsupported(node, f"'{name}' must be a constant")
        return self.inits[name]

    def define(self, name: str, scale_name: str, zp_name: str, node) -> Tensor:
        """The int8 tensor `name`, quantized by the constants `scale_name` and `zp_name` (absent: zero point 0)."""
        zp = self.const(zp_name, node) if zp_name else np.int8(0)
        if zp.dtype != np.int8:
            raise unsupported(node, f"tensor '{name}' has a {zp.dtype} zero point; the engine is int8 only")
        if name not in self.tensors:
            scale = float(np.float32(self.const(scale_name, node)))
            self.tensors[name] = Tensor(name, nchw_to_nhwc_shape(self.shapes[name]), scale, int(zp))
        return self.tensors[name]

    def define_like(self, name: str, source: str) -> None:
        """Define `name` (MaxPool or a view output) with the shape inferred for it and `source`'s quantization."""
        self.tensors[name] = Tensor(name, nchw_to_nhwc_shape(self.shapes[name]), self.tensors[source].scale,
                                    self.tensors[source].zp)

    def use(self, name: str, node) -> str:
        if name not in self.tensors:
            raise unsupported(node, f"input '{name}' is not an int8 tensor produced by a supported op")
        return name

    def clamp_of(self, node) -> tuple[str, tuple[int, int]]:
        """The output of `node`, following an int8 Relu/Clip right after it (fused into its output clamp)."""
        name = node.output[0]
        users = self.consumers[name]
        if len(users) == 1 and users[0].op_type in ACTIVATIONS:
            act = users[0]
            out = self.tensors[name]
            if act.op_type == "Relu":
                lo, hi = out.zp, 127
            else:
                lo = int(self.const(act.input[1], act)) if len(act.input) > 1 and act.input[1] else -128
                hi = int(self.const(act.input[2], act)) if len(act.input) > 2 and act.input[2] else 127
            self.tensors[act.output[0]] = Tensor(act.output[0], out.shape, out.scale, out.zp)
            return act.output[0], (max(lo, -128), min(hi, 127))
        return name, (-128, 127)

    # ---- op builders: (node, name, attrs) -> Op -----------------------------------------------------------------
    def conv(self, node, name: str, attrs: dict) -> Op:
        """QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp[, bias])."""
        src = self.use(node.input[0], node)
        self.define(node.output[0], node.input[6], node.input[7], node)
        weight, w_scale, w_zp = (self.const(node.input[i], node) for i in (3, 4, 5))
        out, clamp = self.clamp_of(node)
        if weight.dtype != np.int8:
            raise unsupported(node, f"weights of type {weight.dtype}; int8 expected")
        window = conv_window(node, attrs)
        bias = None
        if len(node.input) > 8 and node.input[8]:
            bias = self.const(node.input[8], node).astype(np.int32)
        scales = weight_scales(node, np.atleast_1d(w_scale).astype(np.float32), np.atleast_1d(w_zp), weight.shape[0])
        kind, layout = conv_layout(node, attrs, weight, self.tensors[src].shape[2])
        consts = {"weight": layout, "w_scale": scales}
        if bias is not None:
            consts["bias"] = bias
        return Op(kind, name, node.op_type, [src], out, {**window, "clamp": clamp}, consts)

    def fully_connected(self, node, name: str, attrs: dict) -> Op:
        """QGemm(a, a_scale, a_zp, b, b_scale, b_zp[, c], y_scale, y_zp) or QLinearMatMul (no bias)."""
        kind = node.op_type
        src = self.use(node.input[0], node)
        y_scale, y_zp = (node.input[7], node.input[8]) if kind == "QGemm" else (node.input[6], node.input[7])
        self.define(node.output[0], y_scale, y_zp, node)
        out, clamp = self.clamp_of(node)
        weight = self.const(node.input[3], node)
        if kind == "QGemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0:
                raise unsupported(node, "QGemm with transA or alpha other than the defaults")
            weight = weight if attrs.get("transB", 0) else weight.T
        else:
            weight = weight.T
        scales = np.atleast_1d(self.const(node.input[4], node)).astype(np.float32)
        zps = np.atleast_1d(self.const(node.input[5], node))
        consts = {"weight": np.ascontiguousarray(weight), "w_scale": weight_scales(node, scales, zps, weight.shape[0])}
        if kind == "QGemm" and node.input[6]:
            consts["bias"] = self.const(node.input[6], node).astype(np.int32).reshape(-1)
        return Op(OpKind.fc, name, kind, [src], out, {"clamp": clamp}, consts)

    def add(self, node, name: str, attrs: dict) -> Op:
        a, b = self.use(node.input[0], node), self.use(node.input[3], node)
        self.define(node.output[0], node.input[6], node.input[7], node)
        if self.tensors[a].shape != self.tensors[b].shape:
            raise unsupported(node, "broadcasting add (inputs of different shapes)")
        out, clamp = self.clamp_of(node)
        return Op(OpKind.add, name, node.op_type, [a, b], out, {"clamp": clamp})

    def global_avgpool(self, node, name: str, attrs: dict) -> Op:
        if attrs.get("channels_last", 0):
            raise unsupported(node, "channels_last=1")
        src = self.use(node.input[0], node)
        self.define(node.output[0], node.input[3], node.input[4], node)
        out, clamp = self.clamp_of(node)
        return Op(OpKind.global_avgpool, name, node.op_type, [src], out, {"clamp": clamp})

    def pool(self, node, name: str, attrs: dict) -> Op:
        """QLinearAveragePool, or a MaxPool on int8 (its output keeps the input's quantization)."""
        src = self.use(node.input[0], node)
        if node.op_type == "MaxPool":
            self.define_like(node.output[0], src)
        else:
            if attrs.get("channels_last", 0):
                raise unsupported(node, "channels_last=1")
            self.define(node.output[0], node.input[3], node.input[4], node)
        out, clamp = self.clamp_of(node)
        kind, window = pool_window(node, attrs, self.tensors[src], self.tensors[out])
        return Op(kind, name, node.op_type, [src], out, {**window, "clamp": clamp})

    def concat(self, node, name: str, attrs: dict) -> Op:
        """QLinearConcat(y_scale, y_zp, x0, x0_scale, x0_zp, x1, ...)."""
        if attrs.get("axis") not in (1, -3):
            raise unsupported(node, f"concat along axis {attrs.get('axis')}; only channels (axis 1) are supported")
        self.define(node.output[0], node.input[0], node.input[1], node)
        ins = [self.use(node.input[i], node) for i in range(2, len(node.input), 3)]
        out, clamp = self.clamp_of(node)
        return Op(OpKind.concat, name, node.op_type, ins, out, {"clamp": clamp})

    def view(self, node, name: str, attrs: dict) -> Op:
        src = self.use(node.input[0], node)
        self.define_like(node.output[0], src)
        return Op(OpKind.view, name, node.op_type, [src], node.output[0])

    def softmax(self, node, name: str, attrs: dict) -> Op:
        src = self.use(node.input[0], node)
        self.define(node.output[0], node.input[3], node.input[4], node)
        axis = attrs.get("axis", -1)
        if axis not in (-1, len(self.shapes[src]) - 1):
            raise unsupported(node, f"softmax along axis {axis}; only the last axis is supported")
        return Op(OpKind.softmax, name, node.op_type, [src], node.output[0])
