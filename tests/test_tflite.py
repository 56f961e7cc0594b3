"""Imported .tflite models against TensorFlow Lite Micro's own interpreter (the tflite-micro package: its reference
kernels on the host): the MLPerf Tiny reference models end to end (host, and KWS under QEMU on a Cortex-M4F), single
ops cut from them and variants built with the flatbuffer object API (max pool, add, softmax at several input scales),
single-op models built from scratch (PAD, PADV2, MEAN, depthwise with a depth multiplier) on random inputs, and the
errors for files the importer refuses. Every comparison is byte for byte: 0 differing values expected."""
from pathlib import Path

import flatbuffers
import numpy as np
import pytest

from helpers import MLPERF, have_cross_tools
from schemas.loader import load_board
from mcuforge.codegen import generate as codegen
from mcuforge import frontends
from mcuforge.schedule import planner
from mcuforge.ir import quant
from mcuforge.verify import tflm_reference
from mcuforge import toolchain
from mcuforge.verify import check as verify
from mcuforge.core.errors import McuforgeError

SHARED = MLPERF
VWW = SHARED / "vww_96_int8.tflite"
KWS = SHARED / "kws_ref_model.tflite"

pytestmark = pytest.mark.skipif(not KWS.is_file() or not VWW.is_file(), reason="needs ../shared/models/mlperf-tiny")


def schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema_fb

    return schema_fb


def model_object(path: Path):
    from tflite_micro.python.tflite_micro import runtime

    return runtime.convert_bytearray_to_object(bytearray(path.read_bytes()))


def write_model(model, path: Path) -> Path:
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    path.write_bytes(bytes(builder.Output()))
    return path


def op_code_index(model, code: int) -> int:
    for index, op_code in enumerate(model.operatorCodes):
        if max(op_code.builtinCode, op_code.deprecatedBuiltinCode) == code:
            return index
    new = schema().OperatorCodeT()
    new.builtinCode = code
    new.deprecatedBuiltinCode = min(code, 127)
    new.version = 1
    model.operatorCodes.append(new)
    return len(model.operatorCodes) - 1


def cut(model, first: int, last: int):
    """Operators first..last of subgraph 0 as the whole model (input: op first's input 0; output: op last's)."""
    graph = model.subgraphs[0]
    graph.operators = graph.operators[first:last + 1]
    graph.inputs = np.array([graph.operators[0].inputs[0]], dtype=np.int32)
    graph.outputs = np.array([graph.operators[-1].outputs[0]], dtype=np.int32)
    return model


def add_tensor(model, like: int, scale: float, zero_point: int, shape=None) -> int:
    """A new int8 activation tensor shaped like tensor `like`, with its own quantization."""
    s = schema()
    graph = model.subgraphs[0]
    source = graph.tensors[like]
    tensor = s.TensorT()
    tensor.shape = np.array(shape if shape is not None else source.shape, dtype=np.int32)
    tensor.type = s.TensorType.INT8
    tensor.buffer = 0
    tensor.name = f"added_{len(graph.tensors)}".encode()
    tensor.quantization = s.QuantizationParametersT()
    tensor.quantization.scale = np.array([scale], dtype=np.float32)
    tensor.quantization.zeroPoint = np.array([zero_point], dtype=np.int64)
    graph.tensors.append(tensor)
    return len(graph.tensors) - 1


def engine_vs_tflm(model_path: Path, work: Path, samples: int, board: str | None = None,
                   layer_samples: int = 2) -> dict:
    """Import, plan, generate, build (host, and the board under QEMU when given), run both on random int8 inputs."""
    graph = frontends.load(model_path)
    plan = planner.plan(graph)
    codegen.write(codegen.generate(graph, plan, model_path.stem), work / "codegen")
    builds = {"host": toolchain.cmake_build(work / "codegen", work / "host", None, "fixed")}
    if layer_samples:  # a single-op model's one layer is its output: no per-layer build needed
        builds["host_dump"] = toolchain.cmake_build(work / "codegen", work / "host_dump", None, "fixed",
                                                    layer_dump=True)
    machine = None
    if board is not None:
        spec = load_board(board).model_dump(mode="json")
        machine = spec["qemu"]["machine"]
        builds["board"] = toolchain.cmake_build(work / "codegen", work / "board", spec, "fixed")
        builds["board_dump"] = toolchain.cmake_build(work / "codegen", work / "board_dump", spec, "fixed",
                                                     layer_dump=True)
    x = verify.model_inputs(graph, samples, seed=1)
    report, _ = verify.run_checks(graph, model_path, x, None, min(layer_samples, samples), "fixed", builds, machine,
                                  work / "run")
    report["problems"] = verify.judge(report)
    report["arena_bytes"] = plan.peak_bytes()
    report["kinds"] = [op.kind for op in graph.ops]
    return report


def assert_exact(report: dict) -> None:
    assert report["reference"] == "tflite-micro"
    assert report["problems"] == []
    assert report["host"]["vs_ort"]["differing"] == 0, report["host"]
    for layer in report.get("layers", []):
        assert layer["host_vs_ort"]["differing"] == 0, layer
        if "qemu_vs_host" in layer:
            assert layer["qemu_vs_host"]["differing"] == 0, layer
    if "qemu" in report:
        assert report["qemu"]["vs_ort"]["differing"] == 0 and report["qemu"]["vs_host"]["differing"] == 0


# ---- import -----------------------------------------------------------------------------------------------------
def test_import_reference_models():
    vww = frontends.load(VWW)
    assert vww.format == "tflite"
    assert vww.tensors[vww.input].shape == (96, 96, 3) and vww.tensors[vww.output].shape == (2,)
    assert [op.kind for op in vww.ops].count("depthwise") == 13
    assert vww.ops[-1].kind == "softmax_tflite" and vww.ops[-4].kind == "avgpool_tflite"
    kws = frontends.load(KWS)
    assert kws.tensors[kws.input].shape == (49, 10, 1) and kws.tensors[kws.output].shape == (12,)
    first = kws.ops[0]
    assert first.consts["weight"].shape == (64, 10, 4, 1)  # OHWI, as in the file
    assert first.attrs["pads"] == [4, 1, 5, 1]  # SAME, 10x4 kernel, stride 2: the odd row at the bottom
    assert sum(op.macs(kws.tensors) for op in kws.ops) > 2_000_000


def test_softmax_params_match_tflite_micro_formula():
    params = quant.softmax_params(0.14469251036643982)
    # beta * scale * 2^26 = 9710068.6 = 0.5787 * 2^24: multiplier round(0.5787 * 2^31), left shift 24
    assert params["input_left_shift"] == 24
    assert params["input_multiplier"] == round(0.14469251036643982 * 2**26 / 2**24 * 2**31)
    assert params["diff_min"] == -int(np.floor(31 * 2**26 / 2**24))


def test_tflm_arena_report():
    figures = tflm_reference.arena(VWW)
    assert figures["total"] == figures["head"] + figures["tail"]
    assert figures["head"] >= 55_296  # the layer-by-layer floor


# ---- the two reference models, end to end ------------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("model", [KWS, VWW], ids=["kws", "vww"])
def test_reference_model_host_bit_exact(model: Path, tmp_path: Path):
    report = engine_vs_tflm(model, tmp_path, samples=100, layer_samples=3)
    assert_exact(report)
    assert report["samples"] == 100
    assert report["arena_bytes"] <= tflm_reference.arena(model)["head"]


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_kws_under_qemu_bit_exact(tmp_path: Path):
    report = engine_vs_tflm(KWS, tmp_path, samples=10, board="stm32l4r5", layer_samples=2)
    assert_exact(report)
    assert report["qemu"]["instructions_per_inference"] > 1_000_000


# ---- single ops and variants -------------------------------------------------------------------------------------
KWS_OPS = {"conv_2d": (0, 0), "depthwise": (1, 1), "conv_1x1": (2, 2), "average_pool": (9, 9),
           "reshape_fc": (10, 11), "softmax": (12, 12)}


@pytest.mark.parametrize("name", list(KWS_OPS))
def test_kws_single_ops(name: str, tmp_path: Path):
    first, last = KWS_OPS[name]
    path = write_model(cut(model_object(KWS), first, last), tmp_path / f"{name}.tflite")
    assert_exact(engine_vs_tflm(path, tmp_path, samples=20))


@pytest.mark.parametrize("scale", [0.01, 0.3, 2.5])
def test_softmax_input_scales(scale: float, tmp_path: Path):
    """TFLM's gemmlowp softmax over random logits at several input scales (diff_min cuts at large scales)."""
    model = cut(model_object(KWS), 12, 12)
    graph = model.subgraphs[0]
    graph.tensors[graph.operators[0].inputs[0]].quantization.scale = np.array([scale], dtype=np.float32)
    path = write_model(model, tmp_path / "softmax.tflite")
    assert_exact(engine_vs_tflm(path, tmp_path, samples=50))


def test_max_pool_same_padding(tmp_path: Path):
    """KWS's first conv, then a 3x3 stride-2 SAME max pool (25x5 -> 13x3: padding on the bottom/right) with RELU."""
    s = schema()
    model = cut(model_object(KWS), 0, 0)
    graph = model.subgraphs[0]
    conv_out = graph.operators[0].outputs[0]
    q = graph.tensors[conv_out].quantization
    out = add_tensor(model, conv_out, float(q.scale[0]), int(q.zeroPoint[0]), shape=[1, 13, 3, 64])
    op = s.OperatorT()
    op.opcodeIndex = op_code_index(model, s.BuiltinOperator.MAX_POOL_2D)
    op.inputs = np.array([conv_out], dtype=np.int32)
    op.outputs = np.array([out], dtype=np.int32)
    op.builtinOptionsType = s.BuiltinOptions.Pool2DOptions
    op.builtinOptions = s.Pool2DOptionsT()
    op.builtinOptions.padding = s.Padding.SAME
    op.builtinOptions.strideH = op.builtinOptions.strideW = 2
    op.builtinOptions.filterHeight = op.builtinOptions.filterWidth = 3
    op.builtinOptions.fusedActivationFunction = s.ActivationFunctionType.RELU
    graph.operators.append(op)
    graph.outputs = np.array([out], dtype=np.int32)
    path = write_model(model, tmp_path / "maxpool.tflite")
    report = engine_vs_tflm(path, tmp_path, samples=10)
    assert report["kinds"] == ["conv", "maxpool"]
    assert_exact(report)


@pytest.mark.parametrize("activation", ["NONE", "RELU6"])
def test_add_of_two_branches(activation: str, tmp_path: Path):
    """ADD(conv output, depthwise output): inputs at different scales, TFLite's left shift 20 and per-input
    multipliers, a fused activation."""
    s = schema()
    model = cut(model_object(KWS), 0, 1)
    graph = model.subgraphs[0]
    a, b = graph.operators[0].outputs[0], graph.operators[1].outputs[0]
    out = add_tensor(model, b, 0.09, -20)
    op = s.OperatorT()
    op.opcodeIndex = op_code_index(model, s.BuiltinOperator.ADD)
    op.inputs = np.array([a, b], dtype=np.int32)
    op.outputs = np.array([out], dtype=np.int32)
    op.builtinOptionsType = s.BuiltinOptions.AddOptions
    op.builtinOptions = s.AddOptionsT()
    op.builtinOptions.fusedActivationFunction = getattr(s.ActivationFunctionType, activation)
    graph.operators.append(op)
    graph.outputs = np.array([out], dtype=np.int32)
    path = write_model(model, tmp_path / "add.tflite")
    report = engine_vs_tflm(path, tmp_path, samples=10)
    assert report["kinds"] == ["conv", "depthwise", "add"]
    assert_exact(report)


# ---- single ops built from scratch: PAD, PADV2, MEAN, depthwise with a depth multiplier --------------------------
def quantization(scale, zero_point, dimension: int = 0):
    q = schema().QuantizationParametersT()
    q.scale = np.atleast_1d(np.asarray(scale, dtype=np.float32))
    q.zeroPoint = np.atleast_1d(np.asarray(zero_point, dtype=np.int64))
    q.quantizedDimension = dimension
    return q


def new_tensor(model, graph, shape, type_name: str, name: str, quant=None, data=None) -> int:
    """Appends a tensor (and its constant buffer when `data` is given) to a TFLite object-API graph; its index."""
    s = schema()
    t = s.TensorT()
    t.shape = np.array(shape, dtype=np.int32)
    t.type = getattr(s.TensorType, type_name)
    t.name = name.encode()
    t.buffer = 0
    if data is not None:
        buffer = s.BufferT()
        buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), dtype=np.uint8)
        model.buffers.append(buffer)
        t.buffer = len(model.buffers) - 1
    t.quantization = quant
    graph.tensors.append(t)
    return len(graph.tensors) - 1


def single_op_model(path: Path, code: str, x: tuple, y: tuple, constants: list, options=None) -> Path:
    """A model of one operator: int8 input x = (shape, scale, zero point) -> int8 output y; `constants` are the
    operator's further inputs, (numpy array, tensor type name, quantization or None) each; `options` a builtin
    options object (its class names the union type)."""
    s = schema()
    model = s.ModelT()
    model.version = 3
    model.buffers = [s.BufferT()]
    code_value = getattr(s.BuiltinOperator, code)
    model.operatorCodes = []
    op_code_index(model, code_value)
    graph = s.SubGraphT()
    graph.tensors = []

    def tensor(shape, type_name: str, name: str, quant=None, data=None) -> int:
        return new_tensor(model, graph, shape, type_name, name, quant, data)

    x_index = tensor(x[0], "INT8", "x", quantization(x[1], x[2]))
    inputs = [x_index] + [tensor(np.shape(data), type_name, f"const{i}", quant, data)
                          for i, (data, type_name, quant) in enumerate(constants)]
    y_index = tensor(y[0], "INT8", "y", quantization(y[1], y[2]))
    op = s.OperatorT()
    op.opcodeIndex = 0
    op.inputs = np.array(inputs, dtype=np.int32)
    op.outputs = np.array([y_index], dtype=np.int32)
    if options is not None:
        op.builtinOptionsType = getattr(s.BuiltinOptions, type(options).__name__[:-1])
        op.builtinOptions = options
    graph.operators = [op]
    graph.inputs = np.array([x_index], dtype=np.int32)
    graph.outputs = np.array([y_index], dtype=np.int32)
    model.subgraphs = [graph]
    return write_model(model, path)


PAD_CASES = {
    # input shape, paddings, PADV2 constant (None: PAD, the output zero point), output zero point
    "pad-hwc": ([1, 5, 4, 3], [[0, 0], [1, 2], [0, 3], [2, 1]], None, -9),  # TFLM copies bytes: out zp differs
    "padv2-hw": ([1, 6, 7, 8], [[0, 0], [2, 0], [1, 1], [0, 0]], -128, 4),
    "pad-features": ([1, 10], [[0, 0], [3, 2]], None, 11),
}


@pytest.mark.parametrize("case", list(PAD_CASES))
def test_pad(case: str, tmp_path: Path):
    shape, paddings, constant, out_zp = PAD_CASES[case]
    paddings = np.array(paddings, dtype=np.int32)
    out_shape = [int(d) + int(p.sum()) for d, p in zip(shape, paddings)]
    constants = [(paddings, "INT32", None)]
    if constant is not None:
        constants.append((np.array([constant], dtype=np.int8), "INT8", quantization(0.2, out_zp)))
    path = single_op_model(tmp_path / "pad.tflite", "PAD" if constant is None else "PADV2", (shape, 0.1, 7),
                           (out_shape, 0.2, out_zp), constants)
    report = engine_vs_tflm(path, tmp_path, samples=20, layer_samples=0)
    assert report["kinds"] == ["pad"]
    assert_exact(report)


MEAN_CASES = {
    # input shape, axes, keep_dims, input (scale, zp), output (scale, zp)
    "hw-global-pool": ([1, 7, 9, 16], [1, 2], False, (0.05, 3), (0.02, -7)),
    "hw-keep-same-quant": ([1, 5, 6, 8], [2, 1], True, (0.05, 3), (0.05, 3)),  # ties: the multiplier's rounding
    "w-negative-axis": ([1, 4, 11, 5], [-2], False, (0.01, -128), (0.031, -100)),
    "channels-of-vector": ([1, 40], [1], True, (0.3, 20), (0.1, 5)),
}


@pytest.mark.parametrize("case", list(MEAN_CASES))
def test_mean(case: str, tmp_path: Path):
    shape, axes, keep, (in_scale, in_zp), (out_scale, out_zp) = MEAN_CASES[case]
    rank = len(shape)
    reduced = {a % rank for a in axes}
    out_shape = [1 if i in reduced else d for i, d in enumerate(shape)] if keep else \
        [d for i, d in enumerate(shape) if i not in reduced]
    options = schema().ReducerOptionsT()
    options.keepDims = keep
    path = single_op_model(tmp_path / "mean.tflite", "MEAN", (shape, in_scale, in_zp), (out_shape, out_scale, out_zp),
                           [(np.array(axes, dtype=np.int32), "INT32", None)], options)
    report = engine_vs_tflm(path, tmp_path, samples=50, layer_samples=0)
    assert report["kinds"] == ["mean_tflite"]
    assert_exact(report)


def test_mean_params_fold_the_count():
    """TFLite's quantized mean: QuantizeMultiplier(0.05 / 0.02) = (0.625 * 2^31, 2), then the count 63 folded in
    with s = floor(log2(63)) = 5: multiplier (0.625 * 2^31 << 5) // 63, shift 2 - 5."""
    params = quant.mean_params(0.05, 0.02, 63)
    multiplier = round(float(np.float32(0.05)) / float(np.float32(0.02)) / 4 * 2**31)
    assert params == {"multiplier": (multiplier << 5) // 63, "shift": -3}
    assert quant.mean_params(0.05, 0.05, 1) == {"multiplier": 2**30, "shift": 1}


@pytest.mark.parametrize("in_channels, multiplier", [(1, 6), (3, 2)])
def test_depthwise_depth_multiplier(in_channels: int, multiplier: int, tmp_path: Path):
    """DEPTHWISE_CONV_2D with depth multiplier > 1 (per-channel weight scales, bias, SAME padding, stride 2, RELU):
    imported as a standard convolution, byte-identical to TFLM."""
    s = schema()
    rng = np.random.default_rng(in_channels)
    out_channels = in_channels * multiplier
    weights = rng.integers(-127, 128, size=(1, 3, 3, out_channels), dtype=np.int8)
    w_scales = rng.uniform(0.002, 0.02, out_channels).astype(np.float32)
    in_scale = 0.05
    bias = rng.integers(-2000, 2000, size=out_channels).astype(np.int32)
    options = s.DepthwiseConv2DOptionsT()
    options.padding = s.Padding.SAME
    options.strideH = options.strideW = 2
    options.dilationHFactor = options.dilationWFactor = 1
    options.depthMultiplier = multiplier
    options.fusedActivationFunction = s.ActivationFunctionType.RELU
    path = single_op_model(tmp_path / "dw.tflite", "DEPTHWISE_CONV_2D", ([1, 9, 8, in_channels], in_scale, -5),
                           ([1, 5, 4, out_channels], 0.08, -20),
                           [(weights, "INT8", quantization(w_scales, np.zeros(out_channels), 3)),
                            (bias, "INT32", quantization(in_scale * w_scales, np.zeros(out_channels)))], options)
    report = engine_vs_tflm(path, tmp_path, samples=20, layer_samples=0)
    assert report["kinds"] == ["conv"]
    assert_exact(report)
    graph = frontends.load(path)
    assert graph.ops[0].attrs["depth_multiplier"] == multiplier
    assert graph.ops[0].consts["weight"].shape == (out_channels, 3, 3, in_channels)


def add_constant(model, values: np.ndarray, type_name: str) -> int:
    """A new constant tensor (its own buffer) holding `values`."""
    s = schema()
    buffer = s.BufferT()
    buffer.data = np.frombuffer(np.ascontiguousarray(values).tobytes(), dtype=np.uint8)
    model.buffers.append(buffer)
    tensor = s.TensorT()
    tensor.shape = np.array(values.shape, dtype=np.int32)
    tensor.type = getattr(s.TensorType, type_name)
    tensor.buffer = len(model.buffers) - 1
    tensor.name = f"constant_{len(model.subgraphs[0].tensors)}".encode()
    model.subgraphs[0].tensors.append(tensor)
    return len(model.subgraphs[0].tensors) - 1


def kws_with_pad_and_mean(path: Path) -> Path:
    """The whole KWS model rewritten with the two patterns converters emit: ZeroPadding2D as PAD before a VALID
    first convolution (equal to its SAME padding), and global average pooling as MEAN over H and W (keep_dims false)
    in place of AVERAGE_POOL_2D + RESHAPE."""
    s = schema()
    model = model_object(KWS)
    graph = model.subgraphs[0]
    first, pool, reshape = graph.operators[0], graph.operators[9], graph.operators[10]
    q = graph.tensors[first.inputs[0]].quantization
    padded = add_tensor(model, first.inputs[0], float(q.scale[0]), int(q.zeroPoint[0]), shape=[1, 58, 12, 1])
    pad = s.OperatorT()
    pad.opcodeIndex = op_code_index(model, s.BuiltinOperator.PAD)
    paddings = np.array([[0, 0], [4, 5], [1, 1], [0, 0]], dtype=np.int32)
    pad.inputs = np.array([first.inputs[0], add_constant(model, paddings, "INT32")], dtype=np.int32)
    pad.outputs = np.array([padded], dtype=np.int32)
    first.inputs[0] = padded
    first.builtinOptions.padding = s.Padding.VALID
    mean = s.OperatorT()
    mean.opcodeIndex = op_code_index(model, s.BuiltinOperator.MEAN)
    mean.inputs = np.array([pool.inputs[0], add_constant(model, np.array([1, 2], dtype=np.int32), "INT32")],
                           dtype=np.int32)
    mean.outputs = np.array(reshape.outputs, dtype=np.int32)
    mean.builtinOptionsType = s.BuiltinOptions.ReducerOptions
    mean.builtinOptions = s.ReducerOptionsT()
    graph.operators = [pad] + graph.operators[:9] + [mean] + graph.operators[11:]
    return write_model(model, path)


def test_kws_with_pad_and_mean(tmp_path: Path):
    """KWS with PAD and MEAN (kws_with_pad_and_mean), every layer compared with TFLite Micro."""
    path = kws_with_pad_and_mean(tmp_path / "kws_pad_mean.tflite")
    report = engine_vs_tflm(path, tmp_path, samples=20, layer_samples=2)
    assert report["kinds"][:2] == ["pad", "conv"] and report["kinds"][-3:] == ["mean_tflite", "fc", "softmax_tflite"]
    assert_exact(report)
    assert len(report["layers"]) == 13


def _refused_single_op(tmp_path: Path, case: str) -> Path:
    x = ([1, 4, 4, 2], 0.1, 0)
    paddings = np.array([[0, 0], [1, 1], [1, 1], [0, 0]], dtype=np.int32)
    padded = ([1, 6, 6, 2], 0.1, 0)
    if case == "mirror-pad":
        options = schema().MirrorPadOptionsT()
        return single_op_model(tmp_path / "m.tflite", "MIRROR_PAD", x, padded, [(paddings, "INT32", None)], options)
    if case == "runtime-paddings":  # the paddings tensor has no data: computed at run time
        path = single_op_model(tmp_path / "m.tflite", "PAD", x, padded, [(paddings, "INT32", None)])
        model = model_object(path)
        model.subgraphs[0].tensors[1].buffer = 0
        return write_model(model, path)
    if case == "int64-paddings":
        return single_op_model(tmp_path / "m.tflite", "PAD", x, padded, [(paddings.astype(np.int64), "INT64", None)])
    if case == "batch-padding":
        return single_op_model(tmp_path / "m.tflite", "PAD", x, ([3, 6, 6, 2], 0.1, 0),
                               [(paddings + np.array([[1, 1], [0, 0], [0, 0], [0, 0]], np.int32), "INT32", None)])
    axes = {"mean-batch": [0, 1], "mean-three-axes": [1, 2, 3]}[case]
    return single_op_model(tmp_path / "m.tflite", "MEAN", x, ([1], 0.1, 0), [(np.array(axes, np.int32), "INT32", None)],
                           schema().ReducerOptionsT())


@pytest.mark.parametrize("case, expected", [
    ("mirror-pad", ["operator 0 (MIRROR_PAD)", "tensor 0 'x'", "mirror padding"]),
    ("runtime-paddings", ["operator 0 (PAD)", "tensor 1 'const0'", "non-constant paddings"]),
    ("int64-paddings", ["operator 0 (PAD)", "tensor 1 'const0'", "int64 paddings tensor; int32 expected"]),
    ("batch-padding", ["operator 0 (PAD)", "tensor 2 'y'", "batch 3; the engine runs batch 1"]),
    ("mean-batch", ["operator 0 (MEAN)", "tensor 1 'const0'", "a mean over the batch axis"]),
    ("mean-three-axes", ["operator 0 (MEAN)", "TFLite Micro reduces at most 2"]),
])
def test_refused_pad_and_mean(case: str, expected: list[str], tmp_path: Path):
    with pytest.raises(McuforgeError) as info:
        frontends.load(_refused_single_op(tmp_path, case))
    for text in expected:
        assert text in str(info.value), str(info.value)


# ---- what the importer refuses -----------------------------------------------------------------------------------
def _mutated(tmp_path: Path, change) -> Path:
    model = cut(model_object(KWS), 0, 1)
    change(model)
    return write_model(model, tmp_path / "bad.tflite")


def _set_type(model, type_code: int) -> None:
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].type = type_code


def _set_dynamic(model) -> None:
    graph = model.subgraphs[0]
    graph.tensors[graph.inputs[0]].shapeSignature = np.array([1, -1, 10, 1], dtype=np.int32)


def _set_tanh(model) -> None:
    model.subgraphs[0].operators[1].opcodeIndex = op_code_index(model, schema().BuiltinOperator.TANH)


@pytest.mark.parametrize("case, change, expected", [
    ("float", lambda m: _set_type(m, 0), ["operator 0 (CONV_2D)", "float32 activation", "full-integer"]),
    ("int16", lambda m: _set_type(m, 7), ["operator 0 (CONV_2D)", "int16 activations are not supported"]),
    ("dynamic", _set_dynamic, ["operator 0 (CONV_2D)", "dynamic shape [1, -1, 10, 1]"]),
    ("unsupported-op", _set_tanh, ["operator 1 (TANH)", "tensor ", "op not supported"]),
])
def test_refused_models(case: str, change, expected: list[str], tmp_path: Path):
    with pytest.raises(McuforgeError) as info:
        frontends.load(_mutated(tmp_path, change))
    for text in expected:
        assert text in str(info.value), str(info.value)


@pytest.mark.parametrize("content, expected", [
    (lambda data: data[: len(data) // 3], "truncated or corrupt"),
    (lambda data: b"\x00" * 64, "not a TFLite model"),
    (lambda data: b"", "not a TFLite model"),
])
def test_refused_files(content, expected: str, tmp_path: Path):
    path = tmp_path / "broken.tflite"
    path.write_bytes(content(KWS.read_bytes()))
    with pytest.raises(McuforgeError, match=expected):
        frontends.load(path)
