"""Model readers: an int8 model file -> the engine's graph (mcuforge/ir/graph.py). `load` picks the reader by suffix."""
from __future__ import annotations

from pathlib import Path

from mcuforge.ir.graph import Graph

from . import onnx as onnx_reader
from . import tflite as tflite_reader


def load(path: Path) -> Graph:
    """An int8 `.onnx` (QOperator or QDQ) or `.tflite` model as a Graph; McuforgeError naming the op and node (or
    operator index) when something is unsupported."""
    if Path(path).suffix.lower() == ".tflite":
        return tflite_reader.load(path)
    return onnx_reader.load(path)
