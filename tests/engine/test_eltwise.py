"""Add and concat against com.microsoft QLinearAdd and QLinearConcat."""

from __future__ import annotations

import ctypes as C

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import mf_ort
from mf_check import check_op
from mf_engine import MF_ARG_ERROR, MF_OK, MODES, AddParams, ConcatInput, ConcatParams, Dims, Requant
from strategies import activation_scales, activations, int8_array, seeds, zero_points


@st.composite
def add_cases(draw):
    sa = draw(activation_scales)
    ratio = st.floats(-6, 6).map(lambda e: 2.0**e)
    return dict(shape=(1, draw(st.integers(1, 16)), draw(st.integers(1, 9)), draw(st.integers(1, 9))),
                sa=sa, sb=float(np.float32(sa * draw(ratio))), sy=float(np.float32(sa * draw(ratio))),
                zpa=draw(zero_points), zpb=draw(zero_points), zpy=draw(zero_points), act=draw(activations()),
                seed=draw(seeds))


def _run_add(engine, case, optimize=True):
    rng = np.random.default_rng(case["seed"])
    a = int8_array(rng, case["shape"])
    b = int8_array(rng, case["shape"])
    ref = mf_ort.qlinear_add(a, case["sa"], case["zpa"], b, case["sb"], case["zpb"], case["sy"], case["zpy"],
                             act=case["act"], optimize=optimize)
    # element-wise: the layout does not matter, but feed NHWC like the engine would get it
    ours = engine.add(a[0].transpose(1, 2, 0), b[0].transpose(1, 2, 0), case["sa"], case["zpa"], case["sb"],
                      case["zpb"], case["sy"], case["zpy"], act=case["act"])
    return ours, ref[0].transpose(1, 2, 0)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=120, deadline=None)
@given(case=add_cases())
def test_add_matches_qlinearadd(engine_libs, mode, case):
    ours, ref = _run_add(engine_libs[mode], case)
    check_op("QLinearAdd", mode, ours, ref)


def test_add_fixed_mode_rarely_off_by_one(fixed_engine):
    case = dict(shape=(1, 32, 16, 16), sa=0.031, sb=0.047, sy=0.06, zpa=-3, zpb=11, zpy=-20, act=(-128, 127), seed=5)
    ours, ref = _run_add(fixed_engine, case)
    assert check_op("QLinearAdd (realistic)", "fixed", ours, ref) / ref.size < 0.05


@st.composite
def concat_cases(draw):
    n = draw(st.integers(1, 4))
    ys = draw(activation_scales)
    same = st.booleans()
    scales, zps = [], []
    for _ in range(n):
        if draw(same):  # exercise ORT's plain-copy path too
            scales.append(ys)
            zps.append(None)
        else:
            scales.append(float(np.float32(ys * 2.0 ** draw(st.floats(-5, 5)))))
            zps.append(draw(zero_points))
    yzp = draw(zero_points)
    zps = [yzp if z is None else z for z in zps]
    return dict(h=draw(st.integers(1, 8)), w=draw(st.integers(1, 8)),
                channels=[draw(st.integers(1, 9)) for _ in range(n)], scales=scales, zps=zps, ys=ys, yzp=yzp,
                seed=draw(seeds))


def _run_concat(engine, case):
    rng = np.random.default_rng(case["seed"])
    xs = [int8_array(rng, (1, c, case["h"], case["w"])) for c in case["channels"]]
    ref = mf_ort.qlinear_concat(xs, case["scales"], case["zps"], case["ys"], case["yzp"], axis=1)
    ours = engine.concat([x[0].transpose(1, 2, 0) for x in xs], case["scales"], case["zps"], case["ys"], case["yzp"])
    return ours, ref[0].transpose(1, 2, 0)


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=80, deadline=None)
@given(case=concat_cases())
def test_concat_matches_qlinearconcat(engine_libs, mode, case):
    ours, ref = _run_concat(engine_libs[mode], case)
    check_op("QLinearConcat", mode, ours, ref)


def test_concat_fixed_mode_rarely_off_by_one(fixed_engine):
    case = dict(h=8, w=8, channels=[16, 24, 8], scales=[0.0213, 0.0347, 0.0518], zps=[-4, 9, 0], ys=0.0518, yzp=0, seed=2)
    ours, ref = _run_concat(fixed_engine, case)
    assert check_op("QLinearConcat (realistic)", "fixed", ours, ref) / ref.size < 0.05



# output dims (h, w, c) for two inputs of 3 and 5 channels; the first is a valid call
CONCAT_DIMS = [
    ((2, 2, 8), MF_OK),
    ((2, 2, 7), MF_ARG_ERROR),  # fewer channels than the inputs have
    ((2, 2, 9), MF_ARG_ERROR),  # more channels than the inputs have
    ((0, 2, 8), MF_ARG_ERROR),  # no pixels
    (None, MF_ARG_ERROR),       # NULL dims
]


@pytest.mark.parametrize("out_dims, expected", CONCAT_DIMS)
def test_concat_checks_dims(engine, out_dims, expected):
    data, out = np.zeros(64, dtype=np.int8), np.zeros(64, dtype=np.int8)  # large enough for any shape above
    data_ptr = data.ctypes.data_as(C.POINTER(C.c_int8))
    inputs = (ConcatInput * 2)(ConcatInput(data_ptr, 3, 0, 1.0, Requant(1.0, 2**30, 1)),
                               ConcatInput(data_ptr, 5, 0, 1.0, Requant(1.0, 2**30, 1)))
    status = engine.lib.mf_concat_s8(C.byref(ConcatParams(1.0, 0)), inputs, 2,
                                     None if out_dims is None else C.byref(Dims(*out_dims)),
                                     out.ctypes.data_as(C.POINTER(C.c_int8)))
    assert status == expected


NICE_SCALES = [0.5, 1.0, 2.0, 0.25, 0.75, 0.1, 0.3, 0.047, 0.052, 0.066, 0.02, 0.05]


@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=150, deadline=None)
@given(scales=st.tuples(*[st.sampled_from(NICE_SCALES)] * 3), zps=st.tuples(zero_points, zero_points, zero_points),
       seed=seeds)
def test_add_rounding_ties(engine_libs, mode, scales, zps, seed):
    """Decimal scales make many exact .5 ties: only the exact fused multiply-add sequence of MLAS survives."""
    case = dict(shape=(1, 4, 8, 8), sa=scales[0], sb=scales[1], sy=scales[2], zpa=zps[0], zpb=zps[1], zpy=zps[2],
                act=(-128, 127), seed=seed)
    ours, ref = _run_add(engine_libs[mode], case)
    check_op("QLinearAdd (rounding ties)", mode, ours, ref)


# (left_shift, input1 (multiplier, shift), input2, output, zero points, activation): TFLite's usual exponents (input
# 0 and < 0, output < 0: the kernel's hoisted path), a left shift and a zero output exponent (its general path),
# negative and extreme multipliers
ADD_FIXED_PARAMS = [
    (20, (2**30, 0), (1518500250, -1), (1300000000, -19), (0, 0, 0), (-128, 127)),
    (20, (1600000000, -3), (2**30, 0), (2**31 - 1, -12), (-128, 127, -5), (-20, 90)),
    (22, (2**30 + 1, -31), (2**31 - 1, -30), (2**30, -1), (3, -7, 127), (-128, 127)),
    (0, (2**30, 0), (2**30, 0), (2**30, -1), (100, -100, 0), (-128, 127)),
    (20, (-(2**30), -2), (-1518500250, 0), (1300000000, -17), (1, 2, 3), (0, 6)),
    (10, (2**30, 1), (2**30, -1), (2**30, 0), (0, 5, -3), (-128, 127)),
    (20, (2**30, 0), (2**30, -2), (1073741825, 0), (-1, 1, 0), (-128, 127)),
]


@pytest.mark.parametrize("left_shift, p1, p2, po, zps, act", ADD_FIXED_PARAMS)
def test_add_fixed_every_input_pair(fixed_engine, left_shift, p1, p2, po, zps, act):
    """All 65536 int8 pairs (+ a 3-element tail) against TFLite's arithmetic element by element (mcuforge.ir.quant):
    the four-per-word loop with hoisted rounding constants is bit for bit the general one."""
    from mcuforge.ir import quant as engine_quant

    grid = np.arange(-128, 128, dtype=np.int64)
    a = np.concatenate([np.repeat(grid, 256), [127, -128, 0]])
    b = np.concatenate([np.tile(grid, 256), [-128, 127, 0]])
    zp1, zp2, zpy = zps
    scaled = [engine_quant.multiply_by_quantized_multiplier((x - zp) * 2**left_shift, np.int64(m), np.int64(s))
              for x, zp, (m, s) in ((a, zp1, p1), (b, zp2, p2))]
    total = ((scaled[0] + scaled[1] + 2**31) % 2**32) - 2**31  # int32 wrap-around
    expected = np.clip(engine_quant.multiply_by_quantized_multiplier(total, np.int64(po[0]), np.int64(po[1])) + zpy,
                       *act)
    a8, b8 = a.astype(np.int8), b.astype(np.int8)
    out = np.zeros_like(a8)
    params = AddParams(zp1, zp2, zpy, 1.0, 1.0, 1.0, left_shift, Requant(0.0, *p1), Requant(0.0, *p2),
                       Requant(0.0, *po), *act)
    status = fixed_engine.lib.mf_add_s8(C.byref(params), a8.size, a8.ctypes.data_as(C.POINTER(C.c_int8)),
                                        b8.ctypes.data_as(C.POINTER(C.c_int8)), out.ctypes.data_as(C.POINTER(C.c_int8)))
    assert status == MF_OK
    np.testing.assert_array_equal(out, expected.astype(np.int8))
