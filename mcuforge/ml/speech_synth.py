"""`dataset.kind: speech_synth`: an offline keyword data set spoken by espeak-ng, deterministic by seed.

Classes: the ten Speech Commands keywords, `unknown` (one of UNKNOWN_WORDS) and `silence` (noise only).

**Speakers**: a synthetic speaker is an espeak-ng voice file with a variant (`gmw/en-US+f4`). The voice x variant
combinations are shuffled by the seed and dealt into three disjoint sets: test (test_fraction of them), validation
(val_fraction, at least one when val_fraction > 0) and training (the rest), so the test and validation splits are
spoken only by speakers training never heard.

**Sessions**: a session is one speaker at a random speed (SPEED_WPM), pitch (PITCH) and amplitude (AMPLITUDE) saying
every keyword once and one unknown word, in a shuffled order, as one espeak-ng call with long pauses between the
words; the words are cut apart at the pauses (mcuforge/audio/mix.py:active_segments; a session whose pause count
does not match is re-spoken word by word). A split of n clips per class has n sessions, speakers taken in turn.
Each word is resampled from 22,050 Hz to `sample_rate`, placed at a random time shift inside the clip, and with
probability `noise_prob` mixed with synthesised noise (white, pink, brown or mains hum) at an SNR drawn from
`snr_db` (relative to the word's own RMS). A silence clip is noise alone at -60..-25 dBFS RMS (or digital zero with
probability 0.05).

Every random draw comes from a generator seeded by (seed, split, session): the same seed gives identical int16
arrays whatever the thread timing.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from mcuforge.audio.mix import NOISE_KINDS, active_segments, mix_at_snr, place, rms, synth_noise
from mcuforge.audio.wav import parse_wav, resample, to_int16
from mcuforge.core.errors import DataError
from mcuforge.ml.audio_folders import stack_rows
from mcuforge.toolchain.espeak import Utterance, check_voices, espeak_version, speak, speak_many

KEYWORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
UNKNOWN_WORDS = ("bed", "bird", "cat", "dog", "happy", "house", "marvin", "sheila", "tree", "wow", "zero", "one",
                 "two", "three", "four", "five", "six", "seven", "eight", "nine", "learn", "follow", "forward",
                 "backward", "visual", "table", "water", "music", "window", "garden")
CLASSES = KEYWORDS + ("unknown", "silence")
DEFAULT_VOICES = ("gmw/en", "gmw/en-US", "gmw/en-GB-scotland", "gmw/en-GB-x-gbclan", "gmw/en-GB-x-rp",
                  "gmw/en-GB-x-gbcwmd", "gmw/en-029")
DEFAULT_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "croak", "klatt", "klatt2",
                    "klatt3")
SPEED_WPM = (130, 210)
PITCH = (20, 80)
AMPLITUDE = (70, 130)
SILENCE_DBFS = (-60.0, -25.0)
SPLITS = ("train", "val", "test")


def classes_of(dataset: dict) -> list[str]:
    wanted = list(dataset["classes"]) or list(CLASSES)
    unknown = [name for name in wanted if name not in CLASSES]
    if unknown or len(wanted) < 2 or len(set(wanted)) != len(wanted):
        raise DataError(f"dataset.classes {wanted}: speech_synth has the classes {', '.join(CLASSES)} "
                        "(give at least two, each once)")
    return wanted


def check_synth(dataset: dict) -> list[str]:
    """The classes; DataError / ToolchainError for unknown classes, voices or variants, or espeak-ng missing."""
    classes = classes_of(dataset)
    check_voices(list(dataset["voices"]) or list(DEFAULT_VOICES), list(dataset["variants"]) or list(DEFAULT_VARIANTS))
    return classes


def split_speakers(dataset: dict, seed: int) -> dict[str, list[str]]:
    """Disjoint voice+variant combinations for train, val and test."""
    voices = list(dataset["voices"]) or list(DEFAULT_VOICES)
    variants = list(dataset["variants"]) or list(DEFAULT_VARIANTS)
    combos = sorted({f"{voice}+{variant}" for voice in voices for variant in variants})
    order = np.random.default_rng([seed, 1]).permutation(len(combos))
    combos = [combos[i] for i in order]
    n_test = max(1, round(len(combos) * dataset["test_fraction"]))
    n_val = max(1, round(len(combos) * dataset["val_fraction"])) if dataset["val_fraction"] > 0 else 0
    if n_test + n_val >= len(combos):
        raise DataError(f"dataset.voices x dataset.variants: {len(combos)} speaker(s) cannot be split into disjoint "
                        f"train, validation ({n_val}) and test ({n_test}) speakers: give more voices or variants")
    return {"test": combos[:n_test], "val": combos[n_test:n_test + n_val], "train": combos[n_test + n_val:]}


def _split_sizes(dataset: dict) -> dict[str, int]:
    total = dataset["samples_per_class"]
    test = max(1, round(total * dataset["test_fraction"]))
    val = round(total * dataset["val_fraction"])
    if dataset["val_fraction"] > 0:
        val = max(1, val)
    return {"train": max(1, total - test - val), "val": val, "test": test}


def _noise(rng: np.random.Generator, length: int, rate: int) -> tuple[str, np.ndarray]:
    kind = str(rng.choice(NOISE_KINDS))
    return kind, synth_noise(kind, length, rate, rng)


def _word_clip(word: np.ndarray, dataset: dict, clip: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    rate = dataset["sample_rate"]
    word = word[:clip].astype(np.float64)
    offset = int(rng.integers(0, clip - len(word) + 1))
    out = place(word, clip, offset)
    meta = {"noise": "none", "snr_db": np.nan, "shift_ms": 1000.0 * offset / rate}
    if rng.random() < dataset["noise_prob"]:
        kind, noise = _noise(rng, clip, rate)
        snr = float(rng.uniform(*dataset["snr_db"]))
        out = mix_at_snr(out, noise, snr, signal_rms=rms(word))
        meta.update(noise=kind, snr_db=snr)
    return to_int16(out), meta


def _silence_clip(dataset: dict, clip: int, rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    if rng.random() < 0.05:
        return np.zeros(clip, dtype=np.int16), {"noise": "zero", "snr_db": np.nan, "shift_ms": 0.0}
    kind, noise = _noise(rng, clip, dataset["sample_rate"])
    level = 32768.0 * 10 ** (rng.uniform(*SILENCE_DBFS) / 20)
    return to_int16(noise * level), {"noise": kind, "snr_db": np.nan, "shift_ms": 0.0}


def _words(raw: bytes, utterance: Utterance, rate: int) -> list[np.ndarray] | None:
    """The words of one espeak-ng recording at `rate`, or None when the pauses do not separate them."""
    samples, source_rate = parse_wav(raw, Path(f"<espeak-ng {utterance.voice}>"))
    samples = resample(samples, source_rate, rate)
    segments = active_segments(samples, rate)
    if len(segments) != len(utterance.words):
        return None
    # cut at the middle of each pause, then trim each word against its own loudest frame (a quiet word's decaying
    # tail would fall under a threshold set by the loudest word of the recording)
    cuts = [0] + [(segments[i][1] + segments[i + 1][0]) // 2 for i in range(len(segments) - 1)] + [len(samples)]
    words = []
    for start, stop in zip(cuts[:-1], cuts[1:]):
        piece = samples[start:stop]
        whole = active_segments(piece, rate, min_gap_ms=1e9)  # one segment: first to last active frame
        start, stop = whole[0] if whole else (0, len(piece))
        words.append(piece[start:stop])
    return words


def generate(dataset: dict, seed: int, workers: int = 2) -> dict:
    """{"splits": {split: (x int16 [N, clip], y int64 [N], meta {column: array})}, "classes", "info"}."""
    started = time.monotonic()
    classes = check_synth(dataset)
    speakers = split_speakers(dataset, seed)
    sizes = _split_sizes(dataset)
    rate, clip = dataset["sample_rate"], round(dataset["clip_ms"] * dataset["sample_rate"] / 1000)
    spoken = [name for name in classes if name in KEYWORDS]
    plans: list[tuple[str, int, Utterance]] = []
    for split_index, split in enumerate(SPLITS):
        for session in range(sizes[split] if spoken or "unknown" in classes else 0):
            rng = np.random.default_rng([seed, 2, split_index, session])
            words = list(spoken) + ([str(rng.choice(UNKNOWN_WORDS))] if "unknown" in classes else [])
            words = [words[i] for i in rng.permutation(len(words))]
            voices = speakers[split]
            utterance = Utterance(words=tuple(words), voice=voices[session % len(voices)],
                                  speed=int(rng.integers(SPEED_WPM[0], SPEED_WPM[1] + 1)),
                                  pitch=int(rng.integers(PITCH[0], PITCH[1] + 1)),
                                  amplitude=int(rng.integers(AMPLITUDE[0], AMPLITUDE[1] + 1)))
            plans.append((split, session, utterance))
    speak_started = time.monotonic()
    recordings = speak_many([plan[2] for plan in plans], workers)
    espeak_seconds = time.monotonic() - speak_started
    rows: dict[str, list] = {split: [] for split in SPLITS}
    respoken = 0
    for (split, session, utterance), raw in zip(plans, recordings):
        words = _words(raw, utterance, rate)
        if words is None:
            respoken += 1
            words = []
            for word in utterance.words:
                alone = _words(speak(Utterance(words=(word,), **_params(utterance))), utterance, rate)
                if alone is None:
                    raise DataError(f"espeak-ng voice {utterance.voice} said {word!r} as several sounds separated "
                                    "by long pauses (or none): cannot cut the word out")
                words.extend(alone)
        rng = np.random.default_rng([seed, 3, SPLITS.index(split), session])
        for text, samples in zip(utterance.words, words):
            label = classes.index(text if text in KEYWORDS else "unknown")
            pcm, meta = _word_clip(samples, dataset, clip, rng)
            rows[split].append((pcm, label, dict(meta, voice=utterance.voice, word=text,
                                                 speed=utterance.speed, pitch=utterance.pitch)))
    if "silence" in classes:
        for split_index, split in enumerate(SPLITS):
            for index in range(sizes[split]):
                rng = np.random.default_rng([seed, 4, split_index, index])
                pcm, meta = _silence_clip(dataset, clip, rng)
                rows[split].append((pcm, classes.index("silence"),
                                    dict(meta, voice="", word="", speed=0, pitch=0)))
    splits = {split: stack_rows(rows[split], clip) for split in SPLITS}
    info = {
        "espeak_ng": espeak_version(),
        "speakers": speakers,
        "sessions": {split: sizes[split] for split in SPLITS},
        "respoken_sessions": respoken,
        "unknown_words": list(UNKNOWN_WORDS),
        "speed_wpm": list(SPEED_WPM), "pitch": list(PITCH), "amplitude": list(AMPLITUDE),
        "espeak_seconds": round(espeak_seconds, 2),
        "generation_seconds": round(time.monotonic() - started, 2),
    }
    return {"splits": splits, "classes": classes, "info": info}


def _params(utterance: Utterance) -> dict:
    return {"voice": utterance.voice, "speed": utterance.speed, "pitch": utterance.pitch,
            "amplitude": utterance.amplitude, "word_gap": utterance.word_gap}
