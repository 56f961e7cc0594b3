"""Fully connected against com.microsoft QGemm (transB = 1, bias) and ONNX QLinearMatMul."""

from __future__ import annotations

import ctypes as C

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mf_ort
from mf_check import check_op
from mf_engine import MF_ARG_ERROR, MF_OK, MODES, Dims, FcParams
from strategies import activation_scales, activations, int8_array, output_scales, per_channel_scales, seeds, zero_points
from mcuforge.ir.quant import float_multiplier


@st.composite
def fc_cases(draw):
    return dict(m=draw(st.integers(1, 4)), k=draw(st.integers(1, 300)), n=draw(st.integers(1, 40)),
                xs=draw(activation_scales), ys=draw(output_scales), xzp=draw(zero_points), yzp=draw(zero_points),
                w_exp=draw(st.sampled_from([(-12, -8), (-9, -4), (-16, 0)])), per_channel=draw(st.booleans()),
                bias=draw(st.booleans()), act=draw(activations()), seed=draw(seeds))


def _weights(case):
    rng = np.random.default_rng(case["seed"])
    x = int8_array(rng, (case["m"], case["k"]))
    w = int8_array(rng, (case["n"], case["k"]), -127, 127)
    n_scales = case["n"] if case["per_channel"] else 1
    ws = np.resize(per_channel_scales(rng, n_scales, *case["w_exp"]), case["n"]).astype(np.float32)
    bias = rng.integers(-(2**18), 2**18, case["n"]).astype(np.int32) if case["bias"] else None
    return x, w, ws, bias, n_scales


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=100, deadline=None)
@given(case=fc_cases())
def test_fully_connected_matches_qgemm(engine_libs, mode, case):
    x, w, ws, bias, n_scales = _weights(case)
    ref = mf_ort.qgemm(x, case["xs"], case["xzp"], w, ws[:n_scales], bias, case["ys"], case["yzp"], act=case["act"])
    ours = engine_libs[mode].fully_connected(x, w, bias, float_multiplier(case["xs"], ws, case["ys"]), case["xzp"],
                                             case["yzp"], act=case["act"])
    check_op("QGemm", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=50, deadline=None)
@given(case=fc_cases())
def test_fully_connected_matches_qlinearmatmul(engine_libs, mode, case):
    x, w, ws, _, n_scales = _weights(case)
    scale_arg = ws if case["per_channel"] else ws[0]
    ref = mf_ort.qlinear_matmul(x, case["xs"], case["xzp"], np.ascontiguousarray(w.T), scale_arg, case["ys"],
                                case["yzp"])
    ours = engine_libs[mode].fully_connected(x, w, None, float_multiplier(case["xs"], ws, case["ys"]), case["xzp"],
                                             case["yzp"])
    check_op("QLinearMatMul", mode, ours, ref)


def test_fixed_mode_rarely_off_by_one(fixed_engine):
    case = dict(m=4, k=256, n=64, xs=0.03, ys=0.08, xzp=7, yzp=-10, w_exp=(-9, -7), per_channel=True, bias=True,
                act=(-128, 127), seed=3)
    x, w, ws, bias, _ = _weights(case)
    ref = mf_ort.qgemm(x, case["xs"], case["xzp"], w, ws, bias, case["ys"], case["yzp"])
    ours = fixed_engine.fully_connected(x, w, bias, float_multiplier(case["xs"], ws, case["ys"]), case["xzp"],
                                        case["yzp"])
    assert check_op("QGemm (realistic)", "fixed", ours, ref) / ref.size < 0.05


# (input_dims, filter_dims, output_dims) as (h, w, c); the first is a valid call: 2 rows of 8 features -> 3
FC_DIMS = [
    ((2, 1, 8), (3, 1, 8), (2, 1, 3), MF_OK),
    ((2, 1, 8), (3, 1, 7), (2, 1, 3), MF_ARG_ERROR),  # filter features != input features
    ((2, 1, 8), (3, 1, 8), (1, 1, 3), MF_ARG_ERROR),  # output rows != input rows
    ((2, 1, 8), (3, 1, 8), (2, 1, 4), MF_ARG_ERROR),  # output features != filter rows
    ((2, 2, 8), (3, 1, 8), (2, 2, 3), MF_ARG_ERROR),  # w must be 1
    ((0, 1, 8), (3, 1, 8), (0, 1, 3), MF_ARG_ERROR),  # no rows
    (None, (3, 1, 8), (2, 1, 3), MF_ARG_ERROR),       # NULL dims
]


@pytest.mark.parametrize("in_dims, filter_dims, out_dims, expected", FC_DIMS)
def test_fully_connected_checks_dims(engine, in_dims, filter_dims, out_dims, expected):
    data, out = np.zeros(256, dtype=np.int8), np.zeros(256, dtype=np.int8)  # large enough for any shape above
    quant, keep = engine.quant(np.ones(8, dtype=np.float32))
    dims = [None if d is None else C.byref(Dims(*d)) for d in (in_dims, filter_dims, out_dims)]
    data_ptr, out_ptr = (a.ctypes.data_as(C.POINTER(C.c_int8)) for a in (data, out))
    status = engine.lib.mf_fully_connected_s8(C.byref(FcParams(0, 0, -128, 127)), C.byref(quant), dims[0], data_ptr,
                                              dims[1], data_ptr, None, dims[2], out_ptr)
    del keep
    assert status == expected
