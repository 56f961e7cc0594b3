"""The audio front end's Python reference: int16 PCM clips -> int8 features (frames x values per frame).

Interface (the data stage, training, codegen and verify use only this):
    extract(pcm, frontend, scale, zero_point) -> int8 array (N, frontend.num_frames, frontend.num_features)
    feature_range(pcm, frontend) -> (low, high): the real-valued range of the features, to choose scale/zero point

STAND-IN (branch `anomaly`): a float numpy log-mel / MFCC (Hann window, power spectrum of the full-scale-normalised
signal, triangular mel filters on the HTK mel scale, 10 log10 with the floor, orthonormal DCT-II for MFCC), quantised
to int8. The integer implementation that equals the C front end byte for byte replaces it; callers rely only on the
interface above."""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from schemas.frontend import FrontendConfig

_CHUNK = 256


def _mel(hz: np.ndarray) -> np.ndarray:
    return 2595.0 * np.log10(1.0 + hz / 700.0)


def _filter_bank(frontend: "FrontendConfig") -> np.ndarray:
    """float64 [fft_size // 2 + 1, mel_bins] triangular filters, edges equally spaced on the mel scale."""
    upper = frontend.upper_hz or frontend.sample_rate / 2
    edges_mel = np.linspace(_mel(np.float64(frontend.lower_hz)), _mel(np.float64(upper)), frontend.mel_bins + 2)
    edges = 700.0 * (10.0 ** (edges_mel / 2595.0) - 1.0)
    freqs = np.fft.rfftfreq(frontend.fft_size, 1.0 / frontend.sample_rate)
    lower, centre, top = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    rising = (freqs[None, :] - lower) / (centre - lower)
    falling = (top - freqs[None, :]) / (top - centre)
    return np.maximum(0.0, np.minimum(rising, falling)).T


def _real(pcm: np.ndarray, frontend: "FrontendConfig") -> np.ndarray:
    """float32 [N, frames, features] before quantisation. One BLAS thread: the filter-bank product is small, and
    OpenBLAS's threads spinning on a busy machine made it ~100x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        return _real_blas(pcm, frontend)


def _real_blas(pcm: np.ndarray, frontend: "FrontendConfig") -> np.ndarray:
    window, hop, frames = frontend.window_samples, frontend.hop_samples, frontend.num_frames
    bank = _filter_bank(frontend).astype(np.float32)
    hann = np.hanning(window + 1)[:-1].astype(np.float32)
    index = np.arange(frames)[:, None] * hop + np.arange(window)[None, :]
    out = []
    for start in range(0, len(pcm), _CHUNK):
        x = pcm[start:start + _CHUNK, :frontend.clip_samples].astype(np.float32) / np.float32(32768.0)
        spectrum = np.fft.rfft(x[:, index] * hann, frontend.fft_size, axis=-1)
        power = (spectrum.real ** 2 + spectrum.imag ** 2).astype(np.float32) / np.float32(window)
        energies = np.maximum(power @ bank, np.float32(frontend.log_floor))
        feats = np.float32(10.0) * np.log10(energies)
        if frontend.kind == "mfcc":
            bins = frontend.mel_bins
            k = np.arange(frontend.num_coeffs)[:, None]
            dct = np.cos(np.pi * k * (2 * np.arange(bins)[None, :] + 1) / (2 * bins)) * np.sqrt(2.0 / bins)
            dct[0] /= np.sqrt(2.0)
            feats = feats @ dct.T.astype(np.float32)
        out.append(feats.astype(np.float32))
    return np.concatenate(out) if out else np.zeros((0, frames, frontend.num_features), np.float32)


def extract(pcm: np.ndarray, frontend: "FrontendConfig", scale: float, zero_point: int) -> np.ndarray:
    real = _real(pcm, frontend)
    q = np.round(real / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def feature_range(pcm: np.ndarray, frontend: "FrontendConfig") -> tuple[float, float]:
    real = _real(pcm, frontend)
    return float(real.min()), float(real.max())
