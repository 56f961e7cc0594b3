"""Read an int8 ONNX model into the engine's graph (mcuforge/ir/graph.py), in either of ONNX Runtime's formats:
QOperator (QLinearConv, QGemm... : onnx_qoperator.py) or QDQ (QuantizeLinear/DequantizeLinear around float ops:
onnx_qdq.py). `load` names the nodes and picks the reader by the node types."""
from __future__ import annotations

from pathlib import Path

from mcuforge.core.errors import DataError, McuforgeError
from mcuforge.ir.graph import Graph

from . import onnx_qdq, onnx_qoperator
from .onnx_common import QOPERATOR_TYPES


def load(path: Path) -> Graph:
    """Parse an int8 ONNX model (QOperator or QDQ format) into a Graph; raise McuforgeError naming the op and node
    when something is unsupported."""
    model = read_model(path)
    name_nodes(model)
    try:
        if any(node.op_type in QOPERATOR_TYPES for node in model.graph.node):
            return onnx_qoperator.read(model)
        return onnx_qdq.read(model)
    except McuforgeError as exc:
        if str(path) in str(exc):
            raise
        raise type(exc)(f"{path}: {exc}") from None


def read_model(path: Path):
    """onnx.load with an DataError naming the file for anything that is not a readable ONNX model (a folder, random
    bytes, a truncated file, a graph without nodes)."""
    import onnx
    from google.protobuf.message import DecodeError

    path = Path(path)
    if path.is_dir():
        raise DataError(f"{path}: is a directory, not an ONNX model file")
    try:
        model = onnx.load(str(path))
    except OSError as exc:
        raise DataError(f"{path}: cannot read the model ({exc.strerror or exc})") from None
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise DataError(f"{path}: not a valid ONNX model, truncated or corrupt ({type(exc).__name__}: {exc})") from None
    if not model.graph.node:
        raise DataError(f"{path}: not a valid ONNX model, truncated or corrupt (the graph has no nodes)")
    return model


def name_nodes(model) -> None:
    """Name every unnamed or twice-named node `<op_type>_<index>`, the same on every load: ops, plans and the per-layer
    reference (mcuforge/verify/onnx_reference.py) find nodes by name, and ONNX Runtime's quantize_static leaves its
    nodes unnamed when the float model's were (no pre-processing)."""
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
