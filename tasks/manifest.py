"""Tasks `manifest` and `check_manifest`: sha256 of every artifact, tool versions, resolved-config hash
(mcuforge/report/manifest.py), and the re-check of an existing build against it."""
from __future__ import annotations

import json

from mcuforge.core.errors import DataError, VerificationError
from mcuforge.core.io import write_json
from mcuforge.core.paths import config_hash
from mcuforge.report.manifest import artifacts, build_manifest, check, inputs, model_entry, versions  # noqa: F401


def run(cfg: dict, paths) -> dict:
    manifest = build_manifest(paths.root, artifacts(cfg, paths), config_hash(cfg), model_entry(cfg))
    write_json(paths.manifest, manifest)
    return manifest


def check_action(paths) -> dict:
    """doit action: fail naming the changed artifacts (an input error when there is no readable manifest)."""
    _readable_manifest(paths)
    problems = check(paths)
    if problems:
        raise VerificationError("artifacts differ from manifest.json:\n  " + "\n  ".join(problems))
    print(f"manifest OK: every artifact under {paths.root} matches manifest.json")
    return {}


def _readable_manifest(paths) -> None:
    """DataError unless manifest.json exists and is a JSON object with an `artifacts` mapping."""
    where = paths.manifest
    if not where.is_file():
        raise DataError(f"{where}: no manifest: this build directory was never completed "
                         "(run `doit run pipeline=<yaml> build=<dir>` first)")
    try:
        manifest = json.loads(where.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{where}: corrupt manifest ({exc}); rebuild with `doit run`") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("artifacts"), dict):
        raise DataError(f"{where}: corrupt manifest (no 'artifacts' mapping); rebuild with `doit run`")
