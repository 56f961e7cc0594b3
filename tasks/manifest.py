"""Tasks `manifest` and `check_manifest`: sha256 of every artifact, tool versions, resolved-config hash
(mcuforge/report/manifest.py), and the re-check of an existing build against it."""
from __future__ import annotations

from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import write_json
from mcuforge.core.paths import config_hash
from mcuforge.report.manifest import artifacts, build_manifest, check, inputs, model_entry, versions  # noqa: F401


def run(cfg: dict, paths) -> dict:
    manifest = build_manifest(paths.root, artifacts(cfg, paths), config_hash(cfg), model_entry(cfg))
    write_json(paths.manifest, manifest)
    return manifest


def check_action(paths) -> dict:
    """doit action: fail naming the changed artifacts."""
    problems = check(paths)
    if problems:
        raise McuforgeError("artifacts differ from manifest.json:\n  " + "\n  ".join(problems))
    print(f"manifest OK: every artifact under {paths.root} matches manifest.json")
    return {}
