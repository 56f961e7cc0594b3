"""The integer front end's spectrum stage, vectorised over frames (numpy int64, exact): window and block
normalisation, the complex radix-2 FFT of M = N/2 points and the real split to the power spectrum P[0..M].
Steps 1-4 of the algorithm in mcuforge/audio/tables.py; engine_c/src/frontend/mf_frontend.c does the same
operations frame by frame, so every intermediate value is identical."""
from __future__ import annotations

import numpy as np

from mcuforge.audio.tables import POWER_SHIFT, FrontendTables


def bit_length(values: np.ndarray) -> np.ndarray:
    """Number of significant bits of non-negative int64 values below 2^62 (0 for 0), exactly."""
    values = np.asarray(values, dtype=np.int64)
    _, exponent = np.frexp(values.astype(np.float64))
    exponent = exponent.astype(np.int64)  # the float may have rounded up to the next power of two: correct it
    too_big = (exponent > 0) & ((values >> np.maximum(exponent - 1, 0)) == 0)
    return exponent - too_big


def round_shift(values: np.ndarray, shift: int) -> np.ndarray:
    """(values + 2^(shift-1)) >> shift: rounding half up, as the C front end."""
    return (values + (1 << (shift - 1))) >> shift


def normalise(frames: np.ndarray, tables: FrontendTables) -> tuple[np.ndarray, np.ndarray]:
    """int16 frames [F, W] -> (windowed and block-normalised x [F, W] int64, the shift s [F])."""
    v = frames.astype(np.int64) * tables.window.astype(np.int64)
    ored = np.bitwise_or.reduce(v ^ (v >> 63), axis=1)  # |v|, or |v| - 1 for v < 0 (one instruction in C)
    shift = np.where(ored == 0, 0, tables.headroom_bits - bit_length(ored))
    up = np.maximum(shift, 0)[:, None]
    down = np.maximum(-shift, 1)[:, None]
    rounded = (v + (np.int64(1) << (down - 1))) >> down
    return np.where(shift[:, None] >= 0, v << up, rounded), shift


def _twiddle_mul(br, bi, wr2, wi2):
    """mul_q31: (2 b w) >> 32 on each part, rounded down (the C takes the high word of a 64-bit multiply-accumulate);
    wr2, wi2 are the doubled twiddles (2 b w = b (2 w), the same integers)."""
    real = br * wr2
    real -= bi * wi2
    real >>= 32
    imag = br * wi2
    imag += bi * wr2
    imag >>= 32
    return real, imag


def complex_fft(zr: np.ndarray, zi: np.ndarray, tables: FrontendTables) -> tuple[np.ndarray, np.ndarray]:
    """Radix-2 decimation in time over the first axis (M points x frames; natural order in and out). Frames are the
    last axis so that every gather and slice moves whole contiguous rows."""
    half, frames = zr.shape
    zr = zr[tables.bitrev.astype(np.intp)]
    zi = zi[tables.bitrev.astype(np.intp)]
    twiddle2 = 2 * tables.twiddle.astype(np.int64)
    size = 2
    while size <= half:
        step = tables.fft_size // size  # W_M^j = W_N^(2j): index j * 2M / size
        w = twiddle2[np.arange(1, size // 2) * step]
        zr = zr.reshape(half // size, size, frames)
        zi = zi.reshape(half // size, size, frames)
        ar, ai = zr[:, :size // 2], zi[:, :size // 2]
        tr, ti = zr[:, size // 2:].copy(), zi[:, size // 2:].copy()  # twiddle index 0: w = 1 exactly
        if size > 2:
            tr[:, 1:], ti[:, 1:] = _twiddle_mul(tr[:, 1:], ti[:, 1:], w[:, 0, None], w[:, 1, None])
        zr = np.concatenate([ar + tr, ar - tr], axis=1).reshape(half, frames)
        zi = np.concatenate([ai + ti, ai - ti], axis=1).reshape(half, frames)
        size *= 2
    return zr, zi


def power_spectrum(frames: np.ndarray, tables: FrontendTables) -> tuple[np.ndarray, np.ndarray]:
    """int16 frames [F, W] -> (P [M + 1, F] int64 holding uint32 values, the normalisation shift s [F])."""
    x, shift = normalise(frames, tables)
    count, width = x.shape
    half = tables.half
    padded = np.zeros((tables.fft_size, count), dtype=np.int64)
    padded[:width] = x.T
    zr, zi = complex_fft(padded[0::2], padded[1::2], tables)
    k = np.arange(half + 1)
    a_index, b_index = k % half, (half - k) % half
    ar, ai = zr[a_index], zi[a_index]
    br, bi = zr[b_index], -zi[b_index]
    sr, si = ar + br, ai + bi
    dr, di = ar - br, ai - bi
    wr2, wi2 = 2 * tables.twiddle[:, 0, None].astype(np.int64), 2 * tables.twiddle[:, 1, None].astype(np.int64)
    tr, ti = _twiddle_mul(di, -dr, wr2, wi2)  # W_N^k * (-i D)
    xr, xi = sr + tr, si + ti
    return (xr * xr + xi * xi) >> POWER_SHIFT, shift
