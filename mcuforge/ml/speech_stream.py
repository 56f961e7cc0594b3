"""A long synthetic recording for streaming keyword spotting: words spoken by espeak-ng, each alone, placed at known
times in background noise. The streaming test and benchmarks/streaming_bench.py check detections against the known
word times (issue 16, point 5)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcuforge.audio.mix import active_segments, mix_at_snr, rms, synth_noise
from mcuforge.audio.wav import parse_wav, resample, to_int16
from mcuforge.toolchain.espeak import Utterance, speak_many


def long_utterance(words: list[str], voice: str = "gmw/en-US+m3", rate: int = 16000, lead_s: float = 0.5,
                   gap_s: float = 1.5, snr_db: float = 20.0, seed: int = 0, speed: int = 160
                   ) -> tuple[np.ndarray, list[tuple[float, float, str]]]:
    """(int16 PCM at `rate`, [(start_s, stop_s, word)]): `lead_s` of noise, then each word (trimmed to its sound)
    followed by `gap_s` of noise; pink noise `snr_db` below the speech RMS throughout (white noise when no word)."""
    utterances = [Utterance(words=(word,), voice=voice, speed=speed, pitch=50, amplitude=100) for word in words]
    pieces = []
    for raw, utterance in zip(speak_many(utterances), utterances):
        samples, source_rate = parse_wav(raw, Path(f"<espeak-ng {utterance.voice}>"))
        samples = resample(samples, source_rate, rate)
        whole = active_segments(samples, rate, min_gap_ms=1e9)
        start, stop = whole[0] if whole else (0, len(samples))
        pieces.append(samples[start:stop].astype(np.float64))
    lead, gap = int(round(lead_s * rate)), int(round(gap_s * rate))
    total = lead + sum(len(piece) + gap for piece in pieces)
    clean = np.zeros(total, dtype=np.float64)
    spans = []
    offset = lead
    for word, piece in zip(words, pieces):
        clean[offset:offset + len(piece)] = piece
        spans.append((offset / rate, (offset + len(piece)) / rate, word))
        offset += len(piece) + gap
    rng = np.random.default_rng(seed)
    speech_rms = rms(np.concatenate(pieces)) if pieces else 1000.0
    noisy = mix_at_snr(clean, synth_noise("pink", total, rate, rng), snr_db, signal_rms=speech_rms)
    return to_int16(noisy), spans
