"""The audio front end's Python reference: int16 PCM clips -> int8 features (frames x values per frame).

Interface (the data stage, training, codegen and verify use only this):
    extract(pcm, frontend, scale, zero_point) -> int8 array (N, frontend.num_frames, frontend.num_features)
    feature_range(pcm, frontend) -> (low, high): the real-valued range of the features, to choose scale/zero point
    extract_float(pcm, frontend) -> float64 features of the same maths in floating point (np.fft.rfft, exact log,
        no quantisation): the cross-check against python_speech_features and the measure of the fixed-point error

The integer algorithm (mcuforge/audio/tables.py states it step by step) is bit-identical to the C front end
(engine_c/src/frontend/mf_frontend.c): every value is an exact int64 here. The real-valued features are
    log_mel: ln(max(E_j / E_ref, log_floor)), E_j the mel energies of |rfft(pcm / 32768 * hann)|^2 and E_ref the
             energy of a full-scale DC frame, (sum of the window)^2, so log-mel values lie in [ln(log_floor), ~0];
    mfcc:    the orthonormal DCT-II of those log-mel values, first num_coeffs."""
from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from mcuforge.audio.fft import bit_length, power_spectrum, round_shift
from mcuforge.audio.tables import (KIND_MFCC, LOG2_TABLE_BITS, Q16, FrontendError, FrontendTables, build_tables,
                                   dct_matrix, hann, mel_filters)

if TYPE_CHECKING:
    from schemas.frontend import FrontendConfig

CHUNK_FRAMES = 2048  # frames processed at once (int64 temporaries of a few MB each)


def _check_pcm(pcm: np.ndarray, frontend: "FrontendConfig") -> np.ndarray:
    pcm = np.asarray(pcm)
    if pcm.ndim == 1:
        pcm = pcm[None, :]
    if pcm.ndim != 2 or pcm.dtype != np.int16:
        raise FrontendError(f"frontend: PCM must be int16 [clips, samples], got {pcm.dtype} {list(pcm.shape)}")
    if pcm.shape[1] != frontend.clip_samples:
        raise FrontendError(f"frontend: clips have {pcm.shape[1]} samples, clip_ms={frontend.clip_ms} at "
                            f"{frontend.sample_rate} Hz needs {frontend.clip_samples}")
    return pcm


def _frames(pcm: np.ndarray, tables: FrontendTables) -> np.ndarray:
    """[N, S] -> [N * num_frames, W] (a copy)."""
    starts = np.arange(tables.num_frames) * tables.hop_samples
    index = starts[:, None] + np.arange(tables.window_samples)[None, :]
    return pcm[:, index].reshape(-1, tables.window_samples)


def log2_q16(energy: np.ndarray, tables: FrontendTables) -> np.ndarray:
    """65536 log2(E) for E > 0 (int64 < 2^62): exponent + table with linear interpolation (0 where E = 0)."""
    exponent = np.maximum(bit_length(energy) - 1, 0)
    up = np.maximum(30 - exponent, 0)
    down = np.maximum(exponent - 30, 0)
    fraction = ((energy << up) >> down) - (1 << 30)  # [0, 2^30)
    index = fraction >> (30 - LOG2_TABLE_BITS)
    remainder = (fraction >> 6) & 0xFFFF
    table = tables.log2_table.astype(np.int64)
    low = table[np.clip(index, 0, 2 ** LOG2_TABLE_BITS - 1)]
    high = table[np.clip(index + 1, 1, 2 ** LOG2_TABLE_BITS)]
    value = exponent * Q16 + low + (((high - low) * remainder + 32768) >> 16)
    return np.where(energy > 0, value, 0)


def _log_values(frames: np.ndarray, tables: FrontendTables, mel: np.ndarray) -> np.ndarray:
    """int16 frames [F, W] -> the values before int8 quantisation [F, num_features] (Q16 log2 units, int64)."""
    power, shift = power_spectrum(frames, tables)
    if int(power.max(initial=0)) * float(mel.sum(axis=1).max()) < 2.0 ** 53:  # float64 matmul, every sum exact
        energy = np.rint(mel @ power.astype(np.float64)).astype(np.int64).T
    else:  # in two 16-bit halves, each exact
        high, low = power >> 16, power & 0xFFFF
        energy = (np.rint(mel @ high.astype(np.float64)).astype(np.int64).T << 16) + \
            np.rint(mel @ low.astype(np.float64)).astype(np.int64).T
    logs = log2_q16(energy, tables) - (2 * Q16) * shift[:, None] + tables.log_offset
    logs = np.where(energy > 0, np.maximum(logs, tables.log_floor), tables.log_floor)
    if tables.kind != KIND_MFCC:
        return logs
    accumulated = np.rint(logs.astype(np.float64) @ tables.dct.astype(np.float64).T).astype(np.int64)  # < 2^46
    return round_shift(accumulated, 15)


def integer_values(pcm: np.ndarray, frontend: "FrontendConfig", tables: FrontendTables | None = None) -> np.ndarray:
    """The integer front end up to (not including) the int8 quantisation: [N, frames, features] int64, in Q16 log2
    units (real value = v ln(2) / 65536)."""
    pcm = _check_pcm(pcm, frontend)
    tables = tables or build_tables(frontend, 1.0, 0)
    mel = tables.mel_matrix().T.astype(np.float64)  # [mel_bins, M + 1]
    out = np.empty((pcm.shape[0] * tables.num_frames, tables.num_features), dtype=np.int64)
    clips_per_chunk = max(1, CHUNK_FRAMES // tables.num_frames)  # frames are cut chunk by chunk: bounded memory
    for start in range(0, pcm.shape[0], clips_per_chunk):
        frames = _frames(pcm[start:start + clips_per_chunk], tables)
        first = start * tables.num_frames
        out[first:first + frames.shape[0]] = _log_values(frames, tables, mel)
    return out.reshape(pcm.shape[0], tables.num_frames, tables.num_features)


def quantize(values: np.ndarray, tables: FrontendTables) -> np.ndarray:
    """Q16 log2 values -> int8: ((v * multiplier + 2^(shift-1)) >> shift) + zero_point, saturated."""
    scaled = round_shift(values * tables.multiplier, tables.shift) + tables.zero_point
    return np.clip(scaled, -128, 127).astype(np.int8)


def extract(pcm: np.ndarray, frontend: "FrontendConfig", scale: float, zero_point: int) -> np.ndarray:
    """int16 PCM [N, clip_samples] -> int8 features [N, num_frames, num_features], byte-identical to the C."""
    tables = build_tables(frontend, scale, zero_point)
    return quantize(integer_values(pcm, frontend, tables), tables)


def extract_frames(frames: np.ndarray, frontend: "FrontendConfig", scale: float, zero_point: int) -> np.ndarray:
    """int16 windows [F, window_samples] -> int8 features [F, num_features], each frame on its own (the front end's
    frames are independent): the bytes `extract` gives for a frame with those samples."""
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.dtype != np.int16 or frames.shape[1] != frontend.window_samples:
        raise FrontendError(f"frontend: frames must be int16 [frames, {frontend.window_samples}], got {frames.dtype} "
                            f"{list(frames.shape)}")
    tables = build_tables(frontend, scale, zero_point)
    mel = tables.mel_matrix().T.astype(np.float64)
    out = np.empty((frames.shape[0], tables.num_features), dtype=np.int64)
    for start in range(0, frames.shape[0], CHUNK_FRAMES):
        out[start:start + CHUNK_FRAMES] = _log_values(frames[start:start + CHUNK_FRAMES], tables, mel)
    return quantize(out, tables)


def feature_range(pcm: np.ndarray, frontend: "FrontendConfig") -> tuple[float, float]:
    """(low, high) of the real-valued features (natural-log units) of the integer front end over `pcm`."""
    values = integer_values(pcm, frontend)
    factor = math.log(2.0) / Q16
    return float(values.min()) * factor, float(values.max()) * factor


def extract_float(pcm: np.ndarray, frontend: "FrontendConfig", filters: np.ndarray | None = None) -> np.ndarray:
    """The same features in float64 [N, frames, features] (natural-log units, unquantised): float Hann window,
    np.fft.rfft, the float mel filters (or `filters` [mel_bins, M + 1], e.g. python_speech_features'), exact log
    and DCT. Float energies below the floor are clamped like the integer ones."""
    pcm = _check_pcm(pcm, frontend)
    tables = build_tables(frontend, 1.0, 0)
    window = hann(frontend.window_samples)
    frames = _frames(pcm, tables).astype(np.float64) / 32768.0 * window
    power = np.abs(np.fft.rfft(frames, n=frontend.fft_size, axis=1)) ** 2
    weights = mel_filters(frontend) if filters is None else filters
    energy = power @ weights.T / np.sum(window) ** 2
    logs = np.log(np.maximum(energy, frontend.log_floor))
    if tables.kind == KIND_MFCC:
        logs = logs @ dct_matrix(frontend.num_coeffs, frontend.mel_bins).T
    return logs.reshape(pcm.shape[0], tables.num_frames, -1)
