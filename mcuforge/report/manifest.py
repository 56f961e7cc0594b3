"""Stage `manifest`: sha256 of every artifact, versions of the tools, hash of the resolved config. No timestamps.

A pipeline given a ready model (deploy.model) reads it from outside the build: the manifest records it under "model"
(its path as the YAML gives it, the file it resolved to, sha256 and size), and `check` names it when it changed."""
from __future__ import annotations

import platform
import sys
from importlib import metadata
from pathlib import Path

from mcuforge.core.io import read_json, sha256_file
from mcuforge.core.paths import absolute
from mcuforge.ml.data import SPLITS
from mcuforge.ml.threads import cpu_record
from mcuforge.toolchain import tool_versions

PACKAGES = ("torch", "onnx", "onnxruntime", "numpy", "scikit-learn", "pydantic", "doit", "matplotlib", "tflite",
            "tflite-micro")


def versions() -> dict[str, str | None]:
    """The manifest's "tools": Python, the PACKAGES' installed versions, then the external tools' (tool_versions);
    None for what is not installed."""
    found: dict[str, str | None] = {"python": platform.python_version()}
    for package in PACKAGES:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = None
    found.update(tool_versions())
    return found


def artifacts(cfg: dict, paths) -> list[Path]:
    """The pipeline's artifacts (not the CMake build trees, whose caches hold absolute paths)."""
    files = [paths.config, paths.card, *(paths.data_file(k) for k in SPLITS), paths.arch, paths.fp32,
             paths.train_metrics, paths.int8, paths.quant_metrics, paths.plan, paths.plan_txt, paths.memory_png,
             *paths.codegen_files, paths.executable("host"), paths.executable(cfg["board"]["name"]),
             paths.size_json, paths.verify_report, paths.export_zip(cfg["name"])]
    if paths.frontend:  # the test clips verify feeds the engine, and the front end's figures
        files += [paths.pcm_test, paths.frontend_json]
    if cfg["deploy"]["model"]:  # no data/search/train/quantize stages; the given model lives outside the build
        skipped = {paths.card, *(paths.data_file(k) for k in SPLITS), paths.arch, paths.fp32, paths.train_metrics,
                   paths.int8, paths.quant_metrics, paths.pcm_test}
        files = [f for f in files if f not in skipped]
    return files


def inputs(cfg: dict) -> list[Path]:
    """Files outside the build that the pipeline reads as they are: the deploy.model file."""
    return [absolute(cfg["resolved"]["model_file"])] if cfg["deploy"]["model"] else []


def model_entry(cfg: dict) -> dict | None:
    """The deploy.model file: {"path": as the YAML gives it, "file": where it resolved to (relative to the project
    when inside it), "sha256", "bytes"}; None when the pipeline trains its own model."""
    if not cfg["deploy"]["model"]:
        return None
    path = inputs(cfg)[0]
    return {"path": cfg["deploy"]["model"], "file": cfg["resolved"]["model_file"], "sha256": sha256_file(path),
            "bytes": path.stat().st_size}


def build_manifest(root: Path, files: list[Path], config_sha256: str, model: dict | None = None) -> dict:
    manifest = {
        "config_sha256": config_sha256,
        "artifacts": {str(p.relative_to(root)): {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                      for p in sorted(files)},
        "tools": versions(),
        "platform": {"machine": platform.machine(), "system": platform.system(),
                     "python_implementation": sys.implementation.name},
        # what the trained weights depend on (README "Reproducibility"): CPU, torch, ATen's kernel path, MKL, oneDNN
        "cpu": cpu_record(),
    }
    if model is not None:
        manifest["model"] = model
    return manifest


def check(paths) -> list[str]:
    """Re-hash an existing build: the artifacts that changed, appeared or disappeared since the manifest."""
    manifest = read_json(paths.manifest)
    recorded = manifest["artifacts"]
    problems = []
    model = manifest.get("model")
    if model is not None:
        path = absolute(model["file"])
        where = f"deploy.model {model['path']} ({path})"
        if not path.is_file():
            problems.append(f"{where}: missing")
        elif sha256_file(path) != model["sha256"]:
            problems.append(f"{where}: changed (sha256 {model['sha256'][:12]}... when the manifest was written)")
    for name in sorted(recorded):
        path = paths.root / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif sha256_file(path) != recorded[name]["sha256"]:
            problems.append(f"{name}: changed")
    return problems
