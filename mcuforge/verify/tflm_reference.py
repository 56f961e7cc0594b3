"""TensorFlow Lite Micro as the reference for imported .tflite models (what ONNX Runtime is for ONNX models).

The tflite-micro Python package runs TFLite Micro's own C++ interpreter and reference kernels on the host. Its
`kPreserveAllTensors` mode keeps every intermediate tensor, so the per-layer check reads each op's output with
`GetTensor` from the same inference; `print_allocations()` reports the arena (head: non-persistent tensors, tail:
persistent data), which `arena()` parses.
"""
from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

import numpy as np

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph


def _tensor_index(name: str) -> int:
    """Engine tensors of imported models are named `t<index>:<tflite name>` (frontends/tflite.py)."""
    return int(name.split(":", 1)[0][1:])


def arena_bytes(model_path: Path) -> int:
    """An arena large enough for the interpreter: every tensor at once (kPreserveAllTensors keeps them all) plus
    room for its persistent data. The package's default, 10 times the file size, is too small for small models and
    TFLite Micro then crashes the process instead of failing."""
    from mcuforge.frontends.tflite_model import parse

    parsed = parse(model_path)
    itemsize = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 7: 2, 9: 1, 10: 8}
    tensors = sum(int(np.prod(parsed.shape(t))) * itemsize.get(parsed.tensor(t).Type(), 8) + 16
                  for t in range(parsed.subgraph.TensorsLength()))
    return max(10 * len(parsed.data), 2 * tensors + 64 * 1024)


def interpreter(model_path: Path, preserve: bool = True):
    from tflite_micro.python.tflite_micro import runtime

    config = runtime.InterpreterConfig.kPreserveAllTensors if preserve else \
        runtime.InterpreterConfig.kAllocationRecording
    try:
        return runtime.Interpreter.from_file(str(model_path), arena_size=arena_bytes(model_path),
                                             intrepreter_config=config)
    except (RuntimeError, ValueError) as exc:
        raise McuforgeError(f"{model_path}: TFLite Micro cannot load the model: {exc}") from None


def _feed(graph: Graph, details: dict, sample: np.ndarray) -> np.ndarray:
    """The interpreter's input for one engine input sample: the int8 bytes, or their dequantized floats when the model
    starts with a QUANTIZE (which gives the same int8 bytes back)."""
    shape = tuple(int(d) for d in details["shape"])
    if details["dtype"] == np.int8:
        return sample.reshape(shape)
    engine_in = graph.tensors[graph.input]
    real = (sample.astype(np.float32) - np.float32(engine_in.zp)) * np.float32(engine_in.scale)
    return real.astype(details["dtype"]).reshape(shape)


def run(model_path: Path, graph: Graph, x: np.ndarray, layers: bool = False) -> dict[str, np.ndarray]:
    """int8 arrays [N, ...] (engine shapes) of the engine's input, its output and (layers=True) every op's output,
    computed by TFLite Micro on the int8 engine inputs `x` [N, ...]. `logits` is the output again (no float head)."""
    names = [graph.input, graph.output] + ([op.output for op in graph.ops] if layers else [])
    names = list(dict.fromkeys(names))
    interp = interpreter(model_path, preserve=True)
    details = interp.get_input_details(0)
    chunks: dict[str, list[np.ndarray]] = {name: [] for name in names}
    for sample in np.asarray(x, dtype=np.int8):
        interp.set_input(_feed(graph, details, sample), 0)
        interp.invoke()
        for name in names:
            if name == graph.input:
                value = sample
            else:
                value = interp.GetTensor(_tensor_index(name), 0)["tensor_data"]
            chunks[name].append(np.asarray(value, dtype=np.int8).reshape(graph.tensors[name].shape))
    result = {name: np.stack(parts) for name, parts in chunks.items()}
    result["logits"] = result[graph.output]
    return result


def arena(model_path: Path, arena_size: int | None = None) -> dict:
    """TFLite Micro's arena for the model, as its RecordingMicroAllocator reports it after one inference:
    {"total": B, "head": B (non-persistent, planned tensors), "tail": B (persistent), "report": text}."""
    interp = interpreter(model_path, preserve=False)
    details = interp.get_input_details(0)
    shape = tuple(int(d) for d in details["shape"])
    interp.set_input(np.zeros(shape, dtype=details["dtype"]), 0)
    interp.invoke()
    with tempfile.TemporaryFile(mode="w+b") as capture:
        saved = os.dup(2)
        try:
            os.dup2(capture.fileno(), 2)
            interp.print_allocations()
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        capture.seek(0)
        text = capture.read().decode("utf-8", "replace")
    figures = {}
    for key in ("total", "head", "tail"):
        match = re.search(rf"Arena allocation {key} (\d+) bytes", text)
        if match is None:
            raise McuforgeError(f"TFLite Micro's allocation report has no '{key}' figure:\n{text}")
        figures[key] = int(match.group(1))
    figures["report"] = text.strip()
    return figures
