"""`dataset.kind: machine_sound_folder`: a DCASE / ToyADMOS / MIMII-style folder of machine sounds.

Layout: `train/normal/*.wav` (normal clips only) and `test/normal/*.wav`, `test/anomaly/*.wav`; optionally
`val/normal` and `val/anomaly` (without them, validation is a seeded half of each machine id's test clips and test
the other half). A file name containing `id_<digits>` (DCASE: `normal_id_00_00000000.wav`) gives the machine id,
else every file is machine `all`. Clips are mono 16-bit PCM at the front end's rate; each is cut or zero-padded
to the front end's clip length.

STAND-IN (branch `anomaly`) until the shared WAV reader (resampling, more sample formats) lands: it reads with the
standard library's `wave` and refuses what it cannot read, naming the file.
"""
from __future__ import annotations

import re
import wave
from pathlib import Path

import numpy as np

from mcuforge.core.errors import McuforgeError

LAYOUT = "train/normal/*.wav, test/normal/*.wav and test/anomaly/*.wav (optionally val/normal and val/anomaly)"
_ID = re.compile(r"id_\d+")


def _wavs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("*") if p.suffix.lower() == ".wav") if folder.is_dir() else []


def check(root: Path) -> None:
    """Cheap layout check (when the config is loaded): one message naming the folder that is missing or empty."""
    if not root.is_dir():
        raise McuforgeError(f"dataset.path: machine sound folder {root} does not exist. It must hold {LAYOUT} "
                            "(the DCASE / MIMII / ToyADMOS layout); point to it with dataset.path=<folder>.")
    for sub, what in (("train/normal", "normal training clips"), ("test/normal", "normal test clips"),
                      ("test/anomaly", "anomalous test clips")):
        if not _wavs(root / sub):
            raise McuforgeError(f"dataset.path: {root / sub} has no .wav files ({what}); the folder must hold "
                                f"{LAYOUT}")
    if (root / "val").is_dir() and not (_wavs(root / "val/normal") and _wavs(root / "val/anomaly")):
        raise McuforgeError(f"dataset.path: {root / 'val'} exists but lacks .wav files in normal/ or anomaly/")


def read_wav(path: Path, sample_rate: int, samples: int) -> np.ndarray:
    """int16 [samples] of a mono 16-bit WAV at `sample_rate`, cut or zero-padded."""
    try:
        with wave.open(str(path), "rb") as wav:
            channels, width, rate = wav.getnchannels(), wav.getsampwidth(), wav.getframerate()
            raw = wav.readframes(min(wav.getnframes(), samples))
    except (wave.Error, EOFError, OSError, RuntimeError) as exc:  # RuntimeError: a truncated chunk (wave.py)
        raise McuforgeError(f"dataset.path: cannot read {path}: {exc} (a WAV file, mono, 16-bit PCM)") from None
    if channels != 1 or width != 2 or rate != sample_rate:
        raise McuforgeError(f"dataset.path: {path} is {channels} channel(s), {8 * width}-bit, {rate} Hz; need mono "
                            f"16-bit PCM at frontend.sample_rate ({sample_rate} Hz)")
    pcm = np.frombuffer(raw, dtype="<i2").astype(np.int16)
    return np.pad(pcm, (0, samples - len(pcm)))


def machine_id(path: Path) -> str:
    found = _ID.search(path.name)
    return found.group(0) if found else "all"


def read(root: Path, sample_rate: int, samples: int, seed: int) -> tuple[dict, list[str]]:
    """{split: (pcm int16 [N, samples], machine index, label)} for train, val, test, and the machine ids."""
    check(root)
    files = {(split, label): _wavs(root / split / name) for split in ("train", "val", "test")
             for label, name in ((0, "normal"), (1, "anomaly"))}
    ids = sorted({machine_id(p) for group in files.values() for p in group})
    if not (root / "val").is_dir():  # a seeded half of each machine id's test clips becomes validation
        rng = np.random.default_rng(seed)
        for label in (0, 1):
            test, val = [], []
            for name in ids:
                mine = [p for p in files[("test", label)] if machine_id(p) == name]
                order = rng.permutation(len(mine))
                val += [mine[i] for i in sorted(order[: len(mine) // 2])]
                test += [mine[i] for i in sorted(order[len(mine) // 2:])]
            files[("val", label)], files[("test", label)] = val, test
    result = {}
    for split in ("train", "val", "test"):
        paths = files[(split, 0)] + files[(split, 1)]
        pcm = np.stack([read_wav(p, sample_rate, samples) for p in paths]) if paths else np.zeros((0, samples), np.int16)
        result[split] = (pcm, np.array([ids.index(machine_id(p)) for p in paths], np.int64),
                         np.array([0] * len(files[(split, 0)]) + [1] * len(files[(split, 1)]), np.int64))
    return result, ids
