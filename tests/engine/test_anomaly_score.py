"""mf_anomaly_accumulate_s8 (C) == mcuforge.ir.anomaly (Python reference) on ONNX Runtime's int8 output of a
quantized autoencoder, and both == the mean squared error of ORT's dequantized tensors (the independent reference),
within the grid's rounding of the scales."""
import ctypes as C

import numpy as np
import pytest
import torch

from mcuforge.frontends.onnx import load
from mcuforge.ir import anomaly
from mcuforge.ml import quantize
from mcuforge.verify import onnx_reference


class AnomalyParams(C.Structure):
    _fields_ = [("input_zp", C.c_int32), ("output_zp", C.c_int32), ("input_multiplier", C.c_int32),
                ("output_multiplier", C.c_int32)]


def _accumulate(lib, params: anomaly.Grid, q_in: np.ndarray, q_out: np.ndarray) -> int:
    acc = C.c_int64(0)
    c_params = AnomalyParams(params.input_zp, params.output_zp, params.input_multiplier, params.output_multiplier)
    q_in, q_out = np.ascontiguousarray(q_in, np.int8), np.ascontiguousarray(q_out, np.int8)
    status = lib.mf_anomaly_accumulate_s8(C.byref(c_params), C.c_int32(q_in.size),
                                          q_in.ctypes.data_as(C.c_void_p), q_out.ctypes.data_as(C.c_void_p),
                                          C.byref(acc))
    assert status == 0
    return acc.value


def test_hand_worked_case(float_engine):
    # equal scales 0.5: both multipliers 4096, g = 0.5 / 4096; out - in = (3, -2) steps -> acc = 4096^2 x 13,
    # the mean squared error 0.25 x 13 / 2 = 1.625
    params = anomaly.grid(0.5, 0, 0.5, 0)
    assert (params.input_multiplier, params.output_multiplier) == (4096, 4096)
    acc = _accumulate(float_engine.lib, params, np.array([1, 2]), np.array([4, 0]))
    assert acc == 4096 ** 2 * 13
    assert anomaly.score(acc, 2, params) == pytest.approx(1.625)


def test_extremes_do_not_overflow(float_engine):
    # zero points -128 (input) and 127 (output), q_in = 127, q_out = -128: d = (-255 - 255) x 4096, the largest
    params = anomaly.grid(1.0, -128, 1.0, 127)
    q_in = np.full(4096, 127, np.int8)
    q_out = np.full(4096, -128, np.int8)
    expected = int(anomaly.accumulate(q_in[None], q_out[None], params)[0])
    assert expected == 4096 * (510 * 4096) ** 2
    assert _accumulate(float_engine.lib, params, q_in, q_out) == expected


def test_a_total_past_int64_is_refused_not_wrapped(float_engine):
    """The largest term (510 x 4096)^2 = 2^42 x 255^2 x 4 from an accumulator 1 below INT64_MAX would overflow:
    MF_UNSUPPORTED (-2) with the accumulator unchanged; a negative accumulator is MF_ARG_ERROR (-1)."""
    params = anomaly.grid(1.0, -128, 1.0, 127)
    c_params = AnomalyParams(params.input_zp, params.output_zp, params.input_multiplier, params.output_multiplier)
    q_in, q_out = np.full(1, 127, np.int8), np.full(1, -128, np.int8)
    for start, status in ((2**63 - 2, -2), (-1, -1), (2**63 - 1 - (510 * 4096) ** 2, 0)):
        acc = C.c_int64(start)
        got = float_engine.lib.mf_anomaly_accumulate_s8(C.byref(c_params), C.c_int32(1),
                                                        q_in.ctypes.data_as(C.c_void_p),
                                                        q_out.ctypes.data_as(C.c_void_p), C.byref(acc))
        assert (got, acc.value) == (status, start + (510 * 4096) ** 2 if status == 0 else start)


def test_score_of_ort_output(float_engine, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(40, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4), torch.nn.ReLU(),
                              torch.nn.Linear(4, 40)).eval()
    fp32, int8 = tmp_path / "ae.onnx", tmp_path / "ae_int8.onnx"
    torch.onnx.export(net, (torch.zeros(1, 40),), str(fp32), dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["reconstruction"], dynamic_axes={"input": {0: "b"}, "reconstruction": {0: "b"}})
    rng = np.random.default_rng(0)
    in_scale, in_zp = 0.05, -3  # imposed, as the audio front end's quantisation is
    x = ((rng.integers(-128, 128, (64, 40)) - in_zp) * in_scale).astype(np.float32)
    quantize.quantize(fp32, int8, x[:32], "per_channel", float_inputs=True, input_quant=(in_scale, in_zp))
    graph = load(int8)
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    assert (src.scale, src.zp) == (pytest.approx(in_scale), in_zp)
    session = onnx_reference.session(int8, graph, [graph.input, graph.output])
    real_out, q_in, q_out = session.run(None, {graph.onnx_input: x})
    params = anomaly.grid(src.scale, src.zp, dst.scale, dst.zp)
    clips_in, clips_out = q_in.reshape(8, 8, 40), q_out.reshape(8, 8, 40)  # 8 clips of 8 vectors
    reference = anomaly.accumulate(clips_in, clips_out, params)
    engine = [_accumulate(float_engine.lib, params, a, b) for a, b in zip(clips_in, clips_out)]
    assert engine == reference.tolist()
    # the score is the MSE of ORT's real output against the real input (ORT dequantizes with the output's scale)
    mse = ((real_out.astype(np.float64) - x.astype(np.float64)) ** 2).reshape(8, -1).mean(axis=1)
    assert anomaly.score(reference, 8 * 40, params) == pytest.approx(mse, rel=2e-3)
