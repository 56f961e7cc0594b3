"""The review's files and inputs: where review/report.md and .html go, which stage writes each file the review reads,
and the fingerprint doit keeps to re-run the review when an input or the review's own code changes.

The review itself is spread over this package, one job per module: facts.py (what the report shows, from the
artifacts), sizes.py (the flash / SRAM breakdown and the stack), layers.py (the per-layer table), plots.py,
render.py (Jinja templates under templates/) and energy.py.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

from mcuforge.core.io import read_json
from mcuforge.core.paths import config_hash

PACKAGE = Path(__file__).resolve().parent
TEMPLATES = PACKAGE / "templates"
# the modules that compute the review (their code is part of the fingerprint)
SOURCES = ("review.py", "facts.py", "sizes.py", "layers.py", "plots.py", "render.py", "energy.py", "frontend.py",
           "anomaly.py")


class ReviewPaths:
    """Files of the review, under build/<name>/review/."""

    def __init__(self, paths):
        self.dir = paths.root / "review"
        self.md = self.dir / "report.md"
        self.html = self.dir / "report.html"
        self.memory_png = self.dir / "memory.png"
        self.size_png = self.dir / "size.png"
        self.layers_png = self.dir / "layers.png"
        self.confusion_png = self.dir / "confusion.png"


def stage_files(cfg: dict, paths) -> dict[str, list[Path]]:
    """The task that writes each input of the review (task name -> files)."""
    board = cfg["board"]["name"]
    return {
        "config": [paths.config],
        "data": [paths.card],
        "search": [paths.arch],
        "train": [paths.train_metrics],
        "quantize": [paths.quant_metrics, paths.int8],
        "schedule": [paths.plan, paths.memory_png],
        "codegen": paths.codegen_files + ([paths.frontend_json] if paths.frontend else []),
        "build_host": [paths.executable("host")],
        f"build_{board}": [paths.size_json, paths.executable(board)],
        "verify": [paths.verify_report],
        "manifest": [paths.manifest],
    }


def input_files(cfg: dict, paths) -> list[Path]:
    files = [f for group in stage_files(cfg, paths).values() for f in group]
    search_dir = paths.arch.parent
    files += [search_dir / name for name in ("log.jsonl", "summary.json", "pareto.png", "cdf.png")]
    files.append(paths.quant_metrics.parent / "scores.json")  # anomaly pipelines
    return files


def read_artifact(path: Path):
    """A stage's JSON artifact, or None when that stage has not run."""
    return read_json(path) if path.is_file() else None


def fingerprint(cfg: dict, paths) -> str:
    """sha256 over the existing inputs' contents, the templates and the review's code: doit re-runs the review when
    it changes (the review never triggers the stages it reads: a missing stage is reported as not run)."""
    digest = hashlib.sha256(config_hash(cfg).encode())
    sources = [PACKAGE / name for name in SOURCES] + sorted(TEMPLATES.glob("*"))
    for path in input_files(cfg, paths) + sources:
        digest.update(str(path.name).encode())
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()
