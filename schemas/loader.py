"""Load pipeline and board YAML files into validated models, with errors that name file, line, column and field.

A YAML node's position is kept for every key and value (PyYAML's compose tree), so a pydantic error location
(`("train", "epochs")`) maps back to `pipelines/x.yaml:14:11`. Command-line overrides (`train.epochs=3`) are applied
to the raw data before validation and are reported as `command line: train.epochs=3`.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from mcuforge.core.errors import ConfigError
from mcuforge.core.paths import ROOT

from .board import Board
from .yaml_reader import parse_value, read_file
from .pipeline import PipelineConfig

BOARDS_DIR = ROOT / "boards"
PIPELINES_DIR = ROOT / "pipelines"

MAX_ERROR_LINES = 20

# Short names accepted on the command line besides dotted field paths.
OVERRIDE_ALIASES = {"board": "deploy.board", "seed": "seed", "name": "name",
                    "export_unverified": "deploy.export_unverified"}


@dataclass
class Origin:
    """Where a value came from: a YAML position or a command-line override."""

    source: str
    line: int = 0
    column: int = 0

    def __str__(self) -> str:
        if self.line:
            return f"{self.source}:{self.line}:{self.column}"
        return self.source


@dataclass
class SourceMap:
    """Dotted path (tuple) -> Origin of the key (or of the document for the root)."""

    file: str
    origins: dict[tuple, Origin] = field(default_factory=dict)

    def find(self, loc: tuple) -> Origin:
        """The origin of `loc`, or of its nearest ancestor that has one."""
        for cut in range(len(loc), -1, -1):
            origin = self.origins.get(tuple(loc[:cut]))
            if origin is not None:
                return origin
        return Origin(self.file)


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _walk(node: yaml.Node, prefix: tuple, smap: SourceMap, source: str) -> None:
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            mark = key_node.start_mark
            smap.origins[prefix + (key,)] = Origin(source, mark.line + 1, mark.column + 1)
            _walk(value_node, prefix + (key,), smap, source)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            mark = item.start_mark
            smap.origins[prefix + (index,)] = Origin(source, mark.line + 1, mark.column + 1)
            _walk(item, prefix + (index,), smap, source)


def read_yaml(path: Path) -> tuple[dict, SourceMap]:
    """Parse a YAML mapping, keeping the position of every key. Raises ConfigError on any syntax problem and on
    everything schemas/yaml_reader.py refuses (size, encoding, depth, aliases, duplicate keys)."""
    shown = _display(path)
    data, node = read_file(path, shown)
    if not isinstance(data, dict):
        raise ConfigError(f"{shown}:1:1: the document must be a mapping of sections (name:, dataset:, ...), "
                          f"not {type(data).__name__}")
    smap = SourceMap(shown)
    smap.origins[()] = Origin(shown, 1, 1)
    _walk(node, (), smap, shown)
    return data, smap


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class reached by following `loc` from `model` (None if it leaves the models)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        info = current.model_fields.get(part)
        if info is None:
            return None
        current = _unwrap_model(info.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap_model(annotation: Any) -> Any:
    args = getattr(annotation, "__args__", None)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in args or ():
        found = _unwrap_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def _clean_loc(loc: tuple, data: Any) -> tuple:
    """Drop pydantic's union-branch tags so the location is a path in the data."""
    out: list = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            out.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            out.append(part)
            node = node[part]
        elif isinstance(node, dict) and not out[len(out):] and isinstance(part, str) and "[" not in part and "," not in part:
            out.append(part)  # a missing or unknown key: still part of the path
            node = None
    return tuple(out)


def dotted(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) if loc else "(top level)"


def _named_field(loc: tuple, message: str, smap: SourceMap) -> tuple:
    """A cross-field check raised at a section (`loc`) whose message starts with the dotted path of the field it is
    about (`qemu.machine ...`, `search.model.num_classes is ...`): point at that field's line instead."""
    head = message.split(" ", 1)[0].rstrip(":")
    if "." not in head:  # a single word may be prose, not a path
        return loc
    for path in (tuple(head.split(".")), loc + tuple(head.split("."))):
        if path and path in smap.origins and len(path) > len(loc):
            return path
    return loc


def format_validation_error(exc: ValidationError, model: type[BaseModel], data: dict, smap: SourceMap) -> str:
    lines = []
    seen = set()
    for err in exc.errors():
        loc = _clean_loc(tuple(err["loc"]), data)
        kind = err["type"]
        if kind == "extra_forbidden":
            parent = _model_at(model, loc[:-1])
            allowed = ", ".join(parent.model_fields) if parent else "?"
            message = f"unknown field '{loc[-1]}'; allowed here: {allowed}"
        elif kind == "missing":
            parent = _model_at(model, loc[:-1])
            info = parent.model_fields.get(str(loc[-1])) if parent else None
            hint = f" ({info.description})" if info is not None and info.description else ""
            message = f"missing required field '{loc[-1]}'{hint}"
        else:
            message = err["msg"].removeprefix("Value error, ")
            if "input" in err and not isinstance(err["input"], (dict, list)) and kind != "value_error":
                message += f" (got {err['input']!r})"
        loc = _named_field(loc, message, smap)
        key = (loc, message)
        if key in seen:
            continue
        seen.add(key)
        field_text = "" if loc and message.startswith(dotted(loc) + " ") else f"{dotted(loc)}: "
        lines.append(f"{smap.find(loc)}: {field_text}{message}")
    if len(lines) > MAX_ERROR_LINES:
        lines = lines[:MAX_ERROR_LINES] + [f"... and {len(lines) - MAX_ERROR_LINES} more problems"]
    return "\n".join(lines)


def _json_value(value: Any) -> dict:
    return {f"YAML {type(value).__name__}": str(value)}  # a date, set or binary: no field takes one (not even a str)


def validate(model: type[BaseModel], data: dict, smap: SourceMap) -> BaseModel:
    """Validate strictly: through JSON, so numbers are never coerced from strings ("123"), booleans are not numbers,
    and an int is still accepted where a float is expected (pydantic's strict JSON mode); NaN and inf are refused by
    the models (allow_inf_nan=False)."""
    try:
        return model.model_validate_json(json.dumps(data, default=_json_value), strict=True)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, data, smap)) from None


def available_boards() -> list[str]:
    return sorted(p.stem for p in BOARDS_DIR.glob("*.yaml"))


def board_path(name: str, base_dir: Path) -> Path:
    """`stm32f746` -> boards/stm32f746.yaml; `my/board.yaml` -> that file, relative to `base_dir`."""
    if name.endswith(".yaml"):
        path = Path(name)
        return path if path.is_absolute() else (base_dir / path).resolve()
    return BOARDS_DIR / f"{name}.yaml"


def load_board(name: str, base_dir: Path = ROOT, origin: Origin | None = None) -> Board:
    path = board_path(name, base_dir)
    where = f"{origin}: deploy.board" if origin else "deploy.board"
    if path.is_dir():
        raise ConfigError(f"{where}: board file {_display(path)} is a directory")
    if not path.is_file():
        if name.endswith(".yaml"):
            raise ConfigError(f"{where}: board file {_display(path)} not found")
        raise ConfigError(f"{where}: unknown board '{name}'; available: {', '.join(available_boards())} "
                          f"(files in {_display(BOARDS_DIR)}/), or a path to a board .yaml")
    data, smap = read_yaml(path)
    board = validate(Board, data, smap)
    if board.name != path.stem:
        raise ConfigError(f"{smap.find(('name',))}: name: '{board.name}' must equal the file name '{path.stem}'")
    return board


def resolve_pipeline_path(value: str) -> Path:
    """`pipelines/x.yaml`, `x.yaml` and `x` all find pipelines/x.yaml."""
    candidates = [Path(value)]
    if not Path(value).is_absolute():
        candidates += [PIPELINES_DIR / value, PIPELINES_DIR / f"{value}.yaml"]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
        if candidate.is_dir() and candidate == Path(value):
            raise ConfigError(f"pipeline '{value}': is a directory, not a pipeline YAML file")
        if candidate.exists():
            return candidate  # a device or pipe: read_yaml says what it is
    names = ", ".join(sorted(p.name for p in PIPELINES_DIR.glob("*.yaml")))
    raise ConfigError(f"pipeline '{value}': file not found (looked in . and {_display(PIPELINES_DIR)}/; available: {names})")


def parse_override(text: str) -> tuple[tuple, Any]:
    """`train.epochs=3` -> (("train", "epochs"), 3); the value is parsed as YAML."""
    if "=" not in text:
        raise ConfigError(f"command line: '{text}' must look like field.path=value")
    key, _, raw = text.partition("=")
    key = OVERRIDE_ALIASES.get(key.strip(), key.strip())
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"command line: {text}: empty field name")
    value = parse_value(raw, f"command line: {text}") if raw.strip() else ""
    path = tuple(int(p) if p.isdigit() else p for p in key.split("."))
    return path, value


def apply_overrides(data: dict, smap: SourceMap, overrides: dict[str, str]) -> dict:
    data = copy.deepcopy(data)
    for name, raw in sorted(overrides.items()):
        text = f"{name}={raw}"
        path, value = parse_override(text)
        node: Any = data
        for depth, part in enumerate(path[:-1]):
            if isinstance(node, list):
                if not isinstance(part, int) or part >= len(node):
                    raise ConfigError(f"command line: {text}: {dotted(path[:depth + 1])} is not an index "
                                      f"of a list of {len(node)}")
                node = node[part]
                continue
            if not isinstance(node, dict):
                raise ConfigError(f"command line: {text}: {dotted(path[:depth])} is not a section")
            node = node.setdefault(part, {})
        last = path[-1]
        if isinstance(node, list):
            if not isinstance(last, int) or last >= len(node):
                raise ConfigError(f"command line: {text}: no list index {last}")
        elif not isinstance(node, dict):
            raise ConfigError(f"command line: {text}: {dotted(path[:-1])} is not a section")
        node[last] = value
        for cut in range(1, len(path) + 1):
            smap.origins[path[:cut]] = Origin(f"command line: {text}")
    return data


@dataclass
class Loaded:
    pipeline: PipelineConfig
    board: Board
    source: Path
    source_map: SourceMap


def load_pipeline(value: str, overrides: dict[str, str] | None = None) -> Loaded:
    """Read, override and validate a pipeline and its board. Raises ConfigError with a readable message."""
    path = resolve_pipeline_path(value)
    data, smap = read_yaml(path)
    data = apply_overrides(data, smap, overrides or {})
    pipeline = validate(PipelineConfig, data, smap)
    board = load_board(pipeline.deploy.board, path.resolve().parent, origin=smap.find(("deploy", "board")))
    return Loaded(pipeline=pipeline, board=board, source=path.resolve(), source_map=smap)
