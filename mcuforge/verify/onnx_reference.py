"""ONNX Runtime as the reference: the int8 bytes of the model's input, output and every layer, per sample."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcuforge.ml.data import to_float_nchw
from mcuforge.frontends.onnx import name_nodes
from mcuforge.ir.graph import Graph


def _to_nhwc(array: np.ndarray) -> np.ndarray:
    """[N, C, H, W] -> [N, H, W, C]; other ranks unchanged."""
    return array.transpose(0, 2, 3, 1) if array.ndim == 4 else array


# ORT_ENABLE_EXTENDED applies the QDQ -> QLinearConv/QGemm/QLinearAdd/... fusions whose arithmetic the engine
# reproduces, but not level 3's layout transforms (NCHWc/NHWC), which ONNX Runtime documents as hardware specific
# and which swap in kernel variants with other rounding (e.g. the NHWC QLinearAveragePool). The verify report also
# counts the differences against ORT_ENABLE_ALL and against no optimization at all.
LEVELS = ("extended", "all", "none")


def session(model_path: Path, graph: Graph, expose: list[str], level: str = "extended"):
    """An ORT session of the int8 model with `expose` (quantized tensors) added as int8 graph outputs."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(model_path))
    present = {o.name for o in model.graph.output}
    for name in expose:
        if name not in present:
            model.graph.output.append(onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT8, None))
            present.add(name)
    options = ort.SessionOptions()
    options.graph_optimization_level = {
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    }[level]
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def run(model_path: Path, graph: Graph, x: np.ndarray, layers: bool = False, level: str = "extended",
        batch: int = 256) -> dict[str, np.ndarray]:
    """int8 NHWC arrays [N, ...] for the engine's input, its output, the float logits, and (layers=True) every
    op's output tensor, computed by ONNX Runtime on uint8 NHWC images `x` (or float32 `x`: the network's float
    input as it is, e.g. dequantised audio features)."""
    names = [graph.input, graph.output]
    if layers:
        names += [op.output for op in graph.ops]
    names = list(dict.fromkeys(names))
    sess = session(model_path, graph, names, level)
    if sess.get_inputs()[0].shape[0] == 1:  # exported with a static batch of 1 (torch.onnx.export's default)
        batch = 1
    wanted = [graph.onnx_output] + names
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in wanted}
    for start in range(0, len(x), batch):
        chunk = x[start:start + batch]
        outs = sess.run(wanted, {graph.onnx_input: chunk if chunk.dtype == np.float32 else to_float_nchw(chunk)})
        for name, value in zip(wanted, outs):
            chunks[name].append(value)
    result = {name: _to_nhwc(np.concatenate(parts)) for name, parts in chunks.items()}
    result["logits"] = result.pop(graph.onnx_output)
    return result


def _single_op_model(model, graph: Graph, op):
    """QOperator: the op's node(s) (and a fused Relu/Clip after it) with their constants, int8 inputs/outputs."""
    import onnx

    by_name = {node.name: node for node in model.graph.node}
    nodes = [by_name[name] for name in op.nodes]
    produced = {out for node in nodes for out in node.output}
    while op.output not in produced:
        follower = next(n for n in model.graph.node if n.input and n.input[0] in produced and n not in nodes)
        nodes.append(follower)
        produced.update(follower.output)
    initializers = {init.name: init for init in model.graph.initializer}
    needed = [initializers[name] for node in nodes for name in node.input if name in initializers]

    def value_info(name: str):
        shape = graph.tensors[name].shape
        dims = ["batch"] + ([shape[2], shape[0], shape[1]] if len(shape) == 3 else list(shape))
        return onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT8, dims)

    part = onnx.helper.make_graph(nodes, f"layer_{op.name}", [value_info(n) for n in dict.fromkeys(op.inputs)],
                                  [value_info(op.output)], initializer=list({i.name: i for i in needed}.values()))
    return onnx.helper.make_model(part, opset_imports=list(model.opset_import), ir_version=model.ir_version)


def layer_session(model_path: Path, graph: Graph, op):
    """An ORT session of the single op `op` cut out of the int8 model: int8 NCHW tensors in, int8 out. QDQ models:
    its DequantizeLinear inputs, the op and its QuantizeLinear output (onnx.utils.Extractor)."""
    import onnx
    import onnxruntime as ort
    from onnx.utils import Extractor

    if graph.format == "qoperator":
        model = onnx.load(str(model_path))
        name_nodes(model)  # the names frontends/onnx.py gave the nodes
        part = _single_op_model(model, graph, op)
    else:
        model = onnx.shape_inference.infer_shapes(onnx.load(str(model_path)))
        part = Extractor(model).extract_model(list(dict.fromkeys(op.inputs)), [op.output])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    return ort.InferenceSession(part.SerializeToString(), options, providers=["CPUExecutionProvider"])


def to_nchw(array: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2)) if array.ndim == 4 else array


def run_layer(model_path: Path, graph: Graph, op, inputs: dict[str, np.ndarray]) -> np.ndarray:
    """ORT's int8 output of `op` alone, fed the given int8 NHWC inputs [N, ...] (e.g. the engine's own tensors)."""
    sess = layer_session(model_path, graph, op)
    feeds = {}
    for value in sess.get_inputs():
        array = inputs[value.name]
        shape = [d if isinstance(d, int) else len(array) for d in value.shape]
        feeds[value.name] = to_nchw(array).reshape(shape)
    return _to_nhwc(sess.run([op.output], feeds)[0])


def input_table(model_path: Path, graph: Graph) -> np.ndarray:
    """int8[256]: the network's int8 input for each uint8 input value v (ONNX Runtime quantizing v / 255), read from
    ONNX Runtime itself. A front end's int8 output q is the uint8 value q + 128, so table[q + 128] is exact."""
    shape = graph.tensors[graph.input].shape  # NHWC without the batch dimension
    size = int(np.prod(shape))
    values = np.arange(256, dtype=np.uint8)
    images = np.resize(values, ((256 + size - 1) // size) * size).reshape(-1, *shape)
    return run(model_path, graph, images)[graph.input].reshape(-1)[:256].astype(np.int8)
