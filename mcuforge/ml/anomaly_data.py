"""Anomaly detection data: machine sound clips -> the front end's int8 features, cached per split with labels.

Cache (build/<name>/data/): `x_<split>.npy` int8 features [N, frames, features] (the front end's output: the bytes
the device sees), `y_<split>.npy` labels (1 = anomalous), `machine_<split>.npy` machine id index, `kind_<split>.npy`
anomaly kind index (-1 = normal) for split in train, val, test; `pcm_test.npy`: int16 [P, clip_samples], the raw PCM
of at most PCM_POOL test clips spread over the split (`card.json` "pcm_test_clips" gives their indices), which
verify feeds the device's front end; `card.json`: the features' scale and zero point, machine ids, kinds, counts per
split, machine and kind, sha256 of every array.

The network's input is one vector of `frames` consecutive feature frames (frames x features values, contiguous in
the [frames, features] layout), dequantised: real = scale x (q - zero_point). A clip of F frames gives
F - frames + 1 vectors.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mcuforge.audio import features, machine_synth
from mcuforge.core.io import read_json, sha256_file, write_json, write_npy

SPLITS = ("train", "val", "test")
ARRAYS = ("x", "y", "machine", "kind")
PCM_POOL = 64  # test clips whose raw PCM is kept for verify (the device runs the front end on them)


@dataclass
class AnomalyData:
    x: dict[str, np.ndarray]        # int8 [N, frames, features] per split
    y: dict[str, np.ndarray]        # int64 [N], 1 = anomalous
    machine: dict[str, np.ndarray]  # int64 [N]
    kind: dict[str, np.ndarray]     # int64 [N], index into kinds, -1 = normal
    scale: float
    zero_point: int
    machine_ids: list[str]
    kinds: list[str]
    pcm_test: np.ndarray | None = None  # int16 [P, samples]: the test clips of pcm_pool(len(test)), for verify


def pcm_pool(total: int) -> np.ndarray:
    """Indices of the test clips whose PCM is kept: at most PCM_POOL, evenly spread (every machine id, both labels)."""
    return np.unique(np.linspace(0, total - 1, min(PCM_POOL, total)).round().astype(np.int64))


def frontend_model(cfg: dict):
    """The resolved config's `frontend` section as the schema model (for mcuforge.audio.features)."""
    from schemas.frontend import FrontendConfig

    return FrontendConfig.model_validate(cfg["frontend"])


def feature_quant(frontend, train_pcm: np.ndarray) -> tuple[float, int]:
    """The front end's output_scale/zero point, or the training features' range with 0 in it over int8: the rule of
    the classifiers' features (audio_features.quantization)."""
    from mcuforge.ml.audio_features import quantization

    return quantization(train_pcm, frontend)


def _from_folder(cfg: dict, frontend) -> AnomalyData:
    """A machine_sound_folder (mcuforge/ml/audio_folders.py, the one reader of the layout) at the front end's rate
    and clip length; a file name without id_<n> is machine `all`."""
    from mcuforge.core.paths import ROOT
    from mcuforge.ml.audio_folders import load_machine_folder
    from mcuforge.ml.data import dataset_path

    root = dataset_path(cfg["dataset"], (ROOT / cfg["resolved"]["pipeline_file"]).parent)
    dataset = {**cfg["dataset"], "sample_rate": frontend.sample_rate, "clip_ms": frontend.clip_ms}
    folder = load_machine_folder(root, dataset, cfg["seed"])
    ids = [name or "all" for name in folder["info"]["machine_ids"]]
    splits = folder["splits"]
    scale, zp = feature_quant(frontend, splits["train"][0])
    data = AnomalyData({}, {}, {}, {}, scale, zp, ids, ["anomaly"])
    for split, (pcm, label, meta) in splits.items():
        data.x[split] = features.extract(pcm, frontend, scale, zp)
        machine = [ids.index(name or "all") for name in meta.get("machine_id", np.array([], str))]
        data.y[split], data.machine[split] = label, np.asarray(machine, dtype=np.int64)
        data.kind[split] = np.where(label == 1, 0, -1)
    test_pcm = splits["test"][0]
    data.pcm_test = np.ascontiguousarray(test_pcm[pcm_pool(len(test_pcm))], dtype=np.int16)
    return data


def build(cfg: dict) -> AnomalyData:
    """Generate machine_synth clips (or read a machine_sound_folder) for every split and run the front end."""
    frontend = frontend_model(cfg)
    if cfg["dataset"]["kind"] == "machine_sound_folder":
        return _from_folder(cfg, frontend)
    synth = cfg["dataset"]["machine_synth"]
    counts = {"train": (synth["train_clips"], 0), "val": (synth["val_clips"], synth["val_clips"]),
              "test": (synth["test_clips"], synth["test_clips"])}
    sets = machine_synth.generate(synth["machine_ids"], counts, synth["held_out_kinds"], synth["severity"],
                                  cfg["seed"], frontend.sample_rate, frontend.clip_samples)
    scale, zp = feature_quant(frontend, sets["train"].pcm)
    data = AnomalyData({}, {}, {}, {}, scale, zp, list(synth["machine_ids"]), list(machine_synth.KINDS))
    for split in SPLITS:
        data.x[split] = features.extract(sets[split].pcm, frontend, scale, zp)
        data.y[split], data.machine[split], data.kind[split] = sets[split].label, sets[split].machine, sets[split].kind
    data.pcm_test = np.ascontiguousarray(sets["test"].pcm[pcm_pool(len(sets["test"].pcm))], dtype=np.int16)
    return data


def write_cache(data: AnomalyData, out_dir: Path, source: str) -> dict:
    for split in SPLITS:
        for name in ARRAYS:
            write_npy(out_dir / f"{name}_{split}.npy", getattr(data, name)[split])
    pcm_files = []
    if data.pcm_test is not None:
        write_npy(out_dir / "pcm_test.npy", data.pcm_test)
        pcm_files = ["pcm_test.npy"]
    card = {
        "source": source,
        "layout": "x: int8 [clips, frames, features], the front end's output; real = scale * (q - zero_point)",
        "feature_scale": data.scale,
        "feature_zero_point": data.zero_point,
        "shape": list(data.x["train"].shape[1:]),
        "machine_ids": data.machine_ids,
        "kinds": data.kinds,
        "counts": {split: {"normal": int((data.y[split] == 0).sum()), "anomalous": int((data.y[split] == 1).sum()),
                           "per_machine_id": {m: int((data.machine[split] == i).sum())
                                              for i, m in enumerate(data.machine_ids)},
                           "per_kind": {k: int((data.kind[split] == i).sum()) for i, k in enumerate(data.kinds)}}
                   for split in SPLITS},
        "pcm_test_clips": pcm_pool(len(data.y["test"])).tolist() if data.pcm_test is not None else [],
        "sha256": {**{f"{n}_{s}.npy": sha256_file(out_dir / f"{n}_{s}.npy") for s in SPLITS for n in ARRAYS},
                   **{name: sha256_file(out_dir / name) for name in pcm_files}},
    }
    write_json(out_dir / "card.json", card)
    return card


def read_cache(data_dir: Path) -> AnomalyData:
    card = read_json(data_dir / "card.json")
    arrays = {name: {split: np.load(data_dir / f"{name}_{split}.npy", allow_pickle=False) for split in SPLITS}
              for name in ARRAYS}
    return AnomalyData(**arrays, scale=card["feature_scale"], zero_point=card["feature_zero_point"],
                       machine_ids=card["machine_ids"], kinds=card["kinds"])


def vectors(x: np.ndarray, frames: int) -> np.ndarray:
    """int8 [N, F, M] -> int8 [N, F - frames + 1, frames * M]: every window of `frames` consecutive frames."""
    n, total, m = x.shape
    count = total - frames + 1
    index = np.arange(count)[:, None] + np.arange(frames)[None, :]
    return x[:, index, :].reshape(n, count, frames * m)


def dequantize(q: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """float32 real values of int8 q, as the network sees them: float32(q - zero_point) * float32(scale)."""
    return (q.astype(np.float32) - np.float32(zero_point)) * np.float32(scale)
