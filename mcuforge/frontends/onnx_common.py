"""What the two ONNX readers (onnx_qdq.py, onnx_qoperator.py) share: the error naming the node, the graph's wiring
and single input/output, NCHW -> NHWC shapes, per-channel weight scales, convolution and pooling attributes, and
the check that a view (Flatten, Reshape...) means the same bytes in the engine's NHWC order."""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Op, OpKind, Tensor

QDQ_TYPES = ("Conv", "Gemm", "MatMul", "Add", "GlobalAveragePool", "AveragePool", "MaxPool", "Concat",
             "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Softmax")
QOPERATOR_TYPES = ("QLinearConv", "QLinearAdd", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat",
                   "QGemm", "QLinearMatMul", "QLinearSoftmax")
VIEW_OPS = ("Flatten", "Reshape", "Squeeze", "Unsqueeze")
ACTIVATIONS = ("Relu", "Clip")  # fused into the output clamp of the op before them
EXPLICIT_PADS = (b"NOTSET", b"VALID", "NOTSET", "VALID")


def unsupported(node, why: str) -> McuforgeError:
    return McuforgeError(f"unsupported: {node.op_type} node '{node.name}': {why}. Supported ops: "
                         f"{', '.join(QDQ_TYPES)} between QuantizeLinear/DequantizeLinear (int8 QDQ format), or "
                         f"{', '.join(QOPERATOR_TYPES)}, MaxPool and reshapes (QOperator format); "
                         "Relu/Clip are fused into the op before them")


def node_attrs(node) -> dict:
    import onnx

    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def wiring(graph) -> tuple[dict, dict[str, list]]:
    """(producer node of each value, consumer nodes of each value)."""
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = defaultdict(list)
    for node in graph.node:
        for name in node.input:
            consumers[name].append(node)
    return producer, consumers


def single_io(graph) -> tuple[str, str]:
    """Names of the model's one input and one output."""
    if len(graph.input) != 1 or len(graph.output) != 1:
        raise McuforgeError(f"the model must have one input and one output (has {len(graph.input)} and "
                            f"{len(graph.output)})")
    return graph.input[0].name, graph.output[0].name


def nchw_to_nhwc_shape(shape: list[int]) -> tuple[int, ...]:
    dims = list(shape[1:])  # drop the batch
    if len(dims) == 3:
        return (dims[1], dims[2], dims[0])
    if len(dims) == 1:
        return (dims[0],)
    if len(dims) == 2:  # [N, A, B] (rare): keep the order
        return tuple(dims)
    raise McuforgeError(f"tensor with shape {shape}: only 2-D (batch, features) and 4-D NCHW tensors are supported")


def weight_scales(node, scales: np.ndarray, zps: np.ndarray, channels: int) -> np.ndarray:
    """One float32 scale per output channel of symmetric int8 weights."""
    if np.any(zps != 0):
        raise unsupported(node, "weights with a non-zero zero point (the engine uses symmetric int8 weights)")
    if scales.size == 1:
        scales = np.repeat(scales, channels)
    if scales.size != channels:
        raise unsupported(node, f"{scales.size} weight scales for {channels} output channels")
    return scales.astype(np.float32)


def conv_window(node, attrs: dict) -> dict:
    """A convolution's explicit pads, strides and dilations."""
    if attrs.get("auto_pad", b"NOTSET") not in EXPLICIT_PADS:
        raise unsupported(node, f"auto_pad={attrs['auto_pad']!r}; explicit pads are supported")
    return {"pads": list(attrs.get("pads", [0, 0, 0, 0])), "strides": list(attrs.get("strides", [1, 1])),
            "dilations": list(attrs.get("dilations", [1, 1]))}


def conv_layout(node, attrs: dict, weight: np.ndarray, cin: int) -> tuple[OpKind, np.ndarray]:
    """The kind of a convolution with OIHW int8 `weight` over `cin` input channels, and its weights in the
    engine's layout: OHWI, or [kh, kw, C] for a depthwise convolution."""
    cout, cin_group, kh, kw = weight.shape
    group = attrs.get("group", 1)
    if group == 1:
        kind = OpKind.conv1x1 if (kh, kw) == (1, 1) and not any(attrs.get("pads", [0, 0, 0, 0])) else OpKind.conv
        return kind, np.ascontiguousarray(weight.transpose(0, 2, 3, 1))  # OIHW -> OHWI
    if group == cin == cout and cin_group == 1:
        return OpKind.depthwise, np.ascontiguousarray(weight[:, 0].transpose(1, 2, 0))  # [C, 1, kh, kw] -> [kh, kw, C]
    raise unsupported(node, f"grouped convolution (group={group}, {cin} input and {cout} output channels); "
                      "only group 1 and depthwise (group = channels, multiplier 1) are supported")


def pool_window(node, attrs: dict, source: Tensor, output: Tensor) -> tuple[OpKind, dict]:
    """The kind of an AveragePool / MaxPool (QDQ) or QLinearAveragePool / MaxPool (QOperator) and its window."""
    if attrs.get("ceil_mode", 0):
        raise unsupported(node, "ceil_mode=1")
    if attrs.get("auto_pad", b"NOTSET") not in EXPLICIT_PADS:
        raise unsupported(node, f"auto_pad={attrs['auto_pad']!r}")
    if any(d != 1 for d in attrs.get("dilations", [1, 1])):
        raise unsupported(node, "dilated pooling")
    kind = OpKind.maxpool if node.op_type == "MaxPool" else OpKind.avgpool
    if kind == OpKind.maxpool and (source.scale, source.zp) != (output.scale, output.zp):
        raise unsupported(node, "max pool whose output quantization differs from its input's")
    return kind, {"kernel": list(attrs["kernel_shape"]), "strides": list(attrs.get("strides", [1, 1])),
                  "pads": list(attrs.get("pads", [0, 0, 0, 0])),
                  "count_include_pad": int(attrs.get("count_include_pad", 0))}


def check_views(ops: list[Op], tensors: dict[str, Tensor]) -> None:
    """A view of an NHWC tensor is a plain reinterpretation only when H = W = 1 or the consumer is a fully connected
    layer (whose weight columns are then permuted from NCHW to NHWC order)."""
    for op in ops:
        if op.kind != OpKind.view:
            continue
        src = tensors[op.inputs[0]]
        if len(src.shape) == 3 and src.shape[0] * src.shape[1] > 1:
            h, w, c = src.shape
            users = [o for o in ops if op.output in o.inputs]
            if len(users) == 1 and users[0].kind == OpKind.fc:
                fc = users[0]
                weight = fc.consts["weight"]  # columns in NCHW order: c * h * w + y * w + x
                perm = np.arange(c * h * w).reshape(c, h, w).transpose(1, 2, 0).reshape(-1)
                fc.consts["weight"] = np.ascontiguousarray(weight[:, perm])
                continue
            raise McuforgeError(
                f"unsupported: {op.onnx_type} node '{op.name}' flattens a {h}x{w}x{c} tensor for a consumer other "
                "than a fully connected layer (NHWC and NCHW orders differ)"
            )
