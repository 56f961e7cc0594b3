"""Task `search`: the fixed `search.model`, or the TinyNAS search's winner (mcuforge/ml/search.py), as search/arch.json."""
from __future__ import annotations

from mcuforge.core.io import write_json
from mcuforge.ml import anomaly_stages, archgraph
from mcuforge.ml.latency import MODEL_FILE as LATENCY_MODEL  # noqa: F401  (dodo.py: a file_dep of the search)
from mcuforge.ml.search import budgets, run_search, search_outputs  # noqa: F401  (dodo.py reads them)
from schemas.arch import ArchSpec


def run(cfg: dict, paths) -> dict:
    if cfg.get("autoencoder"):
        return anomaly_stages.run_search(cfg, paths)
    if cfg["search"]["model"] is None:
        return run_search(cfg, paths)
    spec = ArchSpec.model_validate(cfg["search"]["model"])
    cost = archgraph.cost(spec)
    write_json(paths.arch, spec.model_dump(mode="json"))
    return {"macs": cost.macs, "params": cost.params}
