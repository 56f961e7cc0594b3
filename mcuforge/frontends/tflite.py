"""Read an int8 TFLite flatbuffer into the engine's graph (mcuforge/ir/graph.py): NHWC tensors, per-channel weights.

TFLite is NHWC like the engine, so tensors and weights keep their layout: conv weights are OHWI, depthwise
weights [1, K_h, K_w, C] become [K_h, K_w, C], fully connected weights are [N_out, N_in]; a RESHAPE is a view
(TFLite flattens in NHWC order, the engine's order). Padding SAME/VALID becomes explicit [top, left, bottom, right]
as TFLite computes it (the odd pixel at the bottom/right), fused activations become the output clamp
(CalculateActivationRangeQuantized, in mcuforge/ir/quant.py). The flatbuffer itself is read by tflite_model.py.

Ops whose TFLite Micro arithmetic differs from the ONNX Runtime-exact kernels get their own kinds, which codegen
maps to TFLM-exact kernels: `avgpool_tflite` (integer sum, one rounding division by the valid-pixel count, no
rescale), `softmax_tflite` (gemmlowp fixed-point exp and reciprocal) and `mean_tflite` (MEAN over H, W and/or C:
the zero-point-corrected integer sum through one multiplier that holds the division by the count: quant.mean_params).
PAD and PADV2 (constant padding along H, W and C) become `pad`, a byte copy as in TFLM. Convolutions, fully
connected and add use the engine's fixed requantization, which is TFLite's MultiplyByQuantizedMultiplier. A
depthwise convolution with depth multiplier M > 1 becomes a standard convolution whose weights are zero outside
input channel oc // M of output channel oc: the same int32 sums, so the same bytes, at C_in times the weights and
MACs (none extra when C_in is 1, the usual case).

A QUANTIZE first op (float input) and a DEQUANTIZE last op (float output) are the edges: the engine's input is
the QUANTIZE output, its output the DEQUANTIZE input.

Errors (McuforgeError, shown without a traceback) name the operator index, its op code and the tensor.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op, OpKind, Tensor
from mcuforge.ir.quant import activation_range_tflite, mean_params

from .tflite_model import FLOAT32, INT8, INT32, TYPE_NAMES, TfliteModel, options, parse

SUPPORTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "AVERAGE_POOL_2D", "MAX_POOL_2D", "ADD", "RESHAPE",
             "SOFTMAX", "PAD", "PADV2", "MEAN", "QUANTIZE (first op)", "DEQUANTIZE (last op)")


def _same_padding(in_size: int, out_size: int, stride: int, span: int) -> tuple[int, int]:
    """TFLite's ComputePaddingWithOffset: (before, after); the odd pixel goes after."""
    total = max((out_size - 1) * stride + span - in_size, 0)
    return total // 2, total - total // 2


ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT", 6: "SIGMOID"}


def load(path: Path) -> Graph:
    """Import an int8 .tflite model; raise McuforgeError (operator index, op code, tensor) when unsupported."""
    return Importer(parse(path)).run()


class Importer:
    """One model's import: the engine tensors made so far and one handler per supported op code."""

    def __init__(self, parsed: TfliteModel):
        self.m = parsed
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []

    # ---- errors -------------------------------------------------------------------------------------------------
    def error(self, index: int, op, why: str, tensor: int | None = None) -> McuforgeError:
        where = f"operator {index} ({self.m.op_name(op)})"
        if tensor is not None:
            where += f", tensor {tensor} '{self.m.tensor_name(tensor).split(':', 1)[1]}'"
        return McuforgeError(f"{self.m.path}: unsupported: {where}: {why}. Supported: {', '.join(SUPPORTED)} on int8 "
                             "tensors with int8 symmetric weights and int32 bias")

    # ---- tensors ------------------------------------------------------------------------------------------------
    def activation(self, index: int, op, t: int) -> str:
        """The engine tensor of TFLite tensor `t` (int8, per-tensor quantized, static shape)."""
        name = self.m.tensor_name(t)
        if name in self.tensors:
            return name
        tensor = self.m.tensor(t)
        if tensor.Type() != INT8:
            kind = TYPE_NAMES.get(tensor.Type(), f"type {tensor.Type()}")
            hint = " (a float model: convert it with full-integer int8 quantization)" if tensor.Type() == FLOAT32 \
                else " (int16 activations are not supported; use int8)" if tensor.Type() == 7 else ""
            raise self.error(index, op, f"{kind} activation; the engine runs int8 models only{hint}", t)
        self.check_static(index, op, t)
        scales, zps, _ = self.m.quant(t)
        if scales.size != 1:
            raise self.error(index, op, f"activation with {scales.size} scales; per-tensor quantization expected", t)
        shape = self.m.shape(t)
        if len(shape) == 4:
            if shape[0] != 1:
                raise self.error(index, op, f"batch {shape[0]}; the engine runs batch 1", t)
            dims = shape[1:]
        elif len(shape) == 2:
            dims = shape[1:]
        elif len(shape) in (1, 3):
            dims = shape
        else:
            raise self.error(index, op, f"tensor of rank {len(shape)} {list(shape)}", t)
        self.tensors[name] = Tensor(name, tuple(int(d) for d in dims), float(scales[0]), int(zps[0]))
        return name

    def check_static(self, index: int, op, t: int) -> None:
        tensor = self.m.tensor(t)
        signature = [int(d) for d in tensor.ShapeSignatureAsNumpy()] if tensor.ShapeSignatureLength() else []
        if any(d < 0 for d in signature[1:]) or any(d <= 0 for d in self.m.shape(t)):
            raise self.error(index, op, f"dynamic shape {signature or list(self.m.shape(t))}; the engine needs "
                             "static shapes", t)

    def constant(self, index: int, op, t: int, dtype: int, what: str) -> np.ndarray:
        tensor = self.m.tensor(t)
        values = self.m.buffer(t)
        if values is None:
            raise self.error(index, op, f"the {what} is not a constant", t)
        if tensor.Type() != dtype:
            kind = TYPE_NAMES.get(tensor.Type(), f"type {tensor.Type()}")
            raise self.error(index, op, f"{kind} {what}; {TYPE_NAMES[dtype]} expected"
                             + (" (a float model: convert it with full-integer int8 quantization)"
                                if tensor.Type() == FLOAT32 else ""), t)
        return values

    def weight_scales(self, index: int, op, t: int, channels: int, axis: int) -> np.ndarray:
        scales, zps, dim = self.m.quant(t)
        if scales.size == 0:
            raise self.error(index, op, "weights without quantization parameters", t)
        if np.any(zps != 0):
            raise self.error(index, op, "weights with a non-zero zero point (symmetric int8 weights expected)", t)
        if scales.size == 1:
            return np.repeat(scales, channels).astype(np.float32)
        if scales.size != channels or dim != axis:
            raise self.error(index, op, f"{scales.size} weight scales along dimension {dim} for {channels} "
                             "output channels", t)
        return scales.astype(np.float32)

    def clamp(self, index: int, op, code: int, out: str) -> tuple[int, int]:
        if code not in (0, 1, 2, 3):
            raise self.error(index, op, f"fused activation {ACTIVATIONS.get(code, code)}")
        t = self.tensors[out]
        return activation_range_tflite(code, t.scale, t.zp)

    # ---- the graph ----------------------------------------------------------------------------------------------
    def run(self) -> Graph:
        m, g = self.m, self.m.subgraph
        if g.InputsLength() != 1 or g.OutputsLength() != 1:
            raise McuforgeError(f"{m.path}: the model must have one input and one output (has {g.InputsLength()} "
                                f"and {g.OutputsLength()})")
        graph_in, graph_out = int(g.Inputs(0)), int(g.Outputs(0))
        count = g.OperatorsLength()
        if count == 0:
            raise McuforgeError(f"{m.path}: the model has no operators")
        engine_in, engine_out = graph_in, graph_out
        first, last = 0, count
        op0 = g.Operators(0)
        if m.op_name(op0) == "QUANTIZE" and int(op0.Inputs(0)) == graph_in:
            if m.tensor(graph_in).Type() != FLOAT32:
                raise self.error(0, op0, "a QUANTIZE of a non-float model input (requantization)", graph_in)
            engine_in, first = int(op0.Outputs(0)), 1
        op_last = g.Operators(count - 1)
        if m.op_name(op_last) == "DEQUANTIZE" and int(op_last.Outputs(0)) == graph_out and count > first:
            engine_out, last = int(op_last.Inputs(0)), count - 1
        self.activation(first, g.Operators(min(first, count - 1)), engine_in)
        handlers = {
            "CONV_2D": self.conv, "DEPTHWISE_CONV_2D": self.conv, "FULLY_CONNECTED": self.fully_connected,
            "AVERAGE_POOL_2D": self.pool, "MAX_POOL_2D": self.pool, "ADD": self.add, "RESHAPE": self.reshape,
            "SOFTMAX": self.softmax, "PAD": self.pad, "PADV2": self.pad, "MIRROR_PAD": self.mirror_pad,
            "MEAN": self.mean,
        }
        produced = {m.tensor_name(engine_in)}
        for index in range(first, last):
            op = g.Operators(index)
            name = m.op_name(op)
            handler = handlers.get(name)
            if handler is None:
                inputs = [int(t) for t in op.InputsAsNumpy() if t >= 0]
                raise self.error(index, op, "op not supported", inputs[0] if inputs else None)
            result = handler(index, op, name)
            result.name = f"op{index}_{name.lower()}"
            result.nodes = [str(index)]
            for tensor_name in result.inputs:
                if tensor_name not in produced:
                    t = int(tensor_name[1:].split(":", 1)[0])
                    raise self.error(index, op, "an input that no earlier supported operator computes", t)
            produced.add(result.output)
            self.ops.append(result)
        out_name = m.tensor_name(engine_out)
        if out_name not in self.tensors:
            raise McuforgeError(f"{m.path}: the model output tensor {engine_out} is not computed by a supported op")
        return Graph(self.tensors, self.ops, m.tensor_name(engine_in), out_name, m.tensor_name(graph_in),
                     m.tensor_name(graph_out), "tflite")

    def io(self, index: int, op, n_inputs: int) -> tuple[list[int], str]:
        ins = [int(t) for t in op.InputsAsNumpy()]
        outs = [int(t) for t in op.OutputsAsNumpy()]
        if len(outs) != 1:
            raise self.error(index, op, f"{len(outs)} outputs")
        if len(ins) < n_inputs:
            raise self.error(index, op, f"{len(ins)} inputs, {n_inputs} expected")
        return ins, self.activation(index, op, outs[0])

    def conv(self, index: int, op, name: str) -> Op:
        import tflite

        ins, out = self.io(index, op, 2)
        src = self.activation(index, op, ins[0])
        depthwise = name == "DEPTHWISE_CONV_2D"
        opts = options(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
        weight = self.constant(index, op, ins[1], INT8, "weight tensor")
        s, d = self.tensors[src], self.tensors[out]
        if len(s.shape) != 3 or len(d.shape) != 3 or weight.ndim != 4:
            raise self.error(index, op, "expected 4-D NHWC input, output and weights", ins[0])
        if depthwise:
            cin, cout = s.shape[2], d.shape[2]
            if weight.shape[0] != 1 or weight.shape[3] != cout or cout % cin != 0:
                raise self.error(index, op, f"depthwise weights {list(weight.shape)} for {cin} input and {cout} "
                                 f"output channels (depth multiplier {opts.DepthMultiplier()})", ins[1])
            layout = weight[0]
            kh, kw = layout.shape[:2]
            w_scale = self.weight_scales(index, op, ins[1], cout, 3)
            if cout != cin:  # depth multiplier > 1: a standard convolution, zero outside channel oc // multiplier
                dense = np.zeros((cout, kh, kw, cin), dtype=np.int8)
                dense[np.arange(cout), :, :, np.arange(cout) // (cout // cin)] = np.moveaxis(layout, 2, 0)
                layout, depthwise = dense, False
        else:
            cout, kh, kw, cin = weight.shape
            if cin != s.shape[2]:
                raise self.error(index, op, f"grouped convolution ({s.shape[2]} input channels, weights "
                                 f"{list(weight.shape)})", ins[1])
            layout = weight
            w_scale = self.weight_scales(index, op, ins[1], cout, 0)
        strides = [opts.StrideH(), opts.StrideW()]
        dilations = [opts.DilationHFactor(), opts.DilationWFactor()]
        pads = self.padding(opts.Padding(), s.shape, d.shape, strides, [(kh - 1) * dilations[0] + 1,
                                                                          (kw - 1) * dilations[1] + 1])
        consts = {"weight": np.ascontiguousarray(layout), "w_scale": w_scale}
        if len(ins) > 2 and ins[2] >= 0:
            consts["bias"] = self.constant(index, op, ins[2], INT32, "bias").astype(np.int32).reshape(-1)
        attrs = {"pads": pads, "strides": strides, "dilations": dilations,
                 "clamp": self.clamp(index, op, opts.FusedActivationFunction(), out)}
        if depthwise:
            kind = OpKind.depthwise
        else:
            kind = OpKind.conv1x1 if (kh, kw) == (1, 1) and not any(pads) else OpKind.conv
        if name == "DEPTHWISE_CONV_2D" and not depthwise:
            attrs["depth_multiplier"] = d.shape[2] // s.shape[2]
        return Op(kind, "", name, [src], out, attrs, consts)

    def padding(self, code: int, in_shape, out_shape, strides, spans) -> list[int]:
        if code == 1:  # VALID
            return [0, 0, 0, 0]
        top, bottom = _same_padding(in_shape[0], out_shape[0], strides[0], spans[0])
        left, right = _same_padding(in_shape[1], out_shape[1], strides[1], spans[1])
        return [top, left, bottom, right]

    def fully_connected(self, index: int, op, name: str) -> Op:
        import tflite

        ins, out = self.io(index, op, 2)
        src = self.activation(index, op, ins[0])
        opts = options(op, tflite.FullyConnectedOptions)
        if opts.WeightsFormat() != 0:
            raise self.error(index, op, "shuffled weights format", ins[1])
        weight = self.constant(index, op, ins[1], INT8, "weight tensor")
        if weight.ndim != 2 or weight.shape[1] != self.tensors[src].bytes:
            raise self.error(index, op, f"weights {list(weight.shape)} for an input of "
                             f"{self.tensors[src].bytes} values", ins[1])
        consts = {"weight": np.ascontiguousarray(weight),
                  "w_scale": self.weight_scales(index, op, ins[1], weight.shape[0], 0)}
        if len(ins) > 2 and ins[2] >= 0:
            consts["bias"] = self.constant(index, op, ins[2], INT32, "bias").astype(np.int32).reshape(-1)
        clamp = self.clamp(index, op, opts.FusedActivationFunction(), out)
        return Op(OpKind.fc, "", name, [src], out, {"clamp": clamp}, consts)

    def pool(self, index: int, op, name: str) -> Op:
        import tflite

        ins, out = self.io(index, op, 1)
        src = self.activation(index, op, ins[0])
        opts = options(op, tflite.Pool2DOptions)
        s, d = self.tensors[src], self.tensors[out]
        if (s.scale, s.zp) != (d.scale, d.zp):
            raise self.error(index, op, "pooling whose output quantization differs from its input's", ins[0])
        kernel = [opts.FilterHeight(), opts.FilterWidth()]
        strides = [opts.StrideH(), opts.StrideW()]
        pads = self.padding(opts.Padding(), s.shape, d.shape, strides, kernel)
        attrs = {"kernel": kernel, "strides": strides, "pads": pads, "count_include_pad": 0,
                 "clamp": self.clamp(index, op, opts.FusedActivationFunction(), out)}
        kind = OpKind.maxpool if name == "MAX_POOL_2D" else OpKind.avgpool_tflite
        return Op(kind, "", name, [src], out, attrs)

    def add(self, index: int, op, name: str) -> Op:
        import tflite

        ins, out = self.io(index, op, 2)
        a, b = self.activation(index, op, ins[0]), self.activation(index, op, ins[1])
        if self.tensors[a].shape != self.tensors[b].shape:
            raise self.error(index, op, "broadcasting add (inputs of different shapes)", ins[1])
        opts = options(op, tflite.AddOptions)
        clamp = self.clamp(index, op, opts.FusedActivationFunction(), out)
        return Op(OpKind.add, "", name, [a, b], out, {"clamp": clamp})

    def reshape(self, index: int, op, name: str) -> Op:
        ins, out = self.io(index, op, 1)
        src = self.activation(index, op, ins[0])
        s, d = self.tensors[src], self.tensors[out]
        if (s.scale, s.zp) != (d.scale, d.zp) or s.bytes != d.bytes:
            raise self.error(index, op, "a reshape that changes the quantization or the size", ins[0])
        return Op(OpKind.view, "", name, [src], out)

    def softmax(self, index: int, op, name: str) -> Op:
        import tflite

        ins, out = self.io(index, op, 1)
        src = self.activation(index, op, ins[0])
        opts = options(op, tflite.SoftmaxOptions)
        d = self.tensors[out]
        if d.zp != -128 or np.float32(d.scale) != np.float32(1.0 / 256):
            raise self.error(index, op, f"softmax output scale {d.scale} and zero point {d.zp}; TFLite Micro "
                             "requires 1/256 and -128", int(op.Outputs(0)))
        return Op(OpKind.softmax_tflite, "", name, [src], out, {"beta": float(opts.Beta())})

    def pad(self, index: int, op, name: str) -> Op:
        """PAD / PADV2: constant paddings [rank, 2] (int32, as TFLite Micro reads them) on H, W, C of a 4-D
        tensor, or on the features of a [1, N] one; the pad value is the output zero point or PADV2's
        constant_values."""
        ins, out = self.io(index, op, 2)
        src = self.activation(index, op, ins[0])
        if self.m.buffer(ins[1]) is None:
            raise self.error(index, op, "non-constant paddings (TFLite Micro needs them in the model)", ins[1])
        paddings = self.constant(index, op, ins[1], INT32, "paddings tensor").astype(np.int64)
        rank = len(self.m.shape(ins[0]))
        if rank not in (2, 4) or paddings.shape != (rank, 2):
            raise self.error(index, op, f"paddings {paddings.tolist()} for an input of shape "
                             f"{list(self.m.shape(ins[0]))}; 4-D NHWC or [1, N] inputs are supported", ins[1])
        if np.any(paddings < 0):
            raise self.error(index, op, f"negative paddings {paddings.tolist()}", ins[1])
        if np.any(paddings[0] != 0):
            raise self.error(index, op, f"padding the batch axis ({paddings[0].tolist()})", ins[1])
        if rank == 4:
            (top, bottom), (left, right), (before, after) = paddings[1:].tolist()
        else:
            top = bottom = left = right = 0
            before, after = paddings[1].tolist()
        s, d = self.tensors[src], self.tensors[out]
        value = d.zp
        if len(ins) > 2 and ins[2] >= 0:
            constant = self.constant(index, op, ins[2], INT8, "constant_values tensor")
            scales, zps, _ = self.m.quant(ins[2])
            if constant.size != 1:
                raise self.error(index, op, f"constant_values of {constant.size} values; one expected", ins[2])
            if scales.size != 1 or np.float32(scales[0]) != np.float32(d.scale) or int(zps[0]) != d.zp:
                raise self.error(index, op, "constant_values quantized differently from the output (TFLite Micro "
                                 "refuses it)", ins[2])
            value = int(constant.reshape(-1)[0])
        padded = (s.shape[0] + top + bottom, s.shape[1] + left + right, s.shape[2] + before + after) \
            if rank == 4 else (s.shape[0] + before + after,)
        if padded != d.shape:
            raise self.error(index, op, f"output shape {list(d.shape)}; the paddings give {list(padded)}",
                             int(op.Outputs(0)))
        return Op(OpKind.pad, "", name, [src], out, {"pads": [top, left, bottom, right], "channels": [before, after],
                                                     "value": value})

    def mirror_pad(self, index: int, op, name: str) -> Op:
        raise self.error(index, op, "mirror padding (REFLECT or SYMMETRIC) is not supported; only constant padding "
                         "(PAD, PADV2) is", int(op.Inputs(0)))

    def mean(self, index: int, op, name: str) -> Op:
        """MEAN over at most two of H, W, C of a 4-D tensor (or over the features of a [1, N] one); keep_dims only
        changes the shape, not the bytes."""
        import tflite

        ins, out = self.io(index, op, 2)
        src = self.activation(index, op, ins[0])
        axes = self.constant(index, op, ins[1], INT32, "axis tensor").reshape(-1)
        rank = len(self.m.shape(ins[0]))
        if rank not in (2, 4) or np.any(axes < -rank) or np.any(axes >= rank):
            raise self.error(index, op, f"axes {axes.tolist()} of an input of shape {list(self.m.shape(ins[0]))}; "
                             "4-D NHWC or [1, N] inputs are supported", ins[1])
        resolved = sorted({int(a) % rank for a in axes})
        if 0 in resolved:
            raise self.error(index, op, "a mean over the batch axis", ins[1])
        if len(resolved) > 2:
            raise self.error(index, op, f"a mean over {len(resolved)} axes; TFLite Micro reduces at most 2", ins[1])
        s, d = self.tensors[src], self.tensors[out]
        reduce = [a in resolved for a in (1, 2, 3)] if rank == 4 else [False, False, bool(resolved)]
        dims = s.shape if rank == 4 else (1, 1, s.shape[0])
        count = int(np.prod([size for size, r in zip(dims, reduce) if r]))
        if d.bytes * count != s.bytes:
            raise self.error(index, op, f"output shape {list(d.shape)} for a mean over axes {resolved} of "
                             f"{list(self.m.shape(ins[0]))}", int(op.Outputs(0)))
        try:
            mean_params(s.scale, d.scale, count)
        except McuforgeError as exc:
            raise self.error(index, op, str(exc), ins[0]) from None
        opts = options(op, tflite.ReducerOptions)
        return Op(OpKind.mean_tflite, "", name, [src], out, {"reduce": reduce, "count": count,
                                                             "keep_dims": bool(opts.KeepDims())})
