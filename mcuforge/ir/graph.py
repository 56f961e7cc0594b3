"""The engine's graph: quantized ops over int8 NHWC tensors, whatever file format they were read from
(mcuforge/frontends/ reads ONNX QOperator, ONNX QDQ and TFLite models into it)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np




@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]  # NHWC without the batch: (h, w, c), or (n,) for vectors
    scale: float            # float32 value
    zp: int

    @property
    def bytes(self) -> int:
        return int(np.prod(self.shape))


@dataclass
class Op:
    kind: str                # conv, conv1x1, depthwise, fc, add, global_avgpool, avgpool, maxpool, concat, view, softmax
    name: str                # the ONNX node's name
    onnx_type: str
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)  # numpy arrays: weight (engine layout), bias (int32), w_scale (float32)
    nodes: list[str] = field(default_factory=list)  # QOperator: the ONNX node(s) this op executes

    def macs(self, tensors: dict[str, Tensor]) -> int:
        if "macs" in self.attrs:  # compound ops (tasks/rewrite.py) count their inner ops as they execute them
            return int(self.attrs["macs"])
        out = tensors[self.output]
        if self.kind in ("conv", "conv1x1"):
            kh, kw, cin = self.consts["weight"].shape[1:]
            return out.bytes * kh * kw * cin
        if self.kind == "depthwise":
            kh, kw, _ = self.consts["weight"].shape
            return out.bytes * kh * kw
        if self.kind == "fc":
            return int(self.consts["weight"].size)
        return 0


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    ops: list[Op]
    input: str
    output: str
    onnx_input: str    # float graph input name
    onnx_output: str   # float graph output name
    format: str = "qdq"  # "qdq" (QuantizeLinear/DequantizeLinear around float ops) or "qoperator" (QLinear* ops)
