"""Audio data sets: int16 PCM clips with labels, cached with a dataset card.

Kinds (`dataset.kind`): `speech_synth` (mcuforge/ml/speech_synth.py: keywords spoken by espeak-ng, test and
validation by unseen voices), `audio_folder` and `machine_sound_folder` (mcuforge/ml/audio_folders.py).

Interface for the data stage:
    load_audio(dataset, yaml_dir, seed) -> AudioDataset               (no cache)
    load_audio_cached(dataset, yaml_dir, seed, out_dir) -> AudioDataset (out_dir/audio.npz + card.json + card.md)
    read_audio_cache(out_dir) -> AudioDataset
    check_audio_available(dataset, yaml_dir)                         (cheap; raises DataError / ToolchainError)
An AudioDataset has, per split s in train / val / test: x_s int16 [N, clip_samples] (mono PCM at sample_rate), y_s
int64 [N] (index into classes), meta_s {column: array [N]} (speech_synth: voice, word, noise, snr_db, shift_ms,
speed, pitch; audio_folder: file, speaker, noise, snr_db; machine_sound_folder: file, machine_id, anomaly_kind).
The cache is keyed by the dataset section, the seed, the espeak-ng version (speech_synth) and the folder's file
names, sizes and modification times (folder kinds): any change regenerates it.
"""
from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mcuforge.core.errors import DataError
from mcuforge.core.io import dumps_json, read_json, sha256_file, write_json, write_npz, write_text
from mcuforge.ml.audio_folders import check_audio_folder, check_machine_folder, load_audio_folder, load_machine_folder

AUDIO_KINDS = ("audio_folder", "speech_synth", "machine_sound_folder")
SPLITS = ("train", "val", "test")
CACHE_VERSION = 1
CACHE_FILE = "audio.npz"


@dataclass
class AudioDataset:
    x_train: np.ndarray  # int16 [N, clip_samples]
    y_train: np.ndarray  # int64 [N]
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: list[str]
    sample_rate: int
    kind: str
    source: str
    meta_train: dict[str, np.ndarray] = field(default_factory=dict)
    meta_val: dict[str, np.ndarray] = field(default_factory=dict)
    meta_test: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict = field(default_factory=dict)

    @property
    def clip_samples(self) -> int:
        return int(self.x_train.shape[1])

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
        """(x, y, meta) of split `name` (train, val or test)."""
        return getattr(self, f"x_{name}"), getattr(self, f"y_{name}"), getattr(self, f"meta_{name}")


def _path(dataset: dict, yaml_dir: Path) -> Path:
    path = Path(dataset["path"]).expanduser()
    return path if path.is_absolute() else (Path(yaml_dir) / path).resolve()


def check_audio_available(dataset: dict, yaml_dir: Path) -> None:
    """Cheap checks at config time: the folder layout (folder kinds) or espeak-ng on PATH (speech_synth)."""
    kind = dataset["kind"]
    if kind == "speech_synth":
        from mcuforge.ml.speech_synth import check_synth

        check_synth(dataset)
    elif kind == "audio_folder":
        check_audio_folder(_path(dataset, yaml_dir), dataset["classes"])
    elif kind == "machine_sound_folder":
        check_machine_folder(_path(dataset, yaml_dir))
    else:
        raise DataError(f"dataset.kind {kind} is not an audio kind ({', '.join(AUDIO_KINDS)})")


def load_audio(dataset: dict, yaml_dir: Path, seed: int) -> AudioDataset:
    """Generate or read the clips of the dataset section (no cache)."""
    check_audio_available(dataset, yaml_dir)
    kind = dataset["kind"]
    started = time.monotonic()
    if kind == "speech_synth":
        from mcuforge.ml.speech_synth import generate

        out, source = generate(dataset, seed), "espeak-ng"
    elif kind == "audio_folder":
        out, source = load_audio_folder(_path(dataset, yaml_dir), dataset, seed), str(_path(dataset, yaml_dir))
    else:
        out, source = load_machine_folder(_path(dataset, yaml_dir), dataset, seed), str(_path(dataset, yaml_dir))
    arrays = {}
    for split in SPLITS:
        x, y, meta = out["splits"][split]
        arrays.update({f"x_{split}": x, f"y_{split}": y, f"meta_{split}": meta})
    for split, limit in (("train", dataset["max_train"]), ("test", dataset["max_test"])):
        if limit and len(arrays[f"y_{split}"]) > limit:  # seeded subsample, order kept (as ml/data.py does)
            keep = np.sort(np.random.default_rng(seed + 1).permutation(len(arrays[f"y_{split}"]))[:limit])
            arrays[f"x_{split}"], arrays[f"y_{split}"] = arrays[f"x_{split}"][keep], arrays[f"y_{split}"][keep]
            arrays[f"meta_{split}"] = {column: values[keep] for column, values in arrays[f"meta_{split}"].items()}
    if len(arrays["y_train"]) == 0 or len(arrays["y_test"]) == 0:
        raise DataError(f"dataset {kind} at {source}: the split leaves no "
                        f"{'training' if len(arrays['y_train']) == 0 else 'test'} clips; add files or change "
                        "test_fraction / val_fraction")
    info = dict(out["info"])
    info["generation_seconds"] = round(time.monotonic() - started, 2)
    return AudioDataset(classes=list(out["classes"]), sample_rate=dataset["sample_rate"], kind=kind, source=source,
                        info=info, **arrays)


def _fingerprint(root: Path) -> str:
    """Names, sizes and modification times of the folder's WAV and list files."""
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".wav", ".txt") and p.is_file()):
        stat = path.stat()
        digest.update(f"{path.relative_to(root)}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()


def cache_key(dataset: dict, yaml_dir: Path, seed: int) -> str:
    """sha256 over what determines the clips (see the module docstring)."""
    parts = {"dataset": dataset, "seed": seed, "version": CACHE_VERSION}
    if dataset["kind"] == "speech_synth":
        from mcuforge.toolchain.espeak import espeak_version

        parts["espeak_ng"] = espeak_version()
    else:
        parts["files"] = _fingerprint(_path(dataset, yaml_dir))
    return hashlib.sha256(dumps_json(parts).encode()).hexdigest()


def _card(data: AudioDataset, key: str) -> dict:
    card = {
        "kind": data.kind,
        "source": data.source,
        "classes": data.classes,
        "sample_rate": data.sample_rate,
        "clip_samples": data.clip_samples,
        "clip_ms": 1000.0 * data.clip_samples / data.sample_rate,
        "layout": "x: int16 PCM [N, clip_samples], mono; y: int64 class index",
        "counts": {split: {"total": int(len(data.split(split)[1])),
                           "per_class": {name: int((data.split(split)[1] == i).sum())
                                         for i, name in enumerate(data.classes)}}
                   for split in SPLITS},
        "info": {k: v for k, v in data.info.items() if not k.endswith("_seconds")},
        "cache_key": key,
    }
    for column in ("voice", "speaker", "machine_id"):
        if any(column in data.split(split)[2] for split in SPLITS):
            card[f"{column}s"] = {split: sorted({str(v) for v in data.split(split)[2].get(column, [])} - {""})
                                  for split in SPLITS}
    return card


def _markdown(card: dict, seconds: float) -> str:
    lines = [f"# Dataset card: {card['kind']}", "",
             f"Source: {card['source']}. {card['sample_rate']} Hz, {card['clip_ms']:g} ms clips "
             f"({card['clip_samples']} samples, int16 mono). Generated or read in {seconds:.1f} s.", "",
             "| class | " + " | ".join(SPLITS) + " |", "|---|" + "---:|" * len(SPLITS)]
    for name in card["classes"]:
        lines.append(f"| {name} | " + " | ".join(str(card["counts"][s]["per_class"][name]) for s in SPLITS) + " |")
    lines.append("| **total** | " + " | ".join(str(card["counts"][s]["total"]) for s in SPLITS) + " |")
    for column in ("voices", "speakers", "machine_ids"):
        if column in card:
            lines += ["", f"{column.replace('_', ' ').capitalize()} per split:"]
            for split in SPLITS:
                values = card[column][split]
                shown = ", ".join(values[:12]) + (f", ... ({len(values)} in all)" if len(values) > 12 else "")
                lines.append(f"- {split} ({len(values)}): {shown}")
    return "\n".join(lines) + "\n"


def write_audio_cache(data: AudioDataset, out_dir: Path, key: str) -> dict:
    """out_dir/audio.npz (deterministic bytes), card.json, card.md and timing.json; returns the card."""
    arrays = {}
    for split in SPLITS:
        x, y, meta = data.split(split)
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y
        arrays.update({f"meta.{split}.{column}": values for column, values in meta.items()})
    write_npz(out_dir / CACHE_FILE, arrays)
    card = _card(data, key)
    card["sha256"] = {CACHE_FILE: sha256_file(out_dir / CACHE_FILE)}
    seconds = float(data.info.get("generation_seconds", 0.0))
    timing = {k: v for k, v in data.info.items() if k.endswith("_seconds")}
    write_json(out_dir / "timing.json", timing)  # kept out of the card, so the card's bytes are reproducible
    write_text(out_dir / "card.md", _markdown(card, seconds))
    write_json(out_dir / "card.json", card)  # last: its presence marks a complete cache
    return card


def read_audio_cache(out_dir: Path) -> AudioDataset:
    card = read_json(out_dir / "card.json")
    arrays: dict = {f"meta_{split}": {} for split in SPLITS}
    with np.load(out_dir / CACHE_FILE, allow_pickle=False) as npz:
        for name in npz.files:
            if name.startswith("meta."):
                _, split, column = name.split(".", 2)
                arrays[f"meta_{split}"][column] = npz[name]
            else:
                arrays[name] = npz[name]
    return AudioDataset(classes=card["classes"], sample_rate=card["sample_rate"], kind=card["kind"],
                        source=card["source"], info=card["info"], **arrays)


def load_audio_cached(dataset: dict, yaml_dir: Path, seed: int, out_dir: Path) -> AudioDataset:
    """The cached data set when out_dir holds one with the same key, else generated (or read) and cached."""
    key = cache_key(dataset, yaml_dir, seed)
    card_path = out_dir / "card.json"
    if card_path.is_file() and (out_dir / CACHE_FILE).is_file() and read_json(card_path).get("cache_key") == key:
        return read_audio_cache(out_dir)
    data = load_audio(dataset, yaml_dir, seed)
    write_audio_cache(data, out_dir, key)
    return data
