"""Resolve a pipeline (YAML + command-line overrides + board) into the dict every stage reads.

The resolved config is written to `build/<name>/config.resolved.json`; every stage takes only its own sections, so
doit's `config_changed` re-runs a stage only when those sections change.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

from schemas.loader import ROOT, ConfigError, board_path, load_pipeline

from . import data as data_stage

# doit command-line variables that are not config fields.
RESERVED_VARS = ("pipeline", "build", "a", "b", "build_a", "build_b")  # a, b, build_a, build_b: `doit diff`
DEFAULT_PIPELINE = "fashion"


@dataclass(frozen=True)
class Paths:
    """Every artifact of one pipeline, under build/<name>/."""

    root: Path
    model: Path | None = None  # deploy.model: the given int8 model replaces quantize/model_int8.onnx

    @property
    def config(self) -> Path:
        return self.root / "config.resolved.json"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def data_file(self, key: str) -> Path:
        return self.data / f"{key}.npy"

    @property
    def card(self) -> Path:
        return self.data / "card.json"

    @property
    def arch(self) -> Path:
        return self.root / "search" / "arch.json"

    @property
    def fp32(self) -> Path:
        return self.root / "train" / "model_fp32.onnx"

    @property
    def train_metrics(self) -> Path:
        return self.root / "train" / "metrics.json"

    @property
    def int8(self) -> Path:
        return self.model if self.model is not None else self.root / "quantize" / "model_int8.onnx"

    @property
    def quant_metrics(self) -> Path:
        return self.root / "quantize" / "metrics.json"

    @property
    def plan(self) -> Path:
        return self.root / "schedule" / "plan.json"

    @property
    def plan_txt(self) -> Path:
        return self.root / "schedule" / "plan.txt"

    @property
    def memory_png(self) -> Path:
        return self.root / "schedule" / "memory.png"

    @property
    def codegen(self) -> Path:
        return self.root / "codegen"

    @property
    def codegen_files(self) -> list[Path]:
        return [self.codegen / name for name in ("model.c", "model.h", "weights.c", "weights.h")]

    def build_dir(self, target: str, dump: bool = False) -> Path:
        """CMake build directory of `host` or a board (the layer-dump variant beside it)."""
        return self.root / (f"build_{target}_dump" if dump else f"build_{target}")

    def executable(self, target: str, dump: bool = False) -> Path:
        return self.build_dir(target, dump) / ("mf_runner" if target == "host" else "mf_runner.elf")

    @property
    def size_json(self) -> Path:
        return self.root / "size.json"

    @property
    def verify(self) -> Path:
        return self.root / "verify"

    @property
    def verify_report(self) -> Path:
        return self.verify / "report.json"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def doit_db(self) -> Path:
        return self.root / ".doit.db"


def _portable(path: Path) -> str:
    """A path inside the project is stored relative to it, so artifacts do not depend on where the clone lives."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path.resolve())


def resolve(pipeline: str, overrides: dict[str, str]) -> dict:
    """Load and validate; return the resolved config dict (defaults filled, board merged, requant decided)."""
    loaded = load_pipeline(pipeline, overrides)
    cfg = loaded.pipeline.model_dump(mode="json")
    board = loaded.board.model_dump(mode="json")
    yaml_dir = loaded.source.parent
    model = cfg["deploy"]["model"]
    if model:
        model_path = (yaml_dir / model).resolve()
        if not model_path.is_file():
            raise ConfigError(f"{loaded.source_map.find(('deploy', 'model'))}: deploy.model: no such file {model_path} "
                              "(relative paths are relative to the pipeline YAML)")
    else:
        try:
            data_stage.check_available(cfg["dataset"], yaml_dir)
        except ConfigError as exc:
            raise ConfigError(f"{loaded.source_map.find(('dataset', 'path'))}: {exc}") from None
    requant = cfg["quantize"]["requant"]
    if model.endswith(".tflite"):
        requant = "fixed"  # TFLite's integer arithmetic, whatever the board
    elif requant == "auto":
        requant = "float" if loaded.board.has_fpu else "fixed"
    cfg["board"] = board
    cfg["resolved"] = {
        "pipeline_file": _portable(loaded.source),
        "board_file": _portable(board_path(cfg["deploy"]["board"], yaml_dir)),
        "dataset_path": _portable(data_stage.dataset_path(cfg["dataset"], yaml_dir)) if not model
        and (cfg["dataset"]["path"] or cfg["dataset"]["kind"] == "fashion_mnist") else "",
        "model_file": _portable(model_path) if model else "",
        "requant": requant,
        "sram_budget_bytes": loaded.board.sram_budget,
        "flash_budget_bytes": loaded.board.flash_budget,
    }
    return cfg


def paths(cfg: dict, root: Path) -> Paths:
    """The artifacts of a resolved pipeline under `root` (a deploy.model pipeline reads its model where it is)."""
    model = cfg["resolved"].get("model_file", "")
    return Paths(Path(root), absolute(model) if model else None)


def absolute(portable: str) -> Path:
    path = Path(portable)
    return path if path.is_absolute() else ROOT / path


def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()


def split_vars(variables: dict[str, str]) -> tuple[str, Path | None, dict[str, str]]:
    """doit variables -> (pipeline, build root or None, config overrides)."""
    pipeline = variables.get("pipeline", DEFAULT_PIPELINE)
    build = variables.get("build")
    overrides = {k: v for k, v in variables.items() if k not in RESERVED_VARS}
    if not pipeline:
        raise ConfigError("command line: pipeline= needs a file, e.g. pipeline=pipelines/fashion.yaml")
    return pipeline, Path(build).resolve() if build else None, overrides
