"""The anomaly score's arithmetic, shared by code generation (the C constants) and verification (the reference).

Score of a clip = mean over its vectors and values of (real reconstruction - real input)^2, with
real = scale x (q - zero_point) for the network's int8 input (the features) and int8 output. Computed exactly in
integers: both scales are expressed on a common grid g = max(input_scale, output_scale) / 2^12 as integer
multipliers m = round(scale / g) (relative error below 2^-13), each difference
d = (q_out - zp_out) x m_out - (q_in - zp_in) x m_in is an integer, and acc = sum d^2 is accumulated in int64 with no
rounding at all, so the C engine (mf_anomaly_accumulate_s8), QEMU and this reference agree byte for byte whatever
the order of summation. The real score is acc x g^2 / values. The decision is taken on the integer:
anomalous when acc > threshold_acc = floor(threshold x values / g^2), the same as score > threshold up to the
rounding of that one conversion.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

GRID_BITS = 12
MAX_MULTIPLIER = 1 << GRID_BITS  # = MF_ANOMALY_MAX_MULTIPLIER
MAX_VALUES = 1 << 19  # values per clip that cannot overflow the int64 accumulator (each term < 2^44)


@dataclass(frozen=True)
class Grid:
    grid: float            # g, real units per integer step
    input_zp: int
    output_zp: int
    input_multiplier: int
    output_multiplier: int


def grid(input_scale: float, input_zp: int, output_scale: float, output_zp: int) -> Grid:
    g = max(input_scale, output_scale) / MAX_MULTIPLIER
    return Grid(g, int(input_zp), int(output_zp), max(1, round(input_scale / g)), max(1, round(output_scale / g)))


def accumulate(q_in: np.ndarray, q_out: np.ndarray, params: Grid) -> np.ndarray:
    """int64 [clips]: sum of squared grid differences over every axis but the first (int8 arrays, same shape)."""
    if q_in.shape != q_out.shape:
        raise ValueError(f"input {q_in.shape} and output {q_out.shape} differ")
    diff = ((q_out.astype(np.int64) - params.output_zp) * params.output_multiplier
            - (q_in.astype(np.int64) - params.input_zp) * params.input_multiplier)
    return (diff * diff).reshape(len(diff), -1).sum(axis=1)


def score(acc: np.ndarray | int, values: int, params: Grid) -> np.ndarray:
    """The mean squared error in real units (float64)."""
    return np.asarray(acc, dtype=np.float64) * (params.grid ** 2) / values


def threshold_acc(threshold: float, values: int, params: Grid) -> int:
    """The integer the accumulator is compared with (acc > threshold_acc: anomalous), clamped to int64."""
    return min(int(math.floor(threshold * values / params.grid ** 2)), 2**63 - 1)
