"""`dataset.kind: machine_synth`: an offline generator of rotating-machine sounds and their faults, deterministic by seed.

A machine id is a rotating machine with its own fundamental (shaft rate x blade/pole count), harmonic profile, slow
speed drift, amplitude modulation and coloured background noise (a spectral tilt and a resonance band). Its normal
clips vary the speed, harmonic amplitudes and phases, noise level and gain within the machine's tolerance. Anomaly
kinds, at a severity (1.0 = clearly visible in a log-mel spectrogram, 0.3 = subtle; each clip draws its own severity
uniformly in [0.5, 1] x `severity`):

- `bearing`:     a bearing-fault impulse train (a non-integer multiple of the shaft rate) exciting a 2-5 kHz resonance;
- `harmonic`:    one harmonic shifted off the harmonic series, or suppressed (a missing harmonic);
- `imbalance`:   a strong once-per-revolution modulation of the whole tonal part and a louder first order;
- `rubbing`:     short bursts of high-frequency noise at random times;
- `noise_floor`: the background noise louder and brighter.

Splits: `train` holds normal clips only; `val` normal clips and anomalies of the kinds not held out; `test` normal
clips and every kind, so the `held_out_kinds` are seen by the score for the first time in test.

Everything is vectorised numpy over chunks of clips (a fixed chunk size, so the bytes never depend on the machine):
harmonics by a complex-exponential recurrence (one complex product per harmonic instead of a sine), noise shaped
in the frequency domain, impulse trains convolved by FFT. Clips are int16 PCM at a fixed per-machine gain.
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np

KINDS = ("bearing", "harmonic", "imbalance", "rubbing", "noise_floor")
SPLITS = ("train", "val", "test")
CHUNK = 128  # clips generated per vectorised batch (fixed: part of the bytes' definition)


@dataclass(frozen=True)
class Machine:
    """The parameters of one machine id (drawn from its name and the seed)."""

    name: str
    f0: float                 # fundamental, Hz
    amps: np.ndarray          # harmonic amplitudes (relative), float64 [H]
    drift_depth: float        # relative speed drift
    drift_hz: float           # drift rate, Hz
    am_depth: float           # amplitude modulation depth
    am_hz: float              # amplitude modulation rate, Hz
    tilt_db_oct: float        # noise spectral tilt, dB per octave
    resonance_hz: float       # noise resonance band centre, Hz
    noise_db: float           # noise power relative to the tonal part, dB
    bearing_ratio: float      # bearing fault rate / f0
    bearing_hz: float         # resonance excited by the bearing impulses, Hz
    gain: float               # int16 full scale x this = the tonal part's RMS


def machine(name: str, seed: int) -> Machine:
    rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
    harmonics = int(rng.integers(6, 11))
    amps = np.exp(-np.arange(harmonics) * rng.uniform(0.15, 0.45)) * rng.uniform(0.5, 1.0, harmonics)
    amps[0] = 1.0
    return Machine(
        name=name, f0=float(rng.uniform(60.0, 180.0)), amps=amps / np.sqrt((amps ** 2).sum() / 2),
        drift_depth=float(rng.uniform(0.003, 0.01)), drift_hz=float(rng.uniform(0.2, 0.8)),
        am_depth=float(rng.uniform(0.05, 0.2)), am_hz=float(rng.uniform(1.0, 6.0)),
        tilt_db_oct=float(rng.uniform(-6.0, -2.0)), resonance_hz=float(rng.uniform(500.0, 3000.0)),
        noise_db=float(rng.uniform(-14.0, -8.0)), bearing_ratio=float(rng.uniform(3.1, 5.7)),
        bearing_hz=float(rng.uniform(2000.0, 5000.0)), gain=float(rng.uniform(0.05, 0.1)),
    )


def _noise(rng: np.random.Generator, n: int, samples: int, shape: np.ndarray) -> np.ndarray:
    """Gaussian noise with the power spectrum `shape` [samples // 2 + 1] (or [n, ...]), unit mean power: float32 [n, samples]."""
    bins = samples // 2 + 1
    spectrum = (rng.standard_normal((n, bins), dtype=np.float32)
                + 1j * rng.standard_normal((n, bins), dtype=np.float32)).astype(np.complex64)
    spectrum *= np.sqrt(shape / shape.mean(axis=-1, keepdims=True)).astype(np.float32)
    return (np.fft.irfft(spectrum, samples, axis=-1) * np.float32(np.sqrt(samples / 2.0))).astype(np.float32)


def _noise_shape(m: Machine, freqs: np.ndarray, extra_tilt: np.ndarray) -> np.ndarray:
    """Power spectrum of the background: a tilt around 1 kHz plus a resonance band; float64 [n, bins]."""
    octaves = np.log2(np.maximum(freqs, 20.0) / 1000.0)
    tilt = 10.0 ** ((m.tilt_db_oct + extra_tilt[:, None]) * octaves[None, :] / 10.0)
    band = 4.0 * np.exp(-0.5 * ((freqs - m.resonance_hz) / (0.15 * m.resonance_hz)) ** 2)
    return tilt + band[None, :]


def _chunk(m: Machine, rng: np.random.Generator, kinds: np.ndarray, severity: np.ndarray, sample_rate: int,
           samples: int) -> np.ndarray:
    """float32 [n, samples] clips of machine `m`; kinds[i] is an index into KINDS or -1 (normal)."""
    n = len(kinds)
    t = np.arange(samples, dtype=np.float64) / sample_rate
    freqs = np.fft.rfftfreq(samples, 1.0 / sample_rate)
    is_kind = {kind: kinds == index for index, kind in enumerate(KINDS)}
    sev = severity.astype(np.float64)

    # speed: clip-level offset (+-1.5 %) and a slow drift
    speed = 1.0 + rng.uniform(-0.015, 0.015, n)
    drift_phase = rng.uniform(0, 2 * np.pi, n)
    f = m.f0 * speed[:, None] * (1.0 + m.drift_depth * np.sin(2 * np.pi * m.drift_hz * t[None, :] + drift_phase[:, None]))
    theta = 2 * np.pi * np.cumsum(f, axis=1) / sample_rate + rng.uniform(0, 2 * np.pi, n)[:, None]

    # harmonic amplitudes: +-1.5 dB per clip; the `harmonic` anomaly moves or suppresses one of the first four
    harmonics = len(m.amps)
    amps = m.amps[None, :] * 10.0 ** (rng.uniform(-1.5, 1.5, (n, harmonics)) / 20.0)
    phases = rng.uniform(0, 2 * np.pi, (n, harmonics))
    which = rng.integers(1, 4, n)
    missing = rng.random(n) < 0.5
    shifted_amp = np.zeros(n)
    rows = np.flatnonzero(is_kind["harmonic"])
    shifted_amp[rows] = np.where(missing[rows], 0.0, amps[rows, which[rows]])
    amps[rows, which[rows]] *= np.where(missing[rows], 1.0 - 0.9 * sev[rows], 1.0 - sev[rows] * 0.8)
    imbalance = is_kind["imbalance"]
    amps[imbalance, 0] *= 1.0 + 1.5 * sev[imbalance]

    z = np.exp(1j * theta).astype(np.complex64)
    power = z.copy()
    coeffs = (amps * np.exp(1j * phases)).astype(np.complex64)
    tonal = np.zeros((n, samples), np.float32)
    for h in range(harmonics):
        if h:
            power *= z
        tonal += (coeffs[:, h:h + 1] * power).imag
    if rows.size:  # the shifted harmonic: (which + 1) x f0 x (1 + 4 % x severity), off the series
        ratio = (which[rows] + 1) * (1.0 + 0.04 * sev[rows])
        tonal[rows] += (shifted_amp[rows, None] * np.sin(ratio[:, None] * theta[rows])).astype(np.float32)

    # amplitude modulation; imbalance adds a once-per-revolution modulation
    am_phase = rng.uniform(0, 2 * np.pi, n)
    envelope = 1.0 + m.am_depth * np.sin(2 * np.pi * m.am_hz * t[None, :] + am_phase[:, None])
    depth = np.where(imbalance, 0.6 * sev, 0.0)
    envelope = envelope * (1.0 + depth[:, None] * np.sin(theta / max(1, round(m.f0 / 25.0))))
    signal = tonal * envelope.astype(np.float32)

    # background noise: level +-1 dB per clip; the noise_floor anomaly raises it and tilts it up
    floor = is_kind["noise_floor"]
    extra_tilt = np.where(floor, 1.5 * sev, 0.0)
    noise_db = m.noise_db + rng.uniform(-1.0, 1.0, n) + np.where(floor, 6.0 * sev, 0.0)
    noise = _noise(rng, n, samples, _noise_shape(m, freqs, extra_tilt))
    signal += noise * (10.0 ** (noise_db / 20.0)).astype(np.float32)[:, None]

    bearing = np.flatnonzero(is_kind["bearing"])
    if bearing.size:  # impulses at bearing_ratio x f0 (+-3 % jitter each), ringing at bearing_hz
        rate = m.bearing_ratio * m.f0 * speed[bearing]
        count = int(np.ceil(rate.max() * samples / sample_rate)) + 2
        step = sample_rate / rate[:, None] * (1.0 + rng.uniform(-0.03, 0.03, (bearing.size, count)))
        when = np.cumsum(step, axis=1) - rng.uniform(0, 1, bearing.size)[:, None] * step[:, :1]
        train = np.zeros((bearing.size, samples), np.float64)
        valid = (when >= 0) & (when < samples)
        train[np.nonzero(valid)[0], when[valid].astype(np.int64)] = 1.0
        ring_t = np.arange(int(0.01 * sample_rate)) / sample_rate
        ring = np.exp(-ring_t / 0.0015) * np.sin(2 * np.pi * m.bearing_hz * ring_t)
        hits = np.fft.irfft(np.fft.rfft(train, axis=1) * np.fft.rfft(ring, samples)[None, :], samples, axis=1)
        signal[bearing] += (hits * (0.4 * sev[bearing])[:, None]).astype(np.float32)

    rubbing = np.flatnonzero(is_kind["rubbing"])
    if rubbing.size:  # 5-15 bursts per second of 10-30 ms, noise above 1.5 kHz
        bursts = np.zeros((rubbing.size, samples))
        per_clip = rng.integers(5, 16, rubbing.size)
        for row, count in enumerate(per_clip):
            centres = rng.uniform(0, samples, count)
            widths = rng.uniform(0.01, 0.03, count) * sample_rate / 4
            bursts[row] = np.exp(-0.5 * ((np.arange(samples)[None, :] - centres[:, None]) / widths[:, None]) ** 2).sum(0)
        shape = np.where(freqs > 1500.0, 1.0, 1e-4)[None, :].repeat(rubbing.size, 0)
        hiss = _noise(rng, rubbing.size, samples, shape)
        signal[rubbing] += (hiss * bursts * (0.2 * sev[rubbing])[:, None]).astype(np.float32)

    gain = m.gain * 10.0 ** (rng.uniform(-1.0, 1.0, n) / 20.0)
    return signal * (gain * 32767.0).astype(np.float32)[:, None]


def clips(m: Machine, kinds: np.ndarray, severity: np.ndarray, seed: tuple[int, ...], sample_rate: int,
          samples: int) -> np.ndarray:
    """int16 [len(kinds), samples] clips of machine `m` (kinds: index into KINDS, -1 = normal)."""
    rng = np.random.default_rng(list(seed))
    out = np.empty((len(kinds), samples), np.int16)
    for start in range(0, len(kinds), CHUNK):
        part = _chunk(m, rng, kinds[start:start + CHUNK], severity[start:start + CHUNK], sample_rate, samples)
        out[start:start + CHUNK] = np.clip(np.round(part), -32768, 32767).astype(np.int16)
    return out


@dataclass
class MachineSet:
    """One split: PCM clips with their machine id, label (1 = anomalous) and anomaly kind (index into KINDS, -1)."""

    pcm: np.ndarray      # int16 [N, samples]
    machine: np.ndarray  # int64 [N], index into the machine ids
    label: np.ndarray    # int64 [N]
    kind: np.ndarray     # int64 [N]


def _plan(split: str, normals: int, anomalies: int, kinds: list[int]) -> np.ndarray:
    """Kind per clip: `normals` x -1, then `anomalies` spread evenly over `kinds` (none in train)."""
    if split == "train" or not kinds:
        return np.full(normals, -1, np.int64)
    spread = np.asarray(kinds, np.int64)[np.arange(anomalies) % len(kinds)]
    return np.concatenate([np.full(normals, -1, np.int64), np.sort(spread, kind="stable")])


def generate(machine_ids: list[str], counts: dict[str, tuple[int, int]], held_out: list[str], severity: float,
             seed: int, sample_rate: int, samples: int) -> dict[str, MachineSet]:
    """Every split: counts[split] = (normal clips, anomalous clips) per machine id. Validation anomalies use the
    kinds not in `held_out`; test anomalies use every kind."""
    seen = [i for i, kind in enumerate(KINDS) if kind not in held_out]
    result = {}
    for split_index, split in enumerate(SPLITS):
        normals, anomalies = counts[split]
        parts = []
        for machine_index, name in enumerate(machine_ids):
            kinds = _plan(split, normals, anomalies, seen if split == "val" else list(range(len(KINDS))))
            sev_rng = np.random.default_rng([seed, split_index, machine_index, 1])
            sev = np.where(kinds >= 0, severity * sev_rng.uniform(0.5, 1.0, len(kinds)), 0.0)
            pcm = clips(machine(name, seed), kinds, sev, (seed, split_index, machine_index), sample_rate, samples)
            parts.append(MachineSet(pcm, np.full(len(kinds), machine_index, np.int64),
                                    (kinds >= 0).astype(np.int64), kinds))
        result[split] = MachineSet(*(np.concatenate([getattr(p, f) for p in parts])
                                     for f in ("pcm", "machine", "label", "kind")))
    return result
