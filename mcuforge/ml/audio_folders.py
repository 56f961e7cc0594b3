"""Audio data sets read from folders of WAV files: `audio_folder` (keywords) and `machine_sound_folder` (anomalies).

`audio_folder` (Google Speech Commands layout): one sub-folder of WAV files per class. Splits: the lists
`validation_list.txt` and `testing_list.txt` (paths relative to the folder) when present, else a seeded split **by
speaker** (the part of a file name before `_nohash_`; a file without it is its own speaker) with test_fraction and
val_fraction of the speakers. A class `unknown` without its own folder pools the other word folders (seeded subsample
to the median size of the named classes); a class `silence` without its own folder is cut from the recordings of
`_background_noise_/` (random offset, gain uniform in [0, 1]; that many clips, dealt to the splits by the fractions).
With probability noise_prob a **training** clip gets a random stretch of a `_background_noise_` file mixed in at an
SNR drawn from snr_db; validation and test clips are left as recorded.

`machine_sound_folder` (DCASE / MIMII / ToyADMOS): `train/normal/*.wav`, `test/normal/*.wav`, `test/anomaly/*.wav`
(or flat `train/` and `test/` folders whose file names start with `normal_` / `anomaly_`, as in DCASE 2020). Labels
0 = normal, 1 = anomaly; the machine id is read from `id_<n>` in the file name. Validation is `val/normal` and
`val/anomaly` when the folder has them, else a seeded val_fraction of the test clips (stratified by label and machine
id); training is normal clips only. The one reader of this layout: the classifier data sets (audio_data.py) and the
anomaly pipelines (anomaly_data.py) both read it here.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from mcuforge.audio.mix import mix_at_snr, rms
from mcuforge.audio.wav import fit_length, load_clip, read_wav, resample, to_int16
from mcuforge.core.errors import DataError

BACKGROUND = "_background_noise_"
SPLIT_LISTS = {"val": "validation_list.txt", "test": "testing_list.txt"}
SPLITS = ("train", "val", "test")
MACHINE_CLASSES = ["normal", "anomaly"]


def wav_files(folder: Path) -> list[Path]:
    """The .wav files of a folder, sorted; a .wav entry that is a broken or looping symbolic link, or a folder, is a
    DataError naming it (never skipped without a word)."""
    files = []
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".wav":
            continue
        if path.is_symlink() and not path.exists():
            raise DataError(f"dataset.path: {path}: broken or looping symbolic link")
        if path.is_dir():
            raise DataError(f"dataset.path: {path} is a directory, not a WAV file")
        files.append(path)
    return files


def speaker_of(path: Path) -> str:
    """Speech Commands names files `<speaker>_nohash_<n>.wav`; other files are their own speaker."""
    return path.name.split("_nohash_")[0] if "_nohash_" in path.name else f"{path.parent.name}/{path.stem}"


def _require_folder(path: Path, what: str) -> None:
    if not path.is_dir():
        raise DataError(f"dataset.path: {path} does not exist ({what})")


def check_audio_folder(root: Path, wanted: list[str]) -> tuple[list[str], dict[str, list[Path]]]:
    """The classes and each one's WAV files (unknown: the pooled other folders; silence without a folder: [])."""
    _require_folder(root, "audio_folder needs one sub-folder of WAV files per class, e.g. yes/ no/ ... "
                          "as in Google Speech Commands")
    present = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("_"))
    classes = list(wanted) or present
    missing = [c for c in classes if c not in present and c not in ("unknown", "silence")]
    if missing or len(classes) < 2:
        raise DataError(f"dataset.path: {root} must hold one sub-folder of WAV files per class; " + (
            f"missing {', '.join(missing)} (found: {', '.join(present) or 'no sub-folders'})" if missing
            else f"found {len(present)} class folder(s): {present}"))
    files = {}
    for name in classes:
        if name in present:
            files[name] = wav_files(root / name)
            if not files[name]:
                raise DataError(f"dataset.path: class folder {root / name} holds no WAV files")
        elif name == "unknown":
            others = [p for p in present if p not in classes]
            files[name] = [f for other in others for f in wav_files(root / other)]
            if not files[name]:
                raise DataError(f"dataset.classes: 'unknown' has no folder and no other word folders in {root} to pool")
        else:
            files[name] = []
            if not (root / BACKGROUND).is_dir() or not wav_files(root / BACKGROUND):
                raise DataError(f"dataset.classes: 'silence' has no folder and {root / BACKGROUND} holds no WAV files "
                                "to cut silence clips from")
    return classes, files


def _fraction_split(keys: list[str], test_fraction: float, val_fraction: float, rng) -> dict[str, str]:
    order = [keys[i] for i in rng.permutation(len(keys))]
    n_test = max(1, round(len(order) * test_fraction)) if len(order) > 1 else 0
    n_val = round(len(order) * val_fraction)
    return {key: "test" if i < n_test else "val" if i < n_test + n_val else "train" for i, key in enumerate(order)}


def _assign(root: Path, files: dict[str, list[Path]], dataset: dict, seed: int) -> dict[Path, str]:
    lists = {split: root / name for split, name in SPLIT_LISTS.items()}
    if any(path.is_file() for path in lists.values()):
        listed = {}
        for split, path in lists.items():
            if path.is_file():
                for line in path.read_text().split():
                    listed[(root / line).resolve()] = split
        return {f: listed.get(f.resolve(), "train") for names in files.values() for f in names}
    speakers = sorted({speaker_of(f) for names in files.values() for f in names})
    split_of = _fraction_split(speakers, dataset["test_fraction"], dataset["val_fraction"],
                               np.random.default_rng([seed, 11]))
    return {f: split_of[speaker_of(f)] for names in files.values() for f in names}


def _backgrounds(root: Path, rate: int) -> list[tuple[str, np.ndarray]]:
    folder = root / BACKGROUND
    if not folder.is_dir():
        return []
    out = []
    for path in wav_files(folder):
        samples, source_rate = read_wav(path)
        out.append((path.name, resample(samples, source_rate, rate)))
    return out


def _stretch(noise: np.ndarray, length: int, rng) -> np.ndarray:
    if len(noise) < length:
        noise = np.tile(noise, -(-length // len(noise)))
    start = int(rng.integers(0, len(noise) - length + 1))
    return noise[start: start + length].astype(np.float64)


def load_audio_folder(root: Path, dataset: dict, seed: int) -> dict:
    """{"splits": {split: (x int16 [N, clip], y int64 [N], meta)}, "classes", "info"} of an audio_folder."""
    classes, files = check_audio_folder(root, dataset["classes"])
    rate, clip = dataset["sample_rate"], round(dataset["clip_ms"] * dataset["sample_rate"] / 1000)
    if "unknown" in files and not (root / "unknown").is_dir():
        named = [len(v) for k, v in files.items() if k not in ("unknown", "silence")]
        keep = int(np.median(named)) if named else len(files["unknown"])
        pool = files["unknown"]
        if len(pool) > keep:
            pick = np.sort(np.random.default_rng([seed, 12]).permutation(len(pool))[:keep])
            files["unknown"] = [pool[i] for i in pick]
    split_of = _assign(root, files, dataset, seed)
    backgrounds = _backgrounds(root, rate)
    rows = {split: [] for split in SPLITS}
    rng = np.random.default_rng([seed, 13])
    for label, name in enumerate(classes):
        for path in files[name]:
            split = split_of[path]
            pcm = load_clip(path, rate, clip)
            meta = {"file": str(path.relative_to(root)), "speaker": speaker_of(path), "noise": "none", "snr_db": np.nan}
            if split == "train" and backgrounds and rng.random() < dataset["noise_prob"]:
                noise_name, noise = backgrounds[int(rng.integers(len(backgrounds)))]
                snr = float(rng.uniform(*dataset["snr_db"]))
                level = rms(pcm[np.abs(pcm) > 0]) if np.any(pcm) else 0.0
                pcm = to_int16(mix_at_snr(pcm, _stretch(noise, clip, rng), snr, signal_rms=level))
                meta.update(noise=noise_name, snr_db=snr)
            rows[split].append((pcm, label, meta))
    if "silence" in classes and not (root / "silence").is_dir():
        named = [len(v) for k, v in files.items() if k != "silence"]
        count = int(np.median(named))
        silence_split = _fraction_split([str(i) for i in range(count)], dataset["test_fraction"],
                                        dataset["val_fraction"], np.random.default_rng([seed, 14]))
        srng = np.random.default_rng([seed, 15])
        for index in range(count):
            noise_name, noise = backgrounds[int(srng.integers(len(backgrounds)))]
            pcm = to_int16(_stretch(noise, clip, srng) * srng.uniform(0.0, 1.0))
            meta = {"file": f"{BACKGROUND}/{noise_name}", "speaker": "", "noise": noise_name, "snr_db": np.nan}
            rows[silence_split[str(index)]].append((pcm, classes.index("silence"), meta))
    info = {"background_files": [name for name, _ in backgrounds],
            "split_rule": "lists" if any((root / n).is_file() for n in SPLIT_LISTS.values()) else "speaker"}
    return {"splits": {split: stack_rows(rows[split], clip) for split in SPLITS}, "classes": classes, "info": info}


def machine_id(path: Path) -> str:
    match = re.search(r"id_(\d+)", path.name)
    return f"id_{match.group(1)}" if match else ""


def _machine_files(root: Path, split: str, label: str) -> list[Path]:
    folder = root / split / label
    if folder.is_dir():
        return wav_files(folder)
    flat = root / split
    return [p for p in wav_files(flat) if p.name.startswith(f"{label}_")] if flat.is_dir() else []


def check_machine_folder(root: Path) -> dict[tuple[str, str], list[Path]]:
    _require_folder(root, "machine_sound_folder needs train/normal/*.wav, test/normal/*.wav and test/anomaly/*.wav "
                          "(DCASE / MIMII / ToyADMOS layout)")
    found = {}
    for split, label in (("train", "normal"), ("test", "normal"), ("test", "anomaly")):
        found[(split, label)] = _machine_files(root, split, label)
        if not found[(split, label)]:
            raise DataError(f"dataset.path: no {label} WAV files for {split} in {root / split / label} (nor "
                            f"{root / split}/{label}_*.wav): machine_sound_folder needs normal training clips and "
                            "normal and anomalous test clips")
    if (root / "val").is_dir():
        for label in MACHINE_CLASSES:
            found[("val", label)] = _machine_files(root, "val", label)
            if not found[("val", label)]:
                raise DataError(f"dataset.path: {root / 'val'} exists but has no {label} WAV files "
                                f"({root / 'val' / label}): give validation both normal and anomalous clips, or "
                                "remove it (validation is then a share of the test clips)")
    return found


def load_machine_folder(root: Path, dataset: dict, seed: int) -> dict:
    """{"splits", "classes": ["normal", "anomaly"], "info"} of a machine_sound_folder."""
    found = check_machine_folder(root)
    rate, clip = dataset["sample_rate"], round(dataset["clip_ms"] * dataset["sample_rate"] / 1000)
    rows = {split: [] for split in SPLITS}
    rng = np.random.default_rng([seed, 21])
    own_val = ("val", "normal") in found
    for (split, label), paths in found.items():
        if split == "test" and not own_val:  # validation: a val_fraction of each (label, machine id) group
            groups: dict[str, list[Path]] = {}
            for path in paths:
                groups.setdefault(machine_id(path), []).append(path)
            val = set()
            for key in sorted(groups):
                group = groups[key]
                take = round(len(group) * dataset["val_fraction"])
                val.update(group[i] for i in rng.permutation(len(group))[:take])
        for path in paths:
            target = "val" if split == "test" and not own_val and path in val else split
            meta = {"file": str(path.relative_to(root)), "machine_id": machine_id(path), "anomaly_kind": ""}
            rows[target].append((load_clip(path, rate, clip), MACHINE_CLASSES.index(label), meta))
    ids = sorted({machine_id(p) for paths in found.values() for p in paths})
    return {"splits": {split: stack_rows(rows[split], clip) for split in SPLITS}, "classes": list(MACHINE_CLASSES),
            "info": {"machine_ids": ids}}


def stack_rows(rows: list, clip: int) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """[(int16 clip, label, {column: value})] -> (x int16 [N, clip], y int64 [N], {column: array [N]})."""
    x = np.stack([fit_length(r[0], clip) for r in rows]) if rows else np.zeros((0, clip), dtype=np.int16)
    y = np.asarray([r[1] for r in rows], dtype=np.int64)
    columns = sorted({key for r in rows for key in r[2]})
    meta = {}
    for column in columns:
        values = [r[2].get(column, "") for r in rows]
        numeric = all(isinstance(v, (int, float, np.floating, np.integer)) for v in values)
        meta[column] = np.asarray(values, dtype=np.float64 if numeric else str)
    return x, y, meta
