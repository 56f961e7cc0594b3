"""Pooling against com.microsoft QLinearAveragePool / QLinearGlobalAveragePool and ONNX MaxPool (int8)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import mf_ort
from mf_check import check_op
from mf_engine import MODES
from strategies import activation_scales, activations, int8_array, seeds, zero_points


@st.composite
def pool_cases(draw, full_window=False):
    k_h, k_w = draw(st.integers(1, 7)), draw(st.integers(1, 7))
    if full_window:  # ORT computes this case with the global average pool arithmetic
        pads = (0, 0, 0, 0)
        h, w = k_h, k_w
    else:
        pads = (draw(st.integers(0, k_h - 1)), draw(st.integers(0, k_w - 1)), draw(st.integers(0, k_h - 1)),
                draw(st.integers(0, k_w - 1)))
        h = draw(st.integers(max(1, k_h - pads[0] - pads[2]), max(1, k_h - pads[0] - pads[2]) + 10))
        w = draw(st.integers(max(1, k_w - pads[1] - pads[3]), max(1, k_w - pads[1] - pads[3]) + 10))
    xs = draw(activation_scales)
    ys = draw(st.one_of(st.floats(-3, 3).map(lambda e: float(np.float32(xs * 2.0**e))), activation_scales))
    assume(2.0**-6 <= xs / ys <= 2.0**6)  # ORT rejects global-pool scales outside [2^-32, 256)
    return dict(kernel=(k_h, k_w), stride=(draw(st.integers(1, 3)), draw(st.integers(1, 3))), pads=pads, h=h, w=w,
                c=draw(st.integers(1, 12)), include_pad=draw(st.booleans()), xs=xs,
                ys=ys, xzp=draw(zero_points),
                yzp=draw(zero_points), act=draw(activations()), seed=draw(seeds))


def _run_avgpool(engine, case, optimize=True):
    rng = np.random.default_rng(case["seed"])
    x = int8_array(rng, (1, case["c"], case["h"], case["w"]))
    ref = mf_ort.qlinear_avgpool(x, case["kernel"], case["stride"], case["pads"], case["include_pad"], case["xs"],
                                 case["xzp"], case["ys"], case["yzp"], act=case["act"], optimize=optimize)
    ours = engine.avgpool(x[0].transpose(1, 2, 0), case["kernel"], case["stride"], case["pads"],
                          case["include_pad"], case["xs"], case["xzp"], case["ys"], case["yzp"], act=case["act"])
    return ours, ref[0].transpose(1, 2, 0)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=120, deadline=None)
@given(case=pool_cases())
def test_avgpool_matches_qlinearaveragepool(engine_libs, mode, case):
    ours, ref = _run_avgpool(engine_libs[mode], case)
    check_op("QLinearAveragePool", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=40, deadline=None)
@given(case=pool_cases(full_window=True))
def test_avgpool_full_window_matches_qlinearaveragepool(engine_libs, mode, case):
    ours, ref = _run_avgpool(engine_libs[mode], case)
    check_op("QLinearAveragePool (global)", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=80, deadline=None)
@given(h=st.integers(1, 16), w=st.integers(1, 16), c=st.integers(1, 24), xs=activation_scales,
       ratio=st.floats(-3, 3), xzp=zero_points, yzp=zero_points, act=activations(), seed=seeds)
def test_global_avgpool_matches_qlinearglobalaveragepool(engine_libs, mode, h, w, c, xs, ratio, xzp, yzp, act, seed):
    ys = float(np.float32(xs * 2.0**ratio))
    x = int8_array(np.random.default_rng(seed), (1, c, h, w))
    ref = mf_ort.qlinear_global_avgpool(x, xs, xzp, ys, yzp, act=act)
    ours = engine_libs[mode].global_avgpool(x[0].transpose(1, 2, 0), xs, xzp, ys, yzp, act=act)
    check_op("QLinearGlobalAveragePool", mode, ours, ref.reshape(-1))


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, deadline=None)
@given(case=pool_cases())
def test_maxpool_matches_onnx_maxpool(engine_libs, mode, case):
    rng = np.random.default_rng(case["seed"])
    x = int8_array(rng, (1, case["c"], case["h"], case["w"]))
    ref = mf_ort.maxpool(x, case["kernel"], case["stride"], case["pads"], act=case["act"])
    ours = engine_libs[mode].maxpool(x[0].transpose(1, 2, 0), case["kernel"], case["stride"], case["pads"],
                                     act=case["act"])
    check_op("MaxPool", mode, ours, ref[0].transpose(1, 2, 0))


def test_avgpool_fixed_mode_rarely_off_by_one(fixed_engine):
    case = dict(kernel=(3, 3), stride=(2, 2), pads=(1, 1, 1, 1), h=16, w=16, c=16, include_pad=False, xs=0.0213,
                ys=0.0198, xzp=-6, yzp=-4, act=(-128, 127), seed=4)
    ours, ref = _run_avgpool(fixed_engine, case)
    assert check_op("QLinearAveragePool (realistic)", "fixed", ours, ref) / ref.size < 0.05


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("fill", [-128, 127, None])
def test_global_avgpool_more_than_256_pixels(engine_libs, mode, fill):
    """The SIMD path sums 4 channels in int16 lanes, flushed every 256 pixels: 17 x 19 pixels of extreme values."""
    rng = np.random.default_rng(7)
    x = int8_array(rng, (1, 7, 17, 19)) if fill is None else np.full((1, 7, 17, 19), fill, dtype=np.int8)
    ref = mf_ort.qlinear_global_avgpool(x, 0.05, -128, 0.01, 5)
    ours = engine_libs[mode].global_avgpool(x[0].transpose(1, 2, 0), 0.05, -128, 0.01, 5)
    check_op("QLinearGlobalAveragePool (> 256 pixels)", mode, ours, ref.reshape(-1))
