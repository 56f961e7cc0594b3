"""Stage `search`: produce `search/arch.json`. For now the architecture is fixed by `search.model`."""
from __future__ import annotations

from schemas.arch import ArchSpec

from .io import write_json
from .model import count_macs_params


def run(cfg: dict, paths) -> dict:
    spec = ArchSpec.model_validate(cfg["search"]["model"])
    macs, params = count_macs_params(spec)
    arch = spec.model_dump(mode="json")
    write_json(paths.arch, arch)
    return {"macs": macs, "params": params}
