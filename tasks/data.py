"""Task `data`: load the configured dataset (mcuforge/ml/data.py; audio through the front end:
mcuforge/ml/audio_data.py + audio_features.py) and cache it under build/<name>/data/."""
from __future__ import annotations

from mcuforge.core.io import read_json, write_json, write_npy
from mcuforge.core.paths import ROOT
from mcuforge.ml import anomaly_stages
from mcuforge.ml.data import (AUDIO_KINDS, FASHION_FILES, SPLITS, load, num_classes,  # noqa: F401  (dodo.py reads them)
                              write_cache)


def run(cfg: dict, paths) -> dict:
    """Stage `data`: load the configured dataset and cache it under build/<name>/data/ with its card."""
    if cfg.get("autoencoder"):
        return anomaly_stages.run_data(cfg, paths)
    yaml_dir = (ROOT / cfg["resolved"]["pipeline_file"]).parent
    if cfg["dataset"]["kind"] in AUDIO_KINDS:
        return _audio(cfg, paths, yaml_dir)
    dataset = load(cfg["dataset"], yaml_dir, cfg["seed"])
    return write_cache(dataset, paths.data, num_classes(cfg))


def _audio(cfg: dict, paths, yaml_dir) -> dict:
    """Clips (generated or read, cached under data/clips/) -> the front end's int8 features as the network's input;
    the test clips' PCM is kept for verify (data/pcm_test.npy) and the front end's quantization in the card."""
    from mcuforge.ml.audio_data import load_audio_cached
    from mcuforge.ml.audio_features import feature_dataset
    from schemas.frontend import FrontendConfig

    dataset = cfg["dataset"]
    audio = load_audio_cached(dataset, yaml_dir, cfg["seed"], paths.data / "clips")
    frontend = FrontendConfig(**cfg["frontend"])
    data, pcm_test, facts = feature_dataset(audio, frontend, dataset["max_train"], dataset["max_test"], cfg["seed"])
    write_npy(paths.pcm_test, pcm_test)
    card = write_cache(data, paths.data, num_classes(cfg))
    card["frontend"] = facts
    card["clips"] = read_json(paths.data / "clips" / "card.json")
    write_json(paths.card, card)
    return card
