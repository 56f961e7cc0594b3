"""The TFLite flatbuffer as read by the importer (tflite.py) and the TFLite Micro reference
(mcuforge/verify/tflm_reference.py): `parse` checks the file once, `TfliteModel` answers tensor names, shapes,
quantization, constant buffers and op code names."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcuforge.core.errors import McuforgeError

TFLITE_MAGIC = b"TFL3"
TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 7: "int16", 9: "int8", 10: "float64"}
INT8 = 9
INT32 = 2
FLOAT32 = 0

@dataclass
class TfliteModel:
    """The parsed flatbuffer with the maps the importer and the reference need."""

    path: Path
    data: bytes
    model: object      # tflite.Model
    subgraph: object   # tflite.SubGraph 0
    op_names: dict[int, str]  # builtin code -> name

    def tensor(self, index: int):
        return self.subgraph.Tensors(index)

    def tensor_name(self, index: int) -> str:
        """A unique name: the TFLite name (names are not guaranteed unique), prefixed by its index."""
        raw = self.tensor(index).Name()
        return f"t{index}:{raw.decode('utf-8', 'replace') if raw else ''}"

    def op_code(self, op) -> int:
        code = self.model.OperatorCodes(op.OpcodeIndex())
        return max(code.BuiltinCode(), code.DeprecatedBuiltinCode())

    def op_name(self, op) -> str:
        code = self.op_code(op)
        if code == 32:  # CUSTOM
            custom = self.model.OperatorCodes(op.OpcodeIndex()).CustomCode()
            return f"CUSTOM ({custom.decode('utf-8', 'replace') if custom else '?'})"
        return self.op_names.get(code, f"op code {code}")

    def buffer(self, tensor_index: int) -> np.ndarray | None:
        tensor = self.tensor(tensor_index)
        buf = self.model.Buffers(tensor.Buffer())
        if buf is None:
            return None
        if buf.Offset() > 1:  # large models keep buffers after the flatbuffer
            raw = self.data[buf.Offset():buf.Offset() + buf.Size()]
        elif buf.DataLength() == 0:
            return None
        else:
            raw = buf.DataAsNumpy().tobytes()
        dtype = {INT8: np.int8, INT32: np.int32, FLOAT32: np.float32, 3: np.uint8, 7: np.int16, 4: np.int64}.get(
            tensor.Type())
        if dtype is None:
            return None
        return np.frombuffer(raw, dtype=dtype).reshape(self.shape(tensor_index))

    def shape(self, tensor_index: int) -> tuple[int, ...]:
        tensor = self.tensor(tensor_index)
        return tuple(int(d) for d in tensor.ShapeAsNumpy()) if tensor.ShapeLength() else ()

    def quant(self, tensor_index: int) -> tuple[np.ndarray, np.ndarray, int]:
        """(scales float32, zero points int64, quantized dimension); empty arrays when not quantized."""
        q = self.tensor(tensor_index).Quantization()
        if q is None or q.ScaleLength() == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64), 0
        zps = q.ZeroPointAsNumpy() if q.ZeroPointLength() else np.zeros(q.ScaleLength(), np.int64)
        return q.ScaleAsNumpy().astype(np.float32), np.asarray(zps, np.int64), q.QuantizedDimension()


def parse(path: Path) -> TfliteModel:
    """Read and sanity-check a .tflite file; errors name the file and what is wrong."""
    import tflite

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise McuforgeError(f"{path}: cannot read the model ({exc.strerror})") from None
    if len(data) < 16 or data[4:8] != TFLITE_MAGIC:
        raise McuforgeError(f"{path}: not a TFLite model (no 'TFL3' flatbuffer identifier; {len(data)} bytes)")
    op_names = {value: name for name, value in vars(tflite.BuiltinOperator).items() if not name.startswith("_")}
    try:
        model = tflite.Model.GetRootAsModel(data, 0)
        if model.SubgraphsLength() < 1:
            raise McuforgeError(f"{path}: the model has no subgraph")
        subgraph = model.Subgraphs(0)
        parsed = TfliteModel(path, data, model, subgraph, op_names)
        # touch every table once so a truncated or corrupt file fails here, not halfway through the import
        for t in range(subgraph.TensorsLength()):
            parsed.shape(t)
            parsed.quant(t)
            parsed.tensor(t).Name()
            if model.Buffers(parsed.tensor(t).Buffer()) is None:
                raise IndexError("buffer")
        tensors = subgraph.TensorsLength()
        for i in range(subgraph.OperatorsLength()):
            op = subgraph.Operators(i)
            parsed.op_code(op)
            for kind, indices in (("input", op.InputsAsNumpy()), ("output", op.OutputsAsNumpy())):
                bad = [int(t) for t in (indices if isinstance(indices, np.ndarray) else ()) if not -1 <= t < tensors]
                if bad:
                    raise McuforgeError(f"{path}: operator {i} ({parsed.op_name(op)}): {kind} tensor index {bad[0]} "
                                        f"is out of range (the model has {tensors} tensors)")
        for t in list(subgraph.InputsAsNumpy()) + list(subgraph.OutputsAsNumpy()):
            if not 0 <= t < subgraph.TensorsLength():
                raise IndexError("tensor index")
    except McuforgeError:
        raise
    except Exception as exc:  # the flatbuffers reader raises struct.error/IndexError/... on truncated data
        raise McuforgeError(f"{path}: truncated or corrupt TFLite flatbuffer ({type(exc).__name__}: {exc})") from None
    if model.SubgraphsLength() > 1:
        raise McuforgeError(f"{path}: {model.SubgraphsLength()} subgraphs; only single-subgraph models are supported")
    return parsed


def options(op, cls):
    """The builtin options table of `op` as `cls` (tflite.Conv2DOptions...); defaults when absent."""
    table = op.BuiltinOptions()
    parsed = cls()
    if table is not None:
        parsed.Init(table.Bytes, table.Pos)
    return parsed
