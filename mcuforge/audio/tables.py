"""The integer front end's constant tables, computed once in Python and shared with the C front end (codegen emits
them as `const` arrays), so the reference and the device use the very same integers.

The algorithm, per frame of `window_samples` (W) PCM samples, FFT size N = 2M, L = log2(N):
  1. window:     v[n] = pcm[n] * window[n]            (window: periodic Hann, Q15, int16; |v| < 2^30)
  2. normalise:  s = T - bitlen(OR_n m[n]), m = v ^ (v >> 31) (|v|, or |v| - 1 for v < 0), T = 28 - L (block
                 floating point: the loudest sample gets T bits, so that every FFT value stays below 2^29
                 whatever the signal); x = v * 2^s if s >= 0, else
                 (v + 2^(-s-1)) >> -s (round half up). A silent frame (all v = 0) has s = 0.
  3. FFT:        z[m] = x[2m] + i x[2m+1], m < M (x zero-padded to N), bit-reversed, then log2(M) radix-2
                 decimation-in-time stages: t = w * b, a' = a + t, b' = a - t, where w * b is exact for w = 1
                 (twiddle index 0) and otherwise mul_q31(w, b): each of t's parts is (2 b_re w_re - 2 b_im w_im) >> 32
                 (resp. (2 b_re w_im + 2 b_im w_re) >> 32), a Q31 product rounded down (a bias of half an LSB on
                 values of up to 2^29), the high word of one 64-bit multiply-accumulate. w = W_N^(2j) from the
                 twiddle table (Q31, clamped to +-(2^31 - 1)).
  4. real split: for k = 0..M, A = Z[k mod M], B = conj Z[(M - k) mod M]: S = A + B, D = A - B,
                 2X[k] = S + mul_q31(W_N^k, -i D) (no exact case); P[k] = (Re^2 + Im^2) >> 27 (uint32).
  5. mel:        E[j] = sum_k P[k] * mel_weight[j, k] (weights Q15 <= 32768, uint64 accumulation; triangles on the
                 HTK mel scale with peak 1, like librosa's htk=True, norm=None).
  6. log:        l[j] = max(log2_q16(E[j]) - 2 s 65536 + log_offset, log_floor) in Q16 log2 units, where
                 log2_q16 = 65536 * exponent + a 256-segment table with linear interpolation, and log_offset
                 makes l = 65536 log2(E_real / E_ref), E_real the mel energy of |rfft(pcm / 32768 * hann)|^2 and
                 E_ref = (sum of the Hann window)^2 (a full-scale DC frame), log_floor = 65536 log2(log_floor).
  7. mfcc:       c[i] = (sum_j dct[i, j] * l[j] + 2^14) >> 15 (orthonormal DCT-II, Q15 int16).
  8. int8:       q = clamp(((v * multiplier + 2^(shift-1)) >> shift) + zero_point), v = l or c, multiplier/shift
                 the real factor ln(2) / (65536 scale) (so features are natural logs, as python_speech_features).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mcuforge.core.errors import McuforgeError

if TYPE_CHECKING:
    from schemas.frontend import FrontendConfig

Q15 = 32768
Q31 = 2 ** 31
Q16 = 65536
POWER_SHIFT = 27  # P = |2X|^2 >> 27: |2X| < 2^29 + rounding, so P < 2^32
LOG2_TABLE_BITS = 8
KIND_LOG_MEL = 0
KIND_MFCC = 1


class FrontendError(McuforgeError):
    """A front end setting or input the integer front end cannot handle."""


@dataclass(frozen=True)
class FrontendTables:
    """Everything the integer front end needs besides the PCM: the config's sizes and the constant tables."""

    kind: int  # KIND_LOG_MEL or KIND_MFCC
    clip_samples: int
    window_samples: int
    hop_samples: int
    num_frames: int
    fft_size: int
    mel_bins: int
    num_coeffs: int  # 0 for log_mel
    headroom_bits: int  # T
    window: np.ndarray  # int16 [W], Q15
    twiddle: np.ndarray  # int32 [M + 1, 2] (re, im) of W_N^k = exp(-2 pi i k / N), Q31, |.| <= 2^31 - 1
    bitrev: np.ndarray  # uint16 [M]
    mel_start: np.ndarray  # uint16 [mel_bins]: first FFT bin with a non-zero weight
    mel_len: np.ndarray  # uint16 [mel_bins]: number of bins (0 for an empty filter)
    mel_weights: np.ndarray  # uint16 [sum(mel_len)]: the non-zero runs, filter after filter, Q15
    log2_table: np.ndarray  # int32 [257]: 65536 log2(1 + i / 256)
    log_offset: int  # Q16
    log_floor: int  # Q16
    dct: np.ndarray  # int16 [num_coeffs, mel_bins], Q15 (empty for log_mel)
    multiplier: int  # int8 quantisation: [2^30, 2^31)
    shift: int  # [1, 62]
    zero_point: int

    @property
    def half(self) -> int:
        return self.fft_size // 2

    @property
    def num_features(self) -> int:
        return self.num_coeffs if self.kind == KIND_MFCC else self.mel_bins

    def mel_matrix(self) -> np.ndarray:
        """The Q15 weights as a dense int64 [M + 1, mel_bins] matrix (for the vectorised reference)."""
        matrix = np.zeros((self.half + 1, self.mel_bins), dtype=np.int64)
        offset = 0
        for j in range(self.mel_bins):
            start, length = int(self.mel_start[j]), int(self.mel_len[j])
            matrix[start:start + length, j] = self.mel_weights[offset:offset + length]
            offset += length
        return matrix

    def flash_bytes(self) -> int:
        arrays = (self.window, self.twiddle, self.bitrev, self.mel_start, self.mel_len, self.mel_weights,
                  self.log2_table, self.dct)
        return int(sum(a.nbytes for a in arrays))

    def scratch_bytes(self) -> int:
        """The C front end's scratch: the complex FFT buffer (int32 [2M]), the power spectrum (uint32 [M + 1]) and
        the log-mel values (int32 [mel_bins]); the same formula as mf_frontend_scratch_bytes()."""
        return 4 * (self.fft_size + self.half + 1 + self.mel_bins)


def hann(window_samples: int) -> np.ndarray:
    """Periodic Hann window (float64), as librosa / scipy.signal.get_window('hann')."""
    n = np.arange(window_samples)
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * n / window_samples)


def hz_to_mel(hz):
    return 2595.0 * np.log10(1.0 + np.asarray(hz, dtype=np.float64) / 700.0)


def mel_to_hz(mel):
    return 700.0 * (10.0 ** (np.asarray(mel, dtype=np.float64) / 2595.0) - 1.0)


def mel_filters(frontend: "FrontendConfig") -> np.ndarray:
    """Float triangular filters [mel_bins, M + 1] on the HTK mel scale, peak 1 (librosa htk=True, norm=None)."""
    upper = frontend.upper_hz or frontend.sample_rate / 2
    edges = mel_to_hz(np.linspace(hz_to_mel(frontend.lower_hz), hz_to_mel(upper), frontend.mel_bins + 2))
    freqs = np.arange(frontend.fft_size // 2 + 1) * frontend.sample_rate / frontend.fft_size
    left, centre, right = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - left) / (centre - left)
    falling = (right - freqs[None, :]) / (right - centre)
    return np.maximum(0.0, np.minimum(rising, falling))


def dct_matrix(num_coeffs: int, mel_bins: int) -> np.ndarray:
    """Orthonormal DCT-II [num_coeffs, mel_bins] (scipy.fft.dct(type=2, norm='ortho'))."""
    i = np.arange(num_coeffs)[:, None]
    j = np.arange(mel_bins)[None, :]
    matrix = np.sqrt(2.0 / mel_bins) * np.cos(np.pi * i * (2 * j + 1) / (2 * mel_bins))
    matrix[0] /= np.sqrt(2.0)
    return matrix


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier in [2^30, 2^31), shift) with real ~= multiplier / 2^shift."""
    if not real > 0 or not math.isfinite(real):
        raise FrontendError(f"the feature scale gives a non-positive or non-finite multiplier {real}")
    mantissa, exponent = math.frexp(real)  # real = mantissa 2^exponent, mantissa in [0.5, 1)
    multiplier = round(mantissa * 2 ** 31)
    shift = 31 - exponent
    if multiplier == 2 ** 31:
        multiplier //= 2
        shift -= 1
    if not 1 <= shift <= 62:
        raise FrontendError(f"the feature scale {real} is out of range for the int8 quantisation (shift {shift})")
    return multiplier, shift


def _q(values: np.ndarray, scale: int) -> np.ndarray:
    return np.round(np.asarray(values) * scale).astype(np.int64)


def build_tables(frontend: "FrontendConfig", scale: float, zero_point: int) -> FrontendTables:
    """The integer tables of `frontend` with int8 output (scale, zero_point)."""
    if not (scale > 0 and math.isfinite(scale)):
        raise FrontendError(f"frontend: the int8 feature scale must be positive and finite, got {scale}")
    if not -128 <= zero_point <= 127:
        raise FrontendError(f"frontend: the int8 feature zero point must be in [-128, 127], got {zero_point}")
    n = frontend.fft_size
    half = n // 2
    log2_n = n.bit_length() - 1
    kind = KIND_MFCC if frontend.kind == "mfcc" else KIND_LOG_MEL
    window = hann(frontend.window_samples)
    angle = -2.0 * np.pi * np.arange(half + 1) / n
    twiddle = np.clip(np.stack([_q(np.cos(angle), Q31), _q(np.sin(angle), Q31)], axis=1), 1 - Q31, Q31 - 1)
    twiddle = twiddle.astype(np.int32)
    bits = log2_n - 1
    bitrev = np.array([int(format(m, f"0{bits}b")[::-1], 2) for m in range(half)], dtype=np.uint16)
    weights = _q(mel_filters(frontend), Q15)
    starts, lengths, runs = [], [], []
    for row in weights:
        nonzero = np.flatnonzero(row)
        start = int(nonzero[0]) if nonzero.size else 0
        stop = int(nonzero[-1]) + 1 if nonzero.size else 0
        starts.append(start)
        lengths.append(stop - start)
        runs.append(row[start:stop])
    window_sum = float(np.sum(window))
    log_offset = round((-(30 + 30 + 2 - POWER_SHIFT + 15) - 2.0 * math.log2(window_sum)) * Q16)
    num_coeffs = frontend.num_coeffs if kind == KIND_MFCC else 0
    dct = _q(dct_matrix(num_coeffs, frontend.mel_bins), Q15).astype(np.int16) if num_coeffs else \
        np.zeros((0, frontend.mel_bins), dtype=np.int16)
    multiplier, shift = quantize_multiplier(math.log(2.0) / (Q16 * scale))
    return FrontendTables(
        kind=kind, clip_samples=frontend.clip_samples, window_samples=frontend.window_samples,
        hop_samples=frontend.hop_samples, num_frames=frontend.num_frames, fft_size=n, mel_bins=frontend.mel_bins,
        num_coeffs=num_coeffs, headroom_bits=28 - log2_n,
        window=np.minimum(_q(window, Q15), Q15 - 1).astype(np.int16), twiddle=twiddle, bitrev=bitrev,
        mel_start=np.array(starts, dtype=np.uint16), mel_len=np.array(lengths, dtype=np.uint16),
        mel_weights=np.concatenate(runs).astype(np.uint16) if runs else np.zeros(0, np.uint16),
        log2_table=_q(np.log2(1.0 + np.arange(2 ** LOG2_TABLE_BITS + 1) / 2 ** LOG2_TABLE_BITS), Q16).astype(np.int32),
        log_offset=log_offset, log_floor=round(math.log2(frontend.log_floor) * Q16), dct=dct,
        multiplier=multiplier, shift=shift, zero_point=int(zero_point))
