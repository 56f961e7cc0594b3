"""Softmax against com.microsoft QLinearSoftmax, argmax against ONNX ArgMax."""

from __future__ import annotations

import ctypes as C

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mf_ort
from mf_check import check_op
from mf_engine import MF_ARG_ERROR, MF_OK, MODES, Dims, SoftmaxParams, SoftmaxTflmParams
from strategies import activation_scales, int8_array, seeds, zero_points
from mcuforge.ir.quant import softmax_exp_table, softmax_params, softmax_reference


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=100, deadline=None)
@given(rows=st.integers(1, 4), depth=st.integers(1, 300), xs=activation_scales,
       ys=st.sampled_from([1 / 256, 1 / 255, 1 / 128, 0.01, 0.003]), yzp=zero_points,
       spread=st.sampled_from([255, 40, 8]), seed=seeds)
def test_softmax_matches_qlinearsoftmax(engine_libs, mode, rows, depth, xs, ys, yzp, spread, seed):
    """Exact against the documented float32 arithmetic; within 1 LSB of ORT, whose MLAS kernel depends on the
    host CPU (AVX-512 tree sums and fused multiply-adds are not reproducible on a microcontroller)."""
    rng = np.random.default_rng(seed)
    lo = int(rng.integers(-128, 128 - min(spread, 255)))
    x = int8_array(rng, (rows, depth), lo, min(127, lo + spread))
    ours = engine_libs[mode].softmax(x, xs, ys, yzp)
    check_op("softmax vs numpy model", mode, ours, softmax_reference(x, xs, ys, yzp), tolerance=0)
    ref = mf_ort.qlinear_softmax(x, xs, 0, ys, yzp)
    check_op("QLinearSoftmax (+-1, see doc)", mode, ours, ref, tolerance=1)


def test_softmax_standard_output_quantization(float_engine):
    """y_scale 1/256, zero point -128 (the usual softmax output): a certain class saturates to 127."""
    x = np.array([[127, -128, -128, -128], [10, 11, 12, 13]], dtype=np.int8)
    ref = mf_ort.qlinear_softmax(x, 0.5, 0, 1 / 256, -128)
    ours = float_engine.softmax(x, 0.5, 1 / 256, -128)
    assert ours[0, 0] == 127 and ref[0, 0] == 127
    check_op("QLinearSoftmax (+-1, see doc)", "float", ours, ref, tolerance=1)


# dims (h, w, c): softmax over c for each of the h * w rows; the first two are valid calls
SOFTMAX_DIMS = [
    ((2, 1, 16), MF_OK),
    ((2, 2, 8), MF_OK),
    ((0, 1, 16), MF_ARG_ERROR),  # no rows
    ((2, 0, 16), MF_ARG_ERROR),  # no rows
    ((2, 1, 0), MF_ARG_ERROR),   # empty rows
    (None, MF_ARG_ERROR),        # NULL dims
]


@pytest.mark.parametrize("kernel", ["mf_softmax_s8", "mf_softmax_tflm_s8"])
@pytest.mark.parametrize("dims, expected", SOFTMAX_DIMS)
def test_softmax_checks_dims(engine, kernel, dims, expected):
    x = np.zeros(32, dtype=np.int8)  # large enough for any shape above
    out = np.zeros(32, dtype=np.int8)
    table = np.ascontiguousarray(softmax_exp_table(0.1, 16), dtype=np.float32)
    tflm = softmax_params(0.1)
    params = {"mf_softmax_s8": SoftmaxParams(table.ctypes.data_as(C.POINTER(C.c_float)), 256.0, -128),
              "mf_softmax_tflm_s8": SoftmaxTflmParams(tflm["input_multiplier"], tflm["input_left_shift"],
                                                      tflm["diff_min"])}[kernel]
    status = getattr(engine.lib, kernel)(C.byref(params), None if dims is None else C.byref(Dims(*dims)),
                                         x.ctypes.data_as(C.POINTER(C.c_int8)),
                                         out.ctypes.data_as(C.POINTER(C.c_int8)))
    assert status == expected


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 1000), spread=st.sampled_from([255, 3, 0]), seed=seeds)
def test_argmax_matches_onnx_argmax(engine_libs, mode, size, spread, seed):
    rng = np.random.default_rng(seed)
    lo = int(rng.integers(-128, 128 - spread))
    x = int8_array(rng, (1, size), lo, lo + spread)  # small spreads force ties: the first index wins
    ref = int(mf_ort.argmax(x)[0])
    assert engine_libs[mode].argmax(x[0]) == ref
