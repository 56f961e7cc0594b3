"""Hypothesis strategies shared by the engine tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st

zero_points = st.integers(-128, 127)
seeds = st.integers(0, 2**32 - 1)


def log_uniform(lo_exp: float, hi_exp: float):
    """float32 values 2**e with e uniform in [lo_exp, hi_exp] (and a random mantissa)."""
    return st.floats(lo_exp, hi_exp).map(lambda e: float(np.float32(2.0**e)))


# Decimal scales (0.1, 0.05...) make exact rounding ties frequent, which tells rounding rules apart.
NICE_SCALES = [0.5, 1.0, 2.0, 0.25, 0.75, 0.1, 0.3, 0.047, 0.052, 0.066, 0.02, 0.05, 0.0039215686]
activation_scales = st.one_of(log_uniform(-12, 2), st.sampled_from(NICE_SCALES))
output_scales = st.one_of(log_uniform(-10, 4), st.sampled_from(NICE_SCALES))


@st.composite
def activations(draw, zp_strategy=zero_points):
    """(act_min, act_max): none, ReLU, ReLU6-like, or a random clip, in the quantized domain."""
    kind = draw(st.sampled_from(["none", "none", "relu", "relu6", "clip"]))
    if kind == "none":
        return (-128, 127)
    zp = draw(zp_strategy)
    if kind == "relu":
        return (zp, 127)
    if kind == "relu6":
        return (zp, min(127, zp + draw(st.integers(0, 255))))
    lo = draw(st.integers(-128, 127))
    return (lo, draw(st.integers(lo, 127)))


def int8_array(rng: np.random.Generator, shape, lo: int = -128, hi: int = 127) -> np.ndarray:
    return rng.integers(lo, hi + 1, size=shape, dtype=np.int16).astype(np.int8)


def per_channel_scales(rng: np.random.Generator, n: int, lo_exp: float, hi_exp: float) -> np.ndarray:
    return (2.0 ** rng.uniform(lo_exp, hi_exp, size=n)).astype(np.float32)
