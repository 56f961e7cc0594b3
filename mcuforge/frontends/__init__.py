"""Model readers: an int8 model file -> the engine's graph (mcuforge/ir/graph.py). `load` picks the reader by suffix."""
from __future__ import annotations

from pathlib import Path

from mcuforge.core.errors import DataError, McuforgeError
from mcuforge.ir.graph import Graph

from . import onnx as onnx_reader
from . import tflite as tflite_reader


def load(path: Path) -> Graph:
    """An int8 `.onnx` (QOperator or QDQ) or `.tflite` model as a Graph; McuforgeError naming the op and node (or
    operator index) when something is unsupported."""
    try:
        if Path(path).suffix.lower() == ".tflite":
            return tflite_reader.load(path)
        return onnx_reader.load(path)
    except McuforgeError:
        raise
    except (KeyError, IndexError, ValueError, TypeError, AttributeError) as exc:  # a corrupt model's inconsistency
        raise DataError(f"{path}: corrupt or inconsistent model ({type(exc).__name__}: {exc})") from None


def check_readable(path: Path) -> None:
    """The cheap part of `load`, for config time: the file parses (ONNX protobuf with nodes; TFLite flatbuffer with
    in-range indices). DataError naming the file otherwise."""
    if Path(path).suffix.lower() == ".tflite":
        from .tflite_model import parse

        parse(path)
    else:
        onnx_reader.read_model(path)
