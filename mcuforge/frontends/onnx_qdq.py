"""Read an int8 ONNX model in QDQ format into the engine's graph.

Every activation is the output of a QuantizeLinear node (its scale and zero point are the tensor's). A compute
node sits between DequantizeLinear nodes (of activations or of int8/int32 initializers) and one QuantizeLinear; a Relu
or Clip right after it is fused into the output clamp. Shapes come from ONNX shape inference with the batch fixed
to 1.
"""
from __future__ import annotations

import numpy as np

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op, OpKind, Tensor

from .onnx_common import (ACTIVATIONS, VIEW_OPS, check_views, conv_layout, conv_window, nchw_to_nhwc_shape,
                          node_attrs, pool_window, single_io, unsupported, weight_scales, wiring)


def read(model) -> Graph:
    """A QDQ model (nodes already named) as a Graph; McuforgeError naming the op and node when unsupported."""
    return QdqReader(model).read()


def static_shapes(model) -> dict[str, list[int]]:
    """Every value's shape with the batch fixed to 1 (ONNX shape inference)."""
    import onnx

    model = onnx.ModelProto.FromString(model.SerializeToString())
    for value in list(model.graph.input) + list(model.graph.output):
        dims = value.type.tensor_type.shape.dim
        if dims and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
    for value in model.graph.output:
        for dim in value.type.tensor_type.shape.dim:
            if not dim.HasField("dim_value"):
                dim.dim_value = 1
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    shapes = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        dims = value.type.tensor_type.shape.dim
        if all(d.HasField("dim_value") for d in dims):
            shapes[value.name] = [d.dim_value for d in dims]
    for value in model.graph.input:
        if any(not d.HasField("dim_value") for d in value.type.tensor_type.shape.dim[1:]):
            raise McuforgeError(f"graph input '{value.name}' has a dynamic shape; the engine needs static shapes "
                                "(only the batch may be dynamic)")
    return shapes


class QdqReader:
    """One QDQ model's constants, wiring and int8 tensors, and one builder per supported op type."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.graph = model.graph
        self.inits = {init.name: numpy_helper.to_array(init) for init in self.graph.initializer}
        for node in self.graph.node:  # Constant nodes behave as initializers
            if node.op_type == "Constant":
                self.inits[node.output[0]] = numpy_helper.to_array(node_attrs(node)["value"])
        self.shapes = static_shapes(model)
        self.producer, self.consumers = wiring(self.graph)
        self.tensors: dict[str, Tensor] = {}

    def read(self) -> Graph:
        onnx_input, onnx_output = single_io(self.graph)
        first = [n for n in self.consumers[onnx_input] if n.op_type == "QuantizeLinear"]
        if len(first) != 1 or len(self.consumers[onnx_input]) != 1:
            raise McuforgeError(f"graph input '{onnx_input}' must feed exactly one QuantizeLinear (a QDQ int8 model)")
        input_tensor = self.quantized(first[0])
        last = self.producer.get(onnx_output)
        if last is None or last.op_type != "DequantizeLinear" or last.input[0] not in self.producer \
                or self.producer[last.input[0]].op_type != "QuantizeLinear":
            raise McuforgeError(f"graph output '{onnx_output}' must come from DequantizeLinear(QuantizeLinear(...))")
        builders = {"Conv": self.conv, "Gemm": self.fully_connected, "MatMul": self.fully_connected,
                    "Add": self.add, "GlobalAveragePool": self.global_avgpool, "AveragePool": self.pool,
                    "MaxPool": self.pool, "Concat": self.concat, "Softmax": self.softmax}
        builders.update({view: self.view for view in VIEW_OPS})
        ops: list[Op] = []
        for node in self.graph.node:
            kind = node.op_type
            if kind in ("QuantizeLinear", "DequantizeLinear", "Constant"):
                continue
            if kind in ACTIVATIONS:
                prev = self.producer.get(node.input[0])
                if prev is not None and prev.op_type not in ("DequantizeLinear", "QuantizeLinear"):
                    continue  # fused into the op before it by output_of()
                raise unsupported(node, "a standalone activation; only Relu/Clip directly after a compute op are fused")
            if kind not in builders:
                raise unsupported(node, "op type not supported")
            ops.append(builders[kind](node, node.name or f"{kind}_{len(ops)}", node_attrs(node)))
        check_views(ops, self.tensors)
        return Graph(self.tensors, ops, input_tensor.name, last.input[0], onnx_input, onnx_output)

    # ---- tensors ------------------------------------------------------------------------------------------------
    def scalar(self, name: str, node) -> np.ndarray:
        if name not in self.inits:
            raise unsupported(node, f"quantization parameter '{name}' is not a constant")
        return self.inits[name]

    def quantized(self, q_node) -> Tensor:
        """The int8 tensor a QuantizeLinear node outputs."""
        out = q_node.output[0]
        if out not in self.tensors:
            has_zp = len(q_node.input) > 2 and q_node.input[2]
            zp_arr = self.scalar(q_node.input[2], q_node) if has_zp else np.int8(0)
            if zp_arr.dtype != np.int8:
                raise unsupported(q_node, f"zero point of type {zp_arr.dtype}; the engine is int8 only")
            scale = np.float32(self.scalar(q_node.input[1], q_node))
            if out not in self.shapes:
                raise unsupported(q_node, "its output shape could not be inferred")
            self.tensors[out] = Tensor(out, nchw_to_nhwc_shape(self.shapes[out]), float(scale), int(zp_arr))
        return self.tensors[out]

    def activation_input(self, name: str, node) -> str:
        dq = self.producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] in self.inits:
            raise unsupported(node, f"input '{name}' is not a dequantized int8 activation")
        q = self.producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            raise unsupported(node, f"input '{name}' does not come from a QuantizeLinear")
        return self.quantized(q).name

    def constant_input(self, name: str, node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(integer values, scales, zero points) of a DequantizeLinear'ed initializer."""
        dq = self.producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in self.inits:
            raise unsupported(node, f"input '{name}' is not a quantized constant")
        values = self.inits[dq.input[0]]
        scales = np.atleast_1d(self.scalar(dq.input[1], dq)).astype(np.float32)
        has_zp = len(dq.input) > 2 and dq.input[2]
        zps = np.atleast_1d(self.scalar(dq.input[2], dq)) if has_zp else np.zeros(1, np.int64)
        return values, scales, zps

    def output_of(self, node) -> tuple[str, tuple[int, int]]:
        """The quantized output tensor of `node`, and the activation clamp of a fused Relu/Clip."""
        name = node.output[0]
        fused = None
        users = self.consumers[name]
        if len(users) == 1 and users[0].op_type in ACTIVATIONS:
            fused = users[0]
            name = fused.output[0]
            users = self.consumers[name]
        if len(users) != 1 or users[0].op_type != "QuantizeLinear":
            raise unsupported(node, "its output must go to exactly one QuantizeLinear (optionally through Relu/Clip)")
        out = self.quantized(users[0])
        lo, hi = -128, 127
        if fused is not None:
            if fused.op_type == "Relu":
                low_real, high_real = 0.0, None
            else:
                low_real = self.clip_bound(fused, 1)
                high_real = self.clip_bound(fused, 2)
            if low_real is not None:
                lo = max(lo, int(np.rint(np.float32(low_real) / np.float32(out.scale))) + out.zp)
            if high_real is not None:
                hi = min(hi, int(np.rint(np.float32(high_real) / np.float32(out.scale))) + out.zp)
        return out.name, (lo, min(max(hi, lo), 127))

    def clip_bound(self, clip, index: int) -> float | None:
        """A Clip's min (input 1) or max (input 2) as a real number, None when absent."""
        if len(clip.input) > index and clip.input[index]:
            return float(self.inits[clip.input[index]])
        return None

    # ---- op builders: (node, name, attrs) -> Op -----------------------------------------------------------------
    def conv(self, node, name: str, attrs: dict) -> Op:
        src = self.activation_input(node.input[0], node)
        weight, w_scales, w_zps = self.constant_input(node.input[1], node)
        if weight.dtype != np.int8:
            raise unsupported(node, f"weights of type {weight.dtype}; int8 expected")
        out, clamp = self.output_of(node)
        window = conv_window(node, attrs)
        bias = None
        if len(node.input) > 2 and node.input[2]:
            bias_values, _, _ = self.constant_input(node.input[2], node)
            bias = bias_values.astype(np.int32)
        w_scale = weight_scales(node, w_scales, w_zps, weight.shape[0])
        kind, layout = conv_layout(node, attrs, weight, self.tensors[src].shape[2])
        consts = {"weight": layout, "w_scale": w_scale}
        if bias is not None:
            consts["bias"] = bias
        return Op(kind, name, node.op_type, [src], out, {**window, "clamp": clamp}, consts)

    def fully_connected(self, node, name: str, attrs: dict) -> Op:
        src = self.activation_input(node.input[0], node)
        weight, w_scales, w_zps = self.constant_input(node.input[1], node)
        if node.op_type == "Gemm":
            if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
                raise unsupported(node, "Gemm with transA, alpha or beta other than the defaults")
            if not attrs.get("transB", 0):
                weight = weight.T
        else:
            weight = weight.T  # MatMul: [K, N] -> [N, K]
        out, clamp = self.output_of(node)
        consts = {"weight": np.ascontiguousarray(weight),
                  "w_scale": weight_scales(node, w_scales, w_zps, weight.shape[0])}
        if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
            bias_values, _, _ = self.constant_input(node.input[2], node)
            consts["bias"] = bias_values.astype(np.int32).reshape(-1)
        return Op(OpKind.fc, name, node.op_type, [src], out, {"clamp": clamp}, consts)

    def add(self, node, name: str, attrs: dict) -> Op:
        ins = [self.activation_input(i, node) for i in node.input]
        out, clamp = self.output_of(node)
        if self.tensors[ins[0]].shape != self.tensors[ins[1]].shape:
            raise unsupported(node, "broadcasting add (inputs of different shapes)")
        return Op(OpKind.add, name, node.op_type, ins, out, {"clamp": clamp})

    def global_avgpool(self, node, name: str, attrs: dict) -> Op:
        ins = [self.activation_input(node.input[0], node)]
        out, clamp = self.output_of(node)
        return Op(OpKind.global_avgpool, name, node.op_type, ins, out, {"clamp": clamp})

    def pool(self, node, name: str, attrs: dict) -> Op:
        src = self.activation_input(node.input[0], node)
        out, clamp = self.output_of(node)
        kind, window = pool_window(node, attrs, self.tensors[src], self.tensors[out])
        return Op(kind, name, node.op_type, [src], out, {**window, "clamp": clamp})

    def concat(self, node, name: str, attrs: dict) -> Op:
        if attrs.get("axis") not in (1, -3):
            raise unsupported(node, f"concat along axis {attrs.get('axis')}; only channels (axis 1) are supported")
        ins = [self.activation_input(i, node) for i in node.input]
        out, clamp = self.output_of(node)
        return Op(OpKind.concat, name, node.op_type, ins, out, {"clamp": clamp})

    def view(self, node, name: str, attrs: dict) -> Op:
        src = self.activation_input(node.input[0], node)
        out, _ = self.output_of(node)
        if (self.tensors[src].scale, self.tensors[src].zp) != (self.tensors[out].scale, self.tensors[out].zp):
            raise unsupported(node, "a reshape that changes the quantization")
        return Op(OpKind.view, name, node.op_type, [src], out)

    def softmax(self, node, name: str, attrs: dict) -> Op:
        axis = attrs.get("axis", -1)
        src = self.activation_input(node.input[0], node)
        if axis not in (-1, len(self.tensors[src].shape)):
            raise unsupported(node, f"softmax along axis {axis}; only the last axis is supported")
        out, _ = self.output_of(node)
        return Op(OpKind.softmax, name, node.op_type, [src], out)
