"""Resolve a pipeline (YAML + command-line overrides + board) into the dict every stage reads.

The resolved config is written to `build/<name>/config.resolved.json`; every stage takes only its own sections, so
doit's `config_changed` re-runs a stage only when those sections change.
"""
from __future__ import annotations

import contextlib
import os
from pathlib import Path

from mcuforge.core.errors import BudgetError, ConfigError, DataError, McuforgeError
from mcuforge.core.paths import Paths, absolute, config_hash, portable  # noqa: F401  (stages import them from here)
from mcuforge import frontends
from mcuforge.ml import data as data_stage
from schemas.loader import board_path, load_pipeline

# doit command-line variables that are not config fields.
RESERVED_VARS = ("pipeline", "build", "a", "b", "build_a", "build_b")  # a, b, build_a, build_b: `doit diff`
DEFAULT_PIPELINE = "fashion"


def resolve(pipeline: str, overrides: dict[str, str]) -> dict:
    """Load and validate; return the resolved config dict (defaults filled, board merged, requant decided)."""
    loaded = load_pipeline(pipeline, overrides)
    cfg = loaded.pipeline.model_dump(mode="json")
    board = loaded.board.model_dump(mode="json")
    yaml_dir = loaded.source.parent
    model = cfg["deploy"]["model"]
    if model:
        model_path = (yaml_dir / model).resolve()
        where = f"{loaded.source_map.find(('deploy', 'model'))}: deploy.model"
        if model_path.is_dir():
            raise ConfigError(f"{where}: {model_path} is a directory, not a model file")
        if not model_path.is_file():
            raise ConfigError(f"{where}: no such file {model_path} (relative paths are relative to the pipeline YAML)")
        try:
            frontends.check_readable(model_path)
        except McuforgeError as exc:
            raise DataError(f"{where}: {exc}") from None
        if cfg.get("autoencoder"):
            _check_ready_autoencoder(cfg, loaded, model_path, where)
    else:
        try:
            data_stage.check_available(cfg["dataset"], yaml_dir)
        except McuforgeError as exc:
            raise ConfigError(f"{loaded.source_map.find(('dataset', 'path'))}: {exc}") from None
    _check_fixed_model(cfg, loaded)
    requant = cfg["quantize"]["requant"]
    if model.endswith(".tflite"):
        requant = "fixed"  # TFLite's integer arithmetic, whatever the board
    elif requant == "auto":
        requant = "float" if loaded.board.has_fpu else "fixed"
    cfg["board"] = board
    cfg["resolved"] = {
        "pipeline_file": portable(loaded.source),
        "board_file": portable(board_path(cfg["deploy"]["board"], yaml_dir)),
        "dataset_path": portable(data_stage.dataset_path(cfg["dataset"], yaml_dir)) if not model
        and (cfg["dataset"]["path"] or cfg["dataset"]["kind"] == "fashion_mnist") else "",
        "model_file": portable(model_path) if model else "",
        "requant": requant,
        "sram_budget_bytes": loaded.board.sram_budget,
        "flash_budget_bytes": loaded.board.flash_budget,
    }
    return cfg


def _check_ready_autoencoder(cfg: dict, loaded, model_path: Path, where: str) -> None:
    """A ready model scored as an autoencoder: its input must be `autoencoder.frames` frames of the front end's
    values, and its output (the reconstruction) the same shape."""
    try:
        graph = frontends.load(model_path)
    except McuforgeError as exc:
        raise DataError(f"{where}: {exc}") from None
    src, dst = graph.tensors[graph.input], graph.tensors[graph.output]
    frames, values = cfg["autoencoder"]["frames"], loaded.pipeline.frontend.num_features
    shape = "x".join(map(str, src.shape))
    if src.bytes != frames * values:
        raise ConfigError(f"{where}: {model_path.name} takes {src.bytes} int8 values ({shape}), but "
                          f"{loaded.source_map.find(('autoencoder', 'frames'))}: autoencoder.frames x the front end's "
                          f"values per frame = {frames} x {values} = {frames * values}")
    if tuple(dst.shape) != tuple(src.shape):
        raise ConfigError(f"{where}: {model_path.name} is not an autoencoder: its output "
                          f"({'x'.join(map(str, dst.shape))}) differs from its input ({shape}); the anomaly score "
                          "compares the reconstruction with the input")


def _check_fixed_model(cfg: dict, loaded) -> None:
    """A fixed architecture that cannot fit the board whatever the training and the schedule does is refused before
    training: its constants alone over the flash budget, or its input tensor alone over the SRAM budget."""
    if cfg["deploy"]["model"] or not cfg.get("search") or cfg["search"]["model"] is None:
        return
    from mcuforge.ml import archgraph
    from mcuforge.toolchain import budget
    from schemas.arch import ArchSpec

    where = loaded.source_map.find(("search", "model"))
    spec = ArchSpec.model_validate(cfg["search"]["model"])
    graph = archgraph.engine_graph(spec)[0]
    try:
        budget.check_constants(graph.ops, loaded.board.flash_budget, loaded.board.name, "search.model")
    except BudgetError as exc:
        raise BudgetError(f"{where}: {exc}") from None
    first = graph.tensors[graph.input].bytes
    if first > loaded.board.sram_budget:
        raise BudgetError(f"{where}: SRAM budget exceeded on board '{loaded.board.name}': search.model's input tensor "
                          f"alone ({'x'.join(map(str, graph.tensors[graph.input].shape))} int8) needs {first:,} B "
                          f"but the budget is {loaded.board.sram_budget:,} B; lower dataset.resolution")


def paths(cfg: dict, root: Path) -> Paths:
    """The artifacts of a resolved pipeline under `root` (a deploy.model pipeline reads its model where it is)."""
    model = cfg["resolved"].get("model_file", "")
    return Paths(Path(root), absolute(model) if model else None, frontend=bool(cfg.get("frontend")))


def split_vars(variables: dict[str, str]) -> tuple[str, Path | None, dict[str, str]]:
    """doit variables -> (pipeline, build root or None, config overrides)."""
    pipeline = variables.get("pipeline", DEFAULT_PIPELINE)
    build = variables.get("build")
    overrides = {k: v for k, v in variables.items() if k not in RESERVED_VARS}
    if not pipeline:
        raise ConfigError("command line: pipeline= needs a file, e.g. pipeline=pipelines/fashion.yaml")
    return pipeline, Path(build).resolve() if build else None, overrides


VIRTUAL_ROOTS = (Path("/proc"), Path("/sys"), Path("/dev"))


def prepare_build(root: Path, create: bool = True) -> None:
    """Check the build root before any work: not a file, not under a file, not in a virtual file system, writable;
    create it (unless `create` is False: `doit check_manifest` reads a build and never makes one).

    Raises ConfigError (`build=<path>: <what is wrong>`) or, for a build that does not exist and must not be made,
    DataError.
    """
    root = Path(root)
    where = f"command line: build={root}"
    resolved = root.resolve()
    for virtual in VIRTUAL_ROOTS:
        if resolved == virtual or virtual in resolved.parents:
            raise ConfigError(f"{where}: {virtual} is a virtual file system, not a place for a build directory")
    if resolved.exists() and not resolved.is_dir():
        raise ConfigError(f"{where}: is a file, not a directory")
    existing = resolved
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(f"{where}: {existing} is a file, so it cannot hold a build directory")
    if not create:
        if not resolved.is_dir():
            raise DataError(f"{where}: no build here (run `doit run pipeline=<yaml> build={root}` first)")
        return
    made = [p for p in (resolved, *resolved.parents) if not p.exists()]
    try:
        resolved.mkdir(parents=True, exist_ok=True)
        probe = resolved / f".write_test.{os.getpid()}.tmp"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        for folder in made:  # leave nothing behind: the folders this check made, innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise ConfigError(f"{where}: cannot write there ({exc.strerror or exc})") from None
