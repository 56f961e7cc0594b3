"""Augmentation maths on int16 clips: synthetic background noise, mixing at a signal-to-noise ratio, placing a word
at a time shift inside a clip, and finding the words of a recording separated by pauses. numpy only; every random
choice comes from the `np.random.Generator` passed in, so results are reproducible from a seed."""
from __future__ import annotations

import numpy as np

NOISE_KINDS = ("white", "pink", "brown", "hum")


def synth_noise(kind: str, length: int, sample_rate: int, rng: np.random.Generator) -> np.ndarray:
    """float64 [length] noise of unit RMS: white (flat), pink (1/f power), brown (1/f^2 power, from 20 Hz up) or hum
    (50 or 60 Hz mains with decaying odd and even harmonics, random phases, plus a little white noise)."""
    if kind == "hum":
        mains = rng.choice([50.0, 60.0])
        t = np.arange(length) / sample_rate
        harmonics = np.arange(1, 9)
        amplitudes = 1.0 / harmonics ** rng.uniform(0.5, 1.5)
        phases = rng.uniform(0, 2 * np.pi, len(harmonics))
        out = (amplitudes[:, None] * np.sin(2 * np.pi * mains * harmonics[:, None] * t + phases[:, None])).sum(0)
        out += 0.05 * rng.standard_normal(length)
    else:
        white = rng.standard_normal(length)
        if kind == "white":
            out = white
        else:
            spectrum = np.fft.rfft(white)
            freqs = np.fft.rfftfreq(length, 1.0 / sample_rate)
            freqs = np.maximum(freqs, 20.0)
            exponent = {"pink": 0.5, "brown": 1.0}[kind]  # amplitude ~ f^-exponent
            out = np.fft.irfft(spectrum / freqs ** exponent, n=length)
    rms = np.sqrt(np.mean(out ** 2))
    return out / rms if rms > 0 else out


def rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(np.asarray(x, dtype=np.float64) ** 2))) if len(x) else 0.0


def mix_at_snr(signal: np.ndarray, noise: np.ndarray, snr_db: float, signal_rms: float | None = None) -> np.ndarray:
    """float64 signal + noise scaled so that 20 log10(signal_rms / noise_rms) = snr_db. `signal_rms` defaults to
    the whole signal's RMS; pass the RMS of the speech part alone so silence around a word does not lower it."""
    level = rms(signal) if signal_rms is None else signal_rms
    noise_level = rms(noise)
    if level == 0 or noise_level == 0:
        return np.asarray(signal, dtype=np.float64).copy()
    gain = level / noise_level / 10 ** (snr_db / 20)
    return np.asarray(signal, dtype=np.float64) + gain * np.asarray(noise, dtype=np.float64)


def place(word: np.ndarray, length: int, offset: int) -> np.ndarray:
    """float64 clip of `length` samples holding `word` starting at `offset` (the word is cut at the clip's end)."""
    out = np.zeros(length, dtype=np.float64)
    piece = word[: max(0, length - offset)]
    out[offset: offset + len(piece)] = piece
    return out


def active_segments(samples: np.ndarray, sample_rate: int, threshold_db: float = -40.0, frame_ms: float = 10.0,
                    min_gap_ms: float = 300.0, margin_ms: float = 20.0) -> list[tuple[int, int]]:
    """[(start, stop)] sample ranges of sound separated by pauses of at least `min_gap_ms`.

    A frame is active when its RMS is within `threshold_db` of the loudest frame's; shorter pauses (the closure of
    a stop consonant) stay inside a segment; each segment is widened by `margin_ms` on both sides."""
    frame = max(1, int(round(sample_rate * frame_ms / 1000)))
    count = len(samples) // frame
    if count == 0:
        return []
    energy = np.sqrt(np.mean(np.asarray(samples[: count * frame], dtype=np.float64).reshape(count, frame) ** 2, 1))
    if energy.max() == 0:
        return []
    active = energy > energy.max() * 10 ** (threshold_db / 20)
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    gap = int(np.ceil(min_gap_ms / frame_ms))
    merged: list[list[int]] = []
    for start, stop in zip(starts, stops):
        if merged and start - merged[-1][1] < gap:
            merged[-1][1] = stop
        else:
            merged.append([start, stop])
    margin = int(round(sample_rate * margin_ms / 1000))
    return [(max(0, a * frame - margin), min(len(samples), b * frame + margin)) for a, b in merged]
