"""Softmax against com.microsoft QLinearSoftmax, argmax against ONNX ArgMax."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mf_ort
from mf_check import check_op
from mf_engine import MODES
from strategies import activation_scales, int8_array, seeds, zero_points
from mcuforge.ir.quant import softmax_reference


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


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 1000), spread=st.sampled_from([255, 3, 0]), seed=seeds)
def test_argmax_matches_onnx_argmax(engine_libs, mode, size, spread, seed):
    rng = np.random.default_rng(seed)
    lo = int(rng.integers(-128, 128 - spread))
    x = int8_array(rng, (1, size), lo, lo + spread)  # small spreads force ties: the first index wins
    ref = int(mf_ort.argmax(x)[0])
    assert engine_libs[mode].argmax(x[0]) == ref
