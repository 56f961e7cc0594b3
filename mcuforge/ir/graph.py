"""The engine's graph: quantized ops over int8 NHWC tensors, whatever file format they were read from
(mcuforge/frontends/ reads ONNX QOperator, ONNX QDQ and TFLite models into it)."""
from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np


class OpKind(enum.StrEnum):
    """What an op computes, which picks its kernel in codegen (mcuforge/codegen/generate.py's EMITTERS). A StrEnum:
    `OpKind.conv == "conv"`, and f-strings and JSON give the plain value."""

    conv = "conv"                      # general 2-D convolution
    conv1x1 = "conv1x1"                # 1x1 convolution without padding
    depthwise = "depthwise"            # depthwise convolution, depth multiplier 1
    fc = "fc"                          # fully connected (Gemm, MatMul, FULLY_CONNECTED)
    add = "add"                        # element-wise add of two same-shape tensors
    global_avgpool = "global_avgpool"  # average over H and W (ONNX Runtime's arithmetic)
    avgpool = "avgpool"                # windowed average pool (ONNX Runtime's arithmetic)
    maxpool = "maxpool"                # windowed max pool
    concat = "concat"                  # concatenation along channels
    view = "view"                      # reshape/flatten: the same bytes under another shape
    softmax = "softmax"                # softmax over the last axis (ONNX Runtime's arithmetic)
    avgpool_tflite = "avgpool_tflite"  # TFLite Micro's average pool: one rounding division, no rescale
    softmax_tflite = "softmax_tflite"  # TFLite Micro's softmax: gemmlowp fixed-point exp and reciprocal
    mean_tflite = "mean_tflite"        # TFLite Micro's MEAN over H, W and/or C
    pad = "pad"                        # constant padding along H, W and C (TFLite PAD, PADV2)
    patch_stage = "patch_stage"        # compound: layers run patch by patch (mcuforge/schedule/patch.py)
    mbconv_fused = "mbconv_fused"      # compound: a fused inverted bottleneck (mcuforge/schedule/fuse.py)


@dataclass
class Tensor:
    name: str
    shape: tuple[int, ...]  # NHWC without the batch: (h, w, c), or (n,) for vectors
    scale: float            # float32 value
    zp: int

    @property
    def bytes(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True)
class Compound:
    """What a compound op (a graph rewrite of mcuforge/schedule/: a fused bottleneck, a patch stage) declares to the
    layers that plan, generate and report it. Its own details (inner layers, patch geometry) stay in `Op.attrs`,
    read only by its rewriter and its emitter."""

    macs: int                   # MACs it executes (expanded rows, halos computed again)
    layer_macs: int             # MACs of the model's layers it replaces
    scratch_bytes: int          # working memory: an arena buffer live at its step only
    overlay: int | None = None  # its output overlays its dying input, which sits this many bytes into the buffer


@dataclass
class Op:
    kind: OpKind | str       # an OpKind; layers that build ops from plain strings ("conv") compare equal to it
    name: str                # unique in the graph: the ONNX node's name, or op<index>_<op code> for TFLite
    onnx_type: str           # the source op type: ONNX op_type, TFLite op code name, or the compound's own name
    inputs: list[str]
    output: str
    attrs: dict = field(default_factory=dict)
    consts: dict = field(default_factory=dict)  # numpy arrays: weight (engine layout), bias (int32), w_scale (float32)
    nodes: list[str] = field(default_factory=list)  # QOperator and TFLite: the source node(s) this op executes
    compound: Compound | None = None  # set for compound ops only

    def macs(self, tensors: dict[str, Tensor]) -> int:
        if self.compound is not None:  # counts its inner ops as it executes them
            return self.compound.macs
        out = tensors[self.output]
        if self.kind in (OpKind.conv, OpKind.conv1x1):
            kh, kw, cin = self.consts["weight"].shape[1:]
            return out.bytes * kh * kw * cin
        if self.kind == OpKind.depthwise:
            kh, kw, _ = self.consts["weight"].shape
            return out.bytes * kh * kw
        if self.kind == OpKind.fc:
            return int(self.consts["weight"].size)
        return 0


@dataclass
class Graph:
    tensors: dict[str, Tensor]
    ops: list[Op]
    input: str
    output: str
    onnx_input: str    # the source model's (float) input name
    onnx_output: str   # the source model's (float) output name
    format: str = "qdq"  # "qdq" (QuantizeLinear/DequantizeLinear around float ops), "qoperator" (QLinear*), "tflite"
