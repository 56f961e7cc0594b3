"""Where things are: the repository root and every artifact of one pipeline under build/<name>/."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the repository: boards/, pipelines/, engine_c/


@dataclass(frozen=True)
class Paths:
    """Every artifact of one pipeline, under build/<name>/."""

    root: Path
    model: Path | None = None  # deploy.model: the given int8 model replaces quantize/model_int8.onnx
    frontend: bool = False  # an audio front end runs on the device before the network (codegen/mf_model_frontend.*)

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
        names = ["model.c", "model.h", "weights.c", "weights.h"]
        if self.frontend:
            names += ["mf_model_frontend.c", "mf_model_frontend.h"]
        return [self.codegen / name for name in names]

    @property
    def frontend_json(self) -> Path:
        """The front end's figures: tables, scratch and its place in the arena, the input map."""
        return self.codegen / "frontend.json"

    @property
    def pcm_test(self) -> Path:
        return self.data / "pcm_test.npy"

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
    def export(self) -> Path:
        return self.root / "export"

    def export_folder(self, name: str) -> Path:
        """The exported C library of pipeline `name` (docs/export.md)."""
        return self.export / name

    def export_zip(self, name: str) -> Path:
        return self.export / f"{name}.zip"

    @property
    def export_json(self) -> Path:
        return self.export / "export.json"

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def doit_db(self) -> Path:
        return self.root / ".doit.db"


def portable(path: Path) -> str:
    """A path inside the project is stored relative to it, so artifacts do not depend on where the clone lives."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path.resolve())



def absolute(portable: str) -> Path:
    path = Path(portable)
    return path if path.is_absolute() else ROOT / path



def config_hash(cfg: dict) -> str:
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()
