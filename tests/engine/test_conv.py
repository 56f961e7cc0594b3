"""Convolutions (general, 1x1, depthwise) against ONNX Runtime's QLinearConv."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mf_ort
from mf_check import check_op
from mf_engine import MODES, Conv
from strategies import activation_scales, activations, int8_array, output_scales, per_channel_scales, seeds, zero_points
from mcuforge.ir.quant import float_multiplier

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])


@st.composite
def conv_cases(draw, depthwise=False, pointwise=False):
    k_h = 1 if pointwise else draw(st.integers(1, 7))
    k_w = 1 if pointwise else draw(st.integers(1, 7))
    dil = (1, 1) if pointwise else (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    pads = (0, 0, 0, 0) if pointwise else tuple(draw(st.integers(0, 3)) for _ in range(4))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    span_h = dil[0] * (k_h - 1) + 1
    span_w = dil[1] * (k_w - 1) + 1
    h = draw(st.integers(max(1, span_h - pads[0] - pads[2]), max(1, span_h - pads[0] - pads[2]) + 9))
    w = draw(st.integers(max(1, span_w - pads[1] - pads[3]), max(1, span_w - pads[1] - pads[3]) + 9))
    c_in = draw(st.integers(1, 12))
    c_out = c_in if depthwise else draw(st.integers(1, 12))
    return dict(k=(k_h, k_w), dil=dil, pads=pads, stride=stride, h=h, w=w, c_in=c_in, c_out=c_out,
                xs=draw(activation_scales), ys=draw(output_scales), xzp=draw(zero_points), yzp=draw(zero_points),
                w_exp=draw(st.sampled_from([(-14, -10), (-10, -4), (-8, 0), (-16, 0)])),
                bias=draw(st.sampled_from(["none", "small", "large"])), act=draw(activations()), seed=draw(seeds))


def run_conv_case(engine, case, kind):
    rng = np.random.default_rng(case["seed"])
    c_in, c_out = case["c_in"], case["c_out"]
    k_h, k_w = case["k"]
    group = c_in if kind == "depthwise" else 1
    x = int8_array(rng, (1, c_in, case["h"], case["w"]))
    w = int8_array(rng, (c_out, c_in // group, k_h, k_w), -127, 127)
    ws = per_channel_scales(rng, c_out, *case["w_exp"])
    bias = {"none": None, "small": rng.integers(-2000, 2000, c_out),
            "large": rng.integers(-(2**24), 2**24, c_out)}[case["bias"]]
    bias = None if bias is None else bias.astype(np.int32)
    ref = mf_ort.qlinear_conv(x, case["xs"], case["xzp"], w, ws, bias, case["ys"], case["yzp"], case["stride"],
                              case["pads"], case["dil"], group=group, act=case["act"])
    w_engine = w[:, 0].transpose(1, 2, 0) if kind == "depthwise" else w.transpose(0, 2, 3, 1)
    ours = engine.conv2d(x[0].transpose(1, 2, 0), w_engine, bias, float_multiplier(case["xs"], ws, case["ys"]),
                         case["xzp"], case["yzp"], Conv(case["stride"], case["dil"], case["pads"]), act=case["act"],
                         kind=kind)
    return ours, ref[0].transpose(1, 2, 0)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=150, **SETTINGS)
@given(case=conv_cases())
def test_conv2d_matches_qlinearconv(engine_libs, mode, case):
    ours, ref = run_conv_case(engine_libs[mode], case, "general")
    check_op("QLinearConv", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, **SETTINGS)
@given(case=conv_cases(pointwise=True))
def test_conv2d_1x1_matches_qlinearconv(engine_libs, mode, case):
    ours, ref = run_conv_case(engine_libs[mode], case, "1x1")
    check_op("QLinearConv 1x1", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=120, **SETTINGS)
@given(case=conv_cases(depthwise=True))
def test_depthwise_conv2d_matches_qlinearconv(engine_libs, mode, case):
    ours, ref = run_conv_case(engine_libs[mode], case, "depthwise")
    check_op("QLinearConv depthwise", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=40, **SETTINGS)
@given(case=conv_cases(depthwise=True), c=st.sampled_from([4, 8, 13, 16, 24, 32]), k=st.sampled_from([3, 5]),
       stride=st.integers(1, 2), dil=st.sampled_from([1, 2]))
def test_depthwise_conv2d_simd_shapes(engine_libs, mode, case, c, k, stride, dil):
    """Channel counts with whole 4-channel words (and a tail), square 3x3 / 5x5 windows with the interior
    pixels the unrolled path takes."""
    span = dil * (k - 1) + 1
    case.update(k=(k, k), dil=(dil, dil), stride=(stride, stride), c_in=c, c_out=c, h=max(case["h"], span + 4),
                w=max(case["w"], span + 4))
    ours, ref = run_conv_case(engine_libs[mode], case, "depthwise")
    check_op("QLinearConv depthwise (SIMD shapes)", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=25, **SETTINGS)
@given(case=conv_cases(), c_in=st.sampled_from([3, 4, 8, 13, 16]), k=st.sampled_from([(3, 3), (5, 5), (3, 7)]),
       stride=st.integers(1, 2), dil=st.sampled_from([1, 2]))
def test_conv2d_large_window_shapes(engine_libs, mode, case, c_in, k, stride, dil):
    """Windows over 64 values (the direct 2-pixel x 2-channel blocks): whole 4-channel words and tails, border
    pixels whose pair has other taps, odd widths and channel counts."""
    span_h, span_w = dil * (k[0] - 1) + 1, dil * (k[1] - 1) + 1
    case.update(k=k, dil=(dil, dil), stride=(stride, stride), c_in=c_in, h=max(case["h"], span_h),
                w=max(case["w"], span_w))
    ours, ref = run_conv_case(engine_libs[mode], case, "general")
    check_op("QLinearConv (large windows)", mode, ours, ref)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["general", "depthwise"])
def test_realistic_layer(engine_libs, mode, kind):
    """A MobileNet-like layer (few saturated outputs): exact in float mode; fixed mode differs from ORT by
    1 LSB in < 5% of the values."""
    case = dict(k=(3, 3), dil=(1, 1), pads=(1, 1, 1, 1), stride=(1, 1), h=16, w=16, c_in=16, c_out=16,
                xs=0.02, ys=0.05, xzp=-5, yzp=3, w_exp=(-11, -9) if kind == "general" else (-9, -6), bias="small",
                act=(-128, 127), seed=1)
    ours, ref = run_conv_case(engine_libs[mode], case, kind)
    assert np.mean((ref == -128) | (ref == 127)) < 0.05  # few saturated outputs: the rounding is exercised
    n_diff = check_op("QLinearConv (realistic)", mode, ours, ref)
    assert n_diff / ref.size < 0.05


def test_conv2d_1x1_rejects_other_shapes(float_engine):
    x = np.zeros((4, 4, 2), np.int8)
    w = np.zeros((2, 3, 3, 2), np.int8)
    with pytest.raises(AssertionError, match="returned -2"):
        float_engine.conv2d(x, w, None, np.ones(2, np.float32), 0, 0, Conv(pads=(1, 1, 1, 1)), kind="1x1")
