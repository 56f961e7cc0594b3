"""Requantization helpers over their whole range, against exact Python references (ints and fractions)."""

from __future__ import annotations

import itertools
import math
import subprocess
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mcuforge.ir import quant as engine_quant

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
SHIFTS = range(-31, 31)
MULTIPLIERS = [0, 1, 2**30 - 1, 2**30, 2**30 + 1, 1518500250, 2**31 - 2, 2**31 - 1, -(2**30), INT32_MIN]
ACCUMULATORS = sorted({0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -255, 2**15, -(2**15), 2**20 + 7, -(2**20) - 7,
                       2**24 - 1, -(2**24) + 1, 2**30, -(2**30), INT32_MAX, INT32_MAX - 1, INT32_MIN, INT32_MIN + 1,
                       1234567, -7654321, 99999999, -99999999})


def exact_mbqm(x: int, multiplier: int, shift: int) -> int:
    """TFLite's MultiplyByQuantizedMultiplier, written from its definition with exact rationals."""
    left, right = max(shift, 0), max(-shift, 0)
    shifted = min(max(x * 2**left, INT32_MIN), INT32_MAX)  # saturating left shift
    if shifted == INT32_MIN and multiplier == INT32_MIN:
        high = INT32_MAX
    else:  # SaturatingRoundingDoublingHighMul rounds half up: floor(a * b / 2^31 + 1/2)
        high = math.floor(Fraction(shifted * multiplier, 2**31) + Fraction(1, 2))
    q = Fraction(high, 2**right)  # RoundingDivideByPOT: nearest, ties away from zero
    return int(math.copysign(math.floor(abs(q) + Fraction(1, 2)), q)) if q else 0


def exact_requantize_float(acc: int, scale: float, zp: int, qmin: int, qmax: int) -> int:
    """float32 product (IEEE, round to nearest), clamp, round half to even (Python's round on Fraction)."""
    with np.errstate(over="ignore"):
        v = float(np.float32(np.float32(acc) * np.float32(scale)))  # may be +-inf: the clamp handles it
    v = min(max(v, float(qmin - zp)), float(qmax - zp))
    return round(Fraction(v)) + zp


def test_fixed_multiply_full_grid(fixed_engine):
    """Every shift in [-31, 30], multipliers at the Q31 boundaries, accumulators at the int32 limits."""
    lib = fixed_engine.lib
    grid = list(itertools.product(ACCUMULATORS, MULTIPLIERS, SHIFTS))
    expected = [exact_mbqm(x, m, s) for x, m, s in grid]
    ours = [lib.mf_multiply_by_quantized_multiplier(x, m, s) for x, m, s in grid]
    assert ours == expected
    x, m, s = (np.array(v, dtype=np.int64) for v in zip(*grid))
    assert engine_quant.multiply_by_quantized_multiplier(x, m, s).tolist() == expected


@settings(max_examples=400, deadline=None)
@given(x=st.integers(INT32_MIN, INT32_MAX), multiplier=st.integers(2**30, INT32_MAX), shift=st.integers(-31, 30),
       zp=st.integers(-128, 127), bounds=st.tuples(st.integers(-128, 127), st.integers(-128, 127)).map(sorted))
def test_fixed_requantize_random(fixed_engine, x, multiplier, shift, zp, bounds):
    qmin, qmax = bounds
    expected = min(max(exact_mbqm(x, multiplier, shift) + zp, qmin), qmax)
    assert fixed_engine.lib.mf_requantize_fixed(x, multiplier, shift, zp, qmin, qmax) == expected
    assert int(engine_quant.requantize_fixed(x, multiplier, shift, zp, qmin, qmax)) == expected


def test_fixed_rounding_ties():
    """Known values: 2^30 is 0.5 in Q31; ties go away from zero in RoundingDivideByPOT."""
    assert exact_mbqm(3, 2**30, 0) == 2  # SRDHM(3, 0.5) = 1.5 -> 2 (half up)
    assert exact_mbqm(-3, 2**30, 0) == -1  # -1.5 -> -1 (half up)
    assert exact_mbqm(5, 2**30, -1) == 2  # SRDHM(5, 0.5) = 2.5 -> 3, then 3 / 2 = 1.5 -> 2: two roundings
    assert engine_quant.rounding_divide_by_pot(np.array([5, -5, 6, -6, 7, -7]), 1).tolist() == [3, -3, 3, -3, 4, -4]


@settings(max_examples=400, deadline=None)
@given(acc=st.one_of(st.integers(INT32_MIN, INT32_MAX), st.sampled_from(ACCUMULATORS)),
       exponent=st.floats(-45, 20), zp=st.integers(-128, 127),
       bounds=st.tuples(st.integers(-128, 127), st.integers(-128, 127)).map(sorted))
def test_float_requantize_random(float_engine, acc, exponent, zp, bounds):
    scale = float(np.float32(2.0**exponent))
    qmin, qmax = bounds
    expected = exact_requantize_float(acc, scale, zp, qmin, qmax)
    assert float_engine.lib.mf_requantize_float(acc, scale, zp, qmin, qmax) == expected
    assert int(engine_quant.requantize_float(acc, scale, zp, qmin, qmax)) == expected


def test_float_requantize_ties_to_even(float_engine):
    """Every half-integer in the int8 range: ties round to the even neighbour, like MLAS."""
    lib = float_engine.lib
    for k in range(-300, 300):
        acc = 2 * k + 1  # acc * 0.5 = k + 0.5 exactly
        expected = min(max(round(Fraction(acc, 2)), -128), 127)
        assert lib.mf_requantize_float(acc, 0.5, 0, -128, 127) == expected, acc


def test_float_requantize_extremes(float_engine):
    lib = float_engine.lib
    for acc, scale, zp in itertools.product([INT32_MIN, INT32_MAX, 0, -1, 1], [1e-30, 2.0**-31, 1.0, 1e10, 3e38],
                                            [-128, 0, 127]):
        assert lib.mf_requantize_float(acc, scale, zp, -128, 127) == exact_requantize_float(acc, scale, zp, -128, 127)


@pytest.mark.parametrize("real, expected", [(0.0, (0, 0)), (1.0, (2**30, 1)), (0.5, (2**30, 0)),
                                            (0.75, (3 * 2**29, 0)), (2.0**-31, (2**30, -30)),
                                            (2.0**-40, (0, 0)), (1.0 - 2.0**-40, (2**30, 1)),
                                            (2.0**40, (INT32_MAX, 30))])
def test_quantize_multiplier_known_values(real, expected):
    assert engine_quant.quantize_multiplier(real) == expected


@settings(max_examples=300, deadline=None)
@given(exponent=st.floats(-31, 29), mantissa=st.floats(0.5, 1.0, exclude_max=True))
def test_quantize_multiplier_is_nearest_q31(exponent, mantissa):
    real = math.ldexp(mantissa, int(exponent))
    m, s = engine_quant.quantize_multiplier(real)
    assert 2**30 <= m <= INT32_MAX and -31 <= s <= 30
    assert abs(Fraction(m) * Fraction(2) ** (s - 31) - Fraction(real)) <= Fraction(2) ** (s - 32)


def test_float_multiplier_order_matches_ort():
    """(x_scale * w_scale) / y_scale in float32 — not x_scale * (w_scale / y_scale)."""
    x, w, y = np.float32(0.1), np.float32([0.3, 0.7, 1e-3]), np.float32(0.7)
    expected = ((x * w).astype(np.float32) / y).astype(np.float32)
    got = engine_quant.float_multiplier(x, w, y)
    assert got.dtype == np.float32 and np.array_equal(got, expected)


REQUANT_COMPARE = Path(__file__).with_name("requant_compare.c")
ENGINE_DIR = Path(__file__).resolve().parents[2] / "engine_c"


@pytest.mark.parametrize("flags, count", [(("-O2",), 60_000_000),
                                          (("-O1", "-fsanitize=undefined", "-fno-sanitize-recover=all"), 3_000_000)],
                         ids=["O2", "ubsan"])
def test_inline_fixed_requant_matches_two_step_reference(tmp_path, flags, count):
    """mf_arith.h's one-rounding mf_mbqm / mf_requant_fixed against TFLite's two-step arithmetic (the engine's
    previous code, copied into requant_compare.c): every pair of edge values at every shift, then `count` random
    inputs (full int32, Q31 multipliers, small values, exact ties, edges)."""
    exe = tmp_path / "requant_compare"
    subprocess.run(["gcc", *flags, "-Wall", "-Wextra", "-Werror", f"-I{ENGINE_DIR / 'include'}",
                    f"-I{ENGINE_DIR / 'src'}", "-DMF_REQUANT_MODE=MF_REQUANT_FIXED", str(REQUANT_COMPARE), "-o",
                    str(exe)], check=True)
    out = subprocess.run([str(exe), str(count), "15"], capture_output=True, text=True, timeout=600)
    assert out.returncode == 0 and out.stdout.startswith("ok"), out.stdout + out.stderr
