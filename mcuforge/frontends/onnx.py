"""Read an int8 ONNX model into the engine's graph (mcuforge/ir/graph.py), in either of ONNX Runtime's formats.

QDQ: every activation is the output of a QuantizeLinear node (its scale and zero point are the tensor's). A compute
node sits between DequantizeLinear nodes (of activations or of int8/int32 initializers) and one QuantizeLinear; a Relu
or Clip right after it is fused into the output clamp. QOperator: ONNX Runtime's fused integer ops (QLinearConv,
QGemm, QLinearAdd, QLinearGlobalAveragePool...), whose arithmetic the engine reproduces.
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op, Tensor

SUPPORTED = ("Conv", "Gemm", "MatMul", "Add", "GlobalAveragePool", "AveragePool", "MaxPool", "Concat",
             "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Softmax")
VIEW_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")


def _nchw_to_nhwc_shape(shape: list[int]) -> tuple[int, ...]:
    dims = list(shape[1:])  # drop the batch
    if len(dims) == 3:
        return (dims[1], dims[2], dims[0])
    if len(dims) == 1:
        return (dims[0],)
    if len(dims) == 2:  # [N, A, B] (rare): keep the order
        return tuple(dims)
    raise McuforgeError(f"tensor with shape {shape}: only 2-D (batch, features) and 4-D NCHW tensors are supported")


def _static_shapes(model) -> dict[str, list[int]]:
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


def _attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _unsupported(node, why: str) -> McuforgeError:
    return McuforgeError(f"unsupported: {node.op_type} node '{node.name}': {why}. Supported ops: "
                         f"{', '.join(SUPPORTED)} between QuantizeLinear/DequantizeLinear (int8 QDQ format), or "
                         f"{', '.join(QOPERATOR_TYPES)}, MaxPool and reshapes (QOperator format); "
                         "Relu/Clip are fused into the op before them")


def _single_io(graph) -> tuple[str, str]:
    """Names of the model's one input and one output."""
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise McuforgeError(f"the model must have one input and one output (has {len(graph.input)} and "
                            f"{len(graph.output)})")
    return graph.input[0].name, graph.output[0].name


QOPERATOR_TYPES = ("QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
                   "QGemm", "QLinearMatMul", "QLinearSoftmax")


def name_nodes(model) -> None:
    """Name every unnamed or twice-named node `<op_type>_<index>`, the same on every load: ops, plans and the per-layer
    reference find nodes by name, and ONNX Runtime's quantize_static leaves its nodes unnamed when the float model's
    were (no pre-processing)."""
    seen: set[str] = set()
    taken = {node.name for node in model.graph.node}
    for index, node in enumerate(model.graph.node):
        if not node.name or node.name in seen:
            name = f"{node.op_type}_{index}"
            while name in taken:
                name += "_"
            node.name = name
            taken.add(name)
        seen.add(node.name)


def load(path: Path) -> Graph:
    """Parse an int8 ONNX model (QOperator or QDQ format) into a Graph; raise McuforgeError naming the op and node
    when something is unsupported."""
    import onnx

    model = onnx.load(str(path))
    name_nodes(model)
    if any(node.op_type in QOPERATOR_TYPES for node in model.graph.node):
        return _load_qoperator(model)
    return _load_qdq(model)


def _load_qdq(model) -> Graph:
    from onnx import numpy_helper

    graph = model.graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    for node in graph.node:  # Constant nodes behave as initializers
        if node.op_type == "Constant":
            inits[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
    shapes = _static_shapes(model)
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)

    def scalar(name: str, node) -> np.ndarray:
        if name not in inits:
            raise _unsupported(node, f"quantization parameter '{name}' is not a constant")
        return inits[name]

    tensors: dict[str, Tensor] = {}

    def quantized(q_node) -> Tensor:
        out = q_node.output[0]
        if out not in tensors:
            zp_arr = scalar(q_node.input[2], q_node) if len(q_node.input) > 2 and q_node.input[2] else np.int8(0)
            if zp_arr.dtype != np.int8:
                raise _unsupported(q_node, f"zero point of type {zp_arr.dtype}; the engine is int8 only")
            scale = np.float32(scalar(q_node.input[1], q_node))
            if out not in shapes:
                raise _unsupported(q_node, "its output shape could not be inferred")
            tensors[out] = Tensor(out, _nchw_to_nhwc_shape(shapes[out]), float(scale), int(zp_arr))
        return tensors[out]

    onnx_input, onnx_output = _single_io(graph)
    first = [n for n in consumers[onnx_input] if n.op_type == "QuantizeLinear"]
    if len(first) != 1 or len(consumers[onnx_input]) != 1:
        raise McuforgeError(f"graph input '{onnx_input}' must feed exactly one QuantizeLinear (a QDQ int8 model)")
    input_tensor = quantized(first[0])
    last = producer.get(onnx_output)
    if last is None or last.op_type != "DequantizeLinear" or last.input[0] not in producer \
            or producer[last.input[0]].op_type != "QuantizeLinear":
        raise McuforgeError(f"graph output '{onnx_output}' must come from DequantizeLinear(QuantizeLinear(...))")
    output_name = last.input[0]

    def activation_input(name: str, node) -> str:
        dq = producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] in inits:
            raise _unsupported(node, f"input '{name}' is not a dequantized int8 activation")
        q = producer.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            raise _unsupported(node, f"input '{name}' does not come from a QuantizeLinear")
        return quantized(q).name

    def constant_input(name: str, node) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(integer values, scales, zero points) of a DequantizeLinear'ed initializer."""
        dq = producer.get(name)
        if dq is None or dq.op_type != "DequantizeLinear" or dq.input[0] not in inits:
            raise _unsupported(node, f"input '{name}' is not a quantized constant")
        values = inits[dq.input[0]]
        scales = np.atleast_1d(scalar(dq.input[1], dq)).astype(np.float32)
        zps = np.atleast_1d(scalar(dq.input[2], dq)) if len(dq.input) > 2 and dq.input[2] else np.zeros(1, np.int64)
        return values, scales, zps

    def output_of(node) -> tuple[str, tuple[int, int]]:
        """The quantized output tensor of `node`, and the activation clamp of a fused Relu/Clip."""
        name = node.output[0]
        fused = None
        users = consumers[name]
        if len(users) == 1 and users[0].op_type in ("Relu", "Clip"):
            fused = users[0]
            name = fused.output[0]
            users = consumers[name]
        if len(users) != 1 or users[0].op_type != "QuantizeLinear":
            raise _unsupported(node, "its output must go to exactly one QuantizeLinear (optionally through Relu/Clip)")
        out = quantized(users[0])
        lo, hi = -128, 127
        if fused is not None:
            if fused.op_type == "Relu":
                low_real, high_real = 0.0, None
            else:
                low_real = float(inits[fused.input[1]]) if len(fused.input) > 1 and fused.input[1] else None
                high_real = float(inits[fused.input[2]]) if len(fused.input) > 2 and fused.input[2] else None
            if low_real is not None:
                lo = max(lo, int(np.rint(np.float32(low_real) / np.float32(out.scale))) + out.zp)
            if high_real is not None:
                hi = min(hi, int(np.rint(np.float32(high_real) / np.float32(out.scale))) + out.zp)
        return out.name, (lo, min(max(hi, lo), 127))

    ops: list[Op] = []
    for node in graph.node:
        kind = node.op_type
        if kind in ("QuantizeLinear", "DequantizeLinear", "Constant"):
            continue
        if kind in ("Relu", "Clip"):
            prev = producer.get(node.input[0])
            if prev is not None and prev.op_type not in ("DequantizeLinear", "QuantizeLinear"):
                continue  # fused into the op before it by output_of()
            raise _unsupported(node, "a standalone activation; only Relu/Clip directly after a compute op are fused")
        if kind not in SUPPORTED:
            raise _unsupported(node, "op type not supported")
        attrs = _attrs(node)
        name = node.name or f"{kind}_{len(ops)}"
        if kind == "Conv":
            ops.append(_conv(node, name, attrs, activation_input, constant_input, output_of, _weights_per_channel,
                             tensors, _unsupported))
        elif kind in ("Gemm", "MatMul"):
            ops.append(_fully_connected(node, name, attrs, activation_input, constant_input, output_of,
                                        _weights_per_channel, tensors))
        elif kind == "Add":
            ins = [activation_input(i, node) for i in node.input]
            out, clamp = output_of(node)
            if tensors[ins[0]].shape != tensors[ins[1]].shape:
                raise _unsupported(node, "broadcasting add (inputs of different shapes)")
            ops.append(Op("add", name, kind, ins, out, {"clamp": clamp}))
        elif kind == "GlobalAveragePool":
            ins = [activation_input(node.input[0], node)]
            out, clamp = output_of(node)
            ops.append(Op("global_avgpool", name, kind, ins, out, {"clamp": clamp}))
        elif kind in ("AveragePool", "MaxPool"):
            ops.append(_pool(node, name, attrs, activation_input, output_of, tensors))
        elif kind == "Concat":
            if attrs.get("axis") not in (1, -3):
                raise _unsupported(node, f"concat along axis {attrs.get('axis')}; only channels (axis 1) are supported")
            ins = [activation_input(i, node) for i in node.input]
            out, clamp = output_of(node)
            ops.append(Op("concat", name, kind, ins, out, {"clamp": clamp}))
        elif kind in VIEW_OPS:
            src = activation_input(node.input[0], node)
            out, _ = output_of(node)
            if (tensors[src].scale, tensors[src].zp) != (tensors[out].scale, tensors[out].zp):
                raise _unsupported(node, "a reshape that changes the quantization")
            ops.append(Op("view", name, kind, [src], out))
        elif kind == "Softmax":
            axis = attrs.get("axis", -1)
            src = activation_input(node.input[0], node)
            if axis not in (-1, len(tensors[src].shape)):
                raise _unsupported(node, f"softmax along axis {axis}; only the last axis is supported")
            out, _ = output_of(node)
            ops.append(Op("softmax", name, kind, [src], out))
    _check_views(ops, tensors)
    return Graph(tensors, ops, input_tensor.name, output_name, onnx_input, onnx_output)


def _conv(node, name, attrs, activation_input, constant_input, output_of, weights_per_channel, tensors, unsupported):
    src = activation_input(node.input[0], node)
    weight, w_scales, w_zps = constant_input(node.input[1], node)
    if weight.dtype != np.int8:
        raise unsupported(node, f"weights of type {weight.dtype}; int8 expected")
    out, clamp = output_of(node)
    cout, cin_g, kh, kw = weight.shape
    group = attrs.get("group", 1)
    cin = tensors[src].shape[2]
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        raise unsupported(node, f"auto_pad={attrs['auto_pad']!r}; explicit pads are supported")
    pads = list(attrs.get("pads", [0, 0, 0, 0]))
    strides = list(attrs.get("strides", [1, 1]))
    dilations = list(attrs.get("dilations", [1, 1]))
    bias = None
    if len(node.input) > 2 and node.input[2]:
        bias_values, _, _ = constant_input(node.input[2], node)
        bias = bias_values.astype(np.int32)
    w_scale = weights_per_channel(node, w_scales, w_zps, cout)
    conv_attrs = {"pads": pads, "strides": strides, "dilations": dilations, "clamp": clamp}
    if group == 1:
        kind = "conv1x1" if (kh, kw) == (1, 1) and not any(pads) else "conv"
        layout = weight.transpose(0, 2, 3, 1)  # OIHW -> OHWI
    elif group == cin == cout and cin_g == 1:
        kind = "depthwise"
        layout = weight[:, 0].transpose(1, 2, 0)  # [C, 1, kh, kw] -> [kh, kw, C]
    else:
        raise unsupported(node, f"grouped convolution (group={group}, {cin} input and {cout} output channels); "
                          "only group 1 and depthwise (group = channels, multiplier 1) are supported")
    consts = {"weight": np.ascontiguousarray(layout), "w_scale": w_scale}
    if bias is not None:
        consts["bias"] = bias
    return Op(kind, name, node.op_type, [src], out, conv_attrs, consts)


def _fully_connected(node, name, attrs, activation_input, constant_input, output_of, weights_per_channel, tensors):
    src = activation_input(node.input[0], node)
    weight, w_scales, w_zps = constant_input(node.input[1], node)
    if node.op_type == "Gemm":
        if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0:
            raise _unsupported(node, "Gemm with transA, alpha or beta other than the defaults")
        if not attrs.get("transB", 0):
            weight = weight.T
    else:
        weight = weight.T  # MatMul: [K, N] -> [N, K]
    out, clamp = output_of(node)
    n_out = weight.shape[0]
    consts = {"weight": np.ascontiguousarray(weight), "w_scale": weights_per_channel(node, w_scales, w_zps, n_out)}
    if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2]:
        bias_values, _, _ = constant_input(node.input[2], node)
        consts["bias"] = bias_values.astype(np.int32).reshape(-1)
    return Op("fc", name, node.op_type, [src], out, {"clamp": clamp}, consts)


def _pool(node, name, attrs, activation_input, output_of, tensors):
    src = activation_input(node.input[0], node)
    out, clamp = output_of(node)
    if attrs.get("ceil_mode", 0):
        raise _unsupported(node, "ceil_mode=1")
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", b"VALID", "NOTSET", "VALID"):
        raise _unsupported(node, f"auto_pad={attrs['auto_pad']!r}")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise _unsupported(node, "dilated pooling")
    kind = "maxpool" if node.op_type == "MaxPool" else "avgpool"
    if kind == "maxpool" and (tensors[src].scale, tensors[src].zp) != (tensors[out].scale, tensors[out].zp):
        raise _unsupported(node, "max pool whose output quantization differs from its input's")
    pool_attrs = {
        "kernel": list(attrs["kernel_shape"]),
        "strides": list(attrs.get("strides", [1, 1])),
        "pads": list(attrs.get("pads", [0, 0, 0, 0])),
        "count_include_pad": int(attrs.get("count_include_pad", 0)),
        "clamp": clamp,
    }
    return Op(kind, name, node.op_type, [src], out, pool_attrs)


def _check_views(ops: list[Op], tensors: dict[str, Tensor]) -> None:
    """A view of an NHWC tensor is a plain reinterpretation only when H = W = 1 or the consumer is a fully connected
    layer (whose weight columns are then permuted from NCHW to NHWC order)."""
    for op in ops:
        if op.kind != "view":
            continue
        src = tensors[op.inputs[0]]
        if len(src.shape) == 3 and src.shape[0] * src.shape[1] > 1:
            users = [o for o in ops if op.output in o.inputs]
            if len(users) == 1 and users[0].kind == "fc":
                h, w, c = src.shape
                fc = users[0]
                weight = fc.consts["weight"]  # columns in NCHW order: c * h * w + y * w + x
                perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
                fc.consts["weight"] = np.ascontiguousarray(weight[:, perm])
                continue
            raise McuforgeError(
                f"unsupported: {op.onnx_type} node '{op.name}' flattens a {h}x{w}x{c} tensor for a consumer other "
                "than a fully connected layer (NHWC and NCHW orders differ)"
            )


def _int8_shapes(model) -> dict[str, list[int]]:
    """Shapes (batch 1) of every tensor, by running ONNX Runtime once on zeros with every value exposed: ONNX shape
    inference does not know the com.microsoft QLinear* ops."""
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


def _load_qoperator(model) -> Graph:
    """ONNX Runtime's QOperator format: QLinearConv, QLinearAdd, QGemm... with explicit scales and zero points."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    shapes = _int8_shapes(model)
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    onnx_input, onnx_output = _single_io(graph)
    tensors: dict[str, Tensor] = {}

    def const(name: str, node) -> np.ndarray:
        if name not in inits:
            raise _unsupported(node, f"'{name}' must be a constant")
        return inits[name]

    def define(name: str, scale_name: str, zp_name: str, node) -> Tensor:
        zp = const(zp_name, node) if zp_name else np.int8(0)
        if zp.dtype != np.int8:
            raise _unsupported(node, f"tensor '{name}' has a {zp.dtype} zero point; the engine is int8 only")
        if name not in tensors:
            tensors[name] = Tensor(name, _nchw_to_nhwc_shape(shapes[name]), float(np.float32(const(scale_name, node))),
                                   int(zp))
        return tensors[name]

    def use(name: str, node) -> str:
        if name not in tensors:
            raise _unsupported(node, f"input '{name}' is not an int8 tensor produced by a supported op")
        return name

    first = consumers[onnx_input]
    if len(first) != 1 or first[0].op_type != "QuantizeLinear":
        raise McuforgeError(f"graph input '{onnx_input}' must feed exactly one QuantizeLinear")
    q = first[0]
    input_name = define(q.output[0], q.input[1], q.input[2] if len(q.input) > 2 else "", q).name
    last = producer.get(onnx_output)
    if last is None or last.op_type != "DequantizeLinear":
        raise McuforgeError(f"graph output '{onnx_output}' must come from a DequantizeLinear of an int8 tensor")

    def clamp_of(node) -> tuple[str, tuple[int, int]]:
        """Follow an int8 Relu/Clip right after `node` (fused into its output clamp)."""
        name = node.output[0]
        users = consumers[name]
        if len(users) == 1 and users[0].op_type in ("Relu", "Clip"):
            act = users[0]
            out = tensors[name]
            lo, hi = (out.zp, 127) if act.op_type == "Relu" else (
                int(const(act.input[1], act)) if len(act.input) > 1 and act.input[1] else -128,
                int(const(act.input[2], act)) if len(act.input) > 2 and act.input[2] else 127)
            tensors[act.output[0]] = Tensor(act.output[0], out.shape, out.scale, out.zp)
            return act.output[0], (max(lo, -128), min(hi, 127))
        return name, (-128, 127)

    ops: list[Op] = []
    for node in graph.node:
        kind = node.op_type
        attrs = _attrs(node)
        name = node.name or f"{kind}_{len(ops)}"
        if node is q or node is last:
            continue
        if kind in ("Relu", "Clip"):
            if producer.get(node.input[0]) is not None and producer[node.input[0]].op_type in QOPERATOR_TYPES:
                continue  # fused by clamp_of
            raise _unsupported(node, "a standalone activation; only Relu/Clip directly after a compute op are fused")
        if kind == "QLinearConv":
            src = use(node.input[0], node)
            define(node.output[0], node.input[6], node.input[7], node)
            weight, w_scale, w_zp = const(node.input[3], node), const(node.input[4], node), const(node.input[5], node)
            out, clamp = clamp_of(node)

            def constant_input(input_name, _node, weight=weight, w_scale=w_scale, w_zp=w_zp):
                if input_name == "weight":
                    return weight, np.atleast_1d(w_scale).astype(np.float32), np.atleast_1d(w_zp)
                return const(input_name, node), None, None

            fake = _FakeConv(node, len(node.input) > 8 and node.input[8])
            op = _conv(fake, name, attrs, lambda n, nd, src=src: src, constant_input,
                       lambda nd, out=out, clamp=clamp: (out, clamp), _weights_per_channel, tensors, _unsupported)
        elif kind in ("QGemm", "QLinearMatMul"):
            src = use(node.input[0], node)
            y_scale, y_zp = (node.input[7], node.input[8]) if kind == "QGemm" else (node.input[6], node.input[7])
            define(node.output[0], y_scale, y_zp, node)
            out, clamp = clamp_of(node)
            weight = const(node.input[3], node)
            if kind == "QGemm":
                if attrs.get("transA", 0) or attrs.get("alpha", 1.0) != 1.0:
                    raise _unsupported(node, "QGemm with transA or alpha other than the defaults")
                weight = weight if attrs.get("transB", 0) else weight.T
            else:
                weight = weight.T
            consts = {"weight": np.ascontiguousarray(weight),
                      "w_scale": _weights_per_channel(node, np.atleast_1d(const(node.input[4], node)).astype(np.float32),
                                                      np.atleast_1d(const(node.input[5], node)), weight.shape[0])}
            if kind == "QGemm" and node.input[6]:
                consts["bias"] = const(node.input[6], node).astype(np.int32).reshape(-1)
            op = Op("fc", name, kind, [src], out, {"clamp": clamp}, consts)
        elif kind == "QLinearAdd":
            a, b = use(node.input[0], node), use(node.input[3], node)
            define(node.output[0], node.input[6], node.input[7], node)
            if tensors[a].shape != tensors[b].shape:
                raise _unsupported(node, "broadcasting add (inputs of different shapes)")
            out, clamp = clamp_of(node)
            op = Op("add", name, kind, [a, b], out, {"clamp": clamp})
        elif kind == "QLinearGlobalAveragePool":
            if attrs.get("channels_last", 0):
                raise _unsupported(node, "channels_last=1")
            src = use(node.input[0], node)
            define(node.output[0], node.input[3], node.input[4], node)
            out, clamp = clamp_of(node)
            op = Op("global_avgpool", name, kind, [src], out, {"clamp": clamp})
        elif kind in ("QLinearAveragePool", "MaxPool"):
            src = use(node.input[0], node)
            if kind == "MaxPool":
                source = tensors[src]
                tensors[node.output[0]] = Tensor(node.output[0], _nchw_to_nhwc_shape(shapes[node.output[0]]),
                                                 source.scale, source.zp)
            else:
                if attrs.get("channels_last", 0):
                    raise _unsupported(node, "channels_last=1")
                define(node.output[0], node.input[3], node.input[4], node)
            op = _pool(node, name, attrs, lambda n, nd, src=src: src, lambda nd: clamp_of(nd), tensors)
        elif kind == "QLinearConcat":
            if attrs.get("axis") not in (1, -3):
                raise _unsupported(node, f"concat along axis {attrs.get('axis')}; only channels (axis 1) are supported")
            define(node.output[0], node.input[0], node.input[1], node)
            ins = [use(node.input[i], node) for i in range(2, len(node.input), 3)]
            out, clamp = clamp_of(node)
            op = Op("concat", name, kind, ins, out, {"clamp": clamp})
        elif kind in VIEW_OPS:
            src = use(node.input[0], node)
            source = tensors[src]
            tensors[node.output[0]] = Tensor(node.output[0], _nchw_to_nhwc_shape(shapes[node.output[0]]), source.scale,
                                             source.zp)
            op = Op("view", name, kind, [src], node.output[0])
        elif kind == "QLinearSoftmax":
            src = use(node.input[0], node)
            define(node.output[0], node.input[3], node.input[4], node)
            axis = attrs.get("axis", -1)
            if axis not in (-1, len(shapes[src]) - 1):
                raise _unsupported(node, f"softmax along axis {axis}; only the last axis is supported")
            op = Op("softmax", name, kind, [src], node.output[0])
        else:
            raise _unsupported(node, "op type not supported")
        op.nodes = [node.name]
        ops.append(op)
    output_name = use(last.input[0], last)
    _check_views(ops, tensors)
    return Graph(tensors, ops, input_name, output_name, onnx_input, onnx_output, "qoperator")


class _FakeConv:
    """A QLinearConv node seen as a Conv by _conv(): input 0 = x, input 1 = 'weight', input 2 = bias (or absent)."""

    def __init__(self, node, bias_name):
        self.op_type = node.op_type
        self.name = node.name
        self.input = [node.input[0], "weight"] + ([bias_name] if bias_name else [])


def _weights_per_channel(node, scales: np.ndarray, zps: np.ndarray, channels: int) -> np.ndarray:
    if np.any(zps != 0):
        raise _unsupported(node, "weights with a non-zero zero point (the engine uses symmetric int8 weights)")
    if scales.size == 1:
        scales = np.repeat(scales, channels)
    if scales.size != channels:
        raise _unsupported(node, f"{scales.size} weight scales for {channels} output channels")
    return scales.astype(np.float32)
