"""Task `data`: load the configured dataset (mcuforge/ml/data.py) and cache it under build/<name>/data/."""
from __future__ import annotations

from mcuforge.core.paths import ROOT
from mcuforge.ml import anomaly_stages
from mcuforge.ml.data import FASHION_FILES, SPLITS, load, num_classes, write_cache  # noqa: F401  (dodo.py reads them)


def run(cfg: dict, paths) -> dict:
    """Stage `data`: load the configured dataset and cache it under build/<name>/data/ with its card."""
    if cfg.get("autoencoder"):
        return anomaly_stages.run_data(cfg, paths)
    yaml_dir = (ROOT / cfg["resolved"]["pipeline_file"]).parent
    dataset = load(cfg["dataset"], yaml_dir, cfg["seed"])
    return write_cache(dataset, paths.data, num_classes(cfg))
