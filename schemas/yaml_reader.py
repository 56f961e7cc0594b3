"""Read a YAML file or command-line value defensively: every bad byte, key or shape is a ConfigError naming the file
and position, never a Python exception, and no input can make the reader slow or large.

Refused: files over MAX_FILE_BYTES (checked before reading), anything but a regular file, bytes that are not UTF-8
(offset and line named), control characters, nesting deeper than MAX_DEPTH, more than MAX_NODES nodes, anchors and
aliases (`&x` / `*x`, which make alias bombs and `<<` merges possible; a pipeline has no use for them), keys that are
not plain scalars, and duplicate keys (the second one is named with the line of the first: YAML would keep the last
silently). Numbers are YAML 1.2's: `1e-3` is a float (PyYAML's YAML 1.1 would read it as a string).
"""
from __future__ import annotations

import re
import stat
from pathlib import Path

import yaml
from yaml.composer import Composer
from yaml.constructor import SafeConstructor
from yaml.resolver import Resolver

from mcuforge.core.errors import ConfigError

MAX_FILE_BYTES = 64 * 1024  # the shipped pipelines and boards are 0.5-2.5 KB; PyYAML reads ~150 KB/s
MAX_DEPTH = 32
MAX_NODES = 20_000

_FLOAT_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$")


if getattr(yaml, "__with_libyaml__", False):  # libyaml scans and parses ~10x faster than PyYAML's Python reader
    class _Base(yaml.cyaml.CParser, Composer, SafeConstructor, Resolver):
        def __init__(self, stream: str):
            yaml.cyaml.CParser.__init__(self, stream)
            Composer.__init__(self)
            SafeConstructor.__init__(self)
            Resolver.__init__(self)

        # the composition stays in Python (below), over libyaml's events
        get_single_node = Composer.get_single_node
        compose_document = Composer.compose_document
else:  # pragma: no cover  (PyYAML built without libyaml)
    _Base = yaml.SafeLoader


class _Loader(_Base):
    """A safe loader that counts and limits while composing (before anything is constructed)."""

    def __init__(self, stream: str, shown: str):
        super().__init__(stream)
        self.shown = shown
        self.depth = 0
        self.nodes = 0

    def _refuse(self, mark, what: str):
        where = f"{self.shown}:{mark.line + 1}:{mark.column + 1}" if mark is not None else self.shown
        raise ConfigError(f"{where}: {what}")

    def compose_node(self, parent, index):
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            self._refuse(event.start_mark, f"YAML alias '*{event.anchor}': anchors and aliases are not supported "
                                           "(write the value out)")
        if getattr(event, "anchor", None):
            self._refuse(event.start_mark, f"YAML anchor '&{event.anchor}': anchors and aliases are not supported "
                                           "(write the value out)")
        self.nodes += 1
        if self.nodes > MAX_NODES:
            self._refuse(event.start_mark, f"more than {MAX_NODES:,} YAML values: not a pipeline or board file")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            self._refuse(event.start_mark, f"nested deeper than {MAX_DEPTH} levels")
        try:
            return Composer.compose_node(self, parent, index)
        finally:
            self.depth -= 1


_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789"))


def _check_keys(node: yaml.Node, shown: str) -> None:
    """Refuse complex and duplicate keys (iteratively: the depth is already bounded, but stay flat anyway)."""
    stack = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, yaml.MappingNode):
            first: dict[str, yaml.Node] = {}
            for key_node, value_node in current.value:
                mark = key_node.start_mark
                where = f"{shown}:{mark.line + 1}:{mark.column + 1}"
                if not isinstance(key_node, yaml.ScalarNode):
                    raise ConfigError(f"{where}: a key must be a plain name, not a {key_node.id}")
                if key_node.value in first:
                    before = first[key_node.value].start_mark
                    raise ConfigError(f"{where}: {key_node.value}: duplicate key (first at line {before.line + 1}, "
                                      f"column {before.column + 1}); YAML would silently keep only the last one")
                first[key_node.value] = key_node
                stack.append(value_node)
        elif isinstance(current, yaml.SequenceNode):
            stack.extend(current.value)


def _position(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"{line}:{column}"


def parse_text(text: str, shown: str) -> tuple[object, yaml.Node | None]:
    """(data, node) of one YAML document; ConfigError (with `shown` and the position) for anything refused."""
    loader = None
    try:
        loader = _Loader(text, shown)  # checks the characters first
        node = loader.get_single_node()
        if node is not None:
            _check_keys(node, shown)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{shown}:{mark.line + 1}:{mark.column + 1}" if mark else shown
        raise ConfigError(f"{where}: YAML syntax error: {exc.problem or exc.context}") from None
    except yaml.reader.ReaderError as exc:
        char = f"{exc.character:#x}" if isinstance(exc.character, int) else repr(exc.character)
        before = text[:exc.position]
        where = f"{shown}:{before.count(chr(10)) + 1}:{exc.position - (before.rfind(chr(10)) + 1) + 1}"
        raise ConfigError(f"{where}: character {char} is not allowed in YAML (control character)") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{shown}: YAML error: {exc}") from None
    except RecursionError:  # unreachable with MAX_DEPTH; kept so no input can give a traceback
        raise ConfigError(f"{shown}: nested too deeply") from None
    finally:
        if loader is not None:
            loader.dispose()
    return data, node


def read_file(path: Path, shown: str) -> tuple[object, yaml.Node | None]:
    """Parse a YAML file after checking what it is and how big it is (before reading a byte of it)."""
    try:
        info = path.stat()
    except FileNotFoundError:
        raise ConfigError(f"{shown}: file not found") from None
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if stat.S_ISDIR(info.st_mode):
        raise ConfigError(f"{shown}: is a directory, not a YAML file")
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"{shown}: not a regular file (a device, pipe or socket)")
    if info.st_size > MAX_FILE_BYTES:
        raise ConfigError(f"{shown}: {info.st_size:,} bytes, over the {MAX_FILE_BYTES:,}-byte limit for a pipeline "
                          "or board file")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigError(f"{shown}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"{shown}: over the {MAX_FILE_BYTES:,}-byte limit for a pipeline or board file")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{shown}:{_position(raw, exc.start)}: not UTF-8 text (byte {raw[exc.start]:#04x} at "
                          f"offset {exc.start}); save the file as UTF-8") from None
    return parse_text(text.removeprefix("\ufeff"), shown)


def parse_value(raw: str, shown: str):
    """A command-line value, read as YAML with the same rules (a scalar, list or mapping)."""
    if len(raw) > 4096:
        raise ConfigError(f"{shown}: value longer than 4,096 characters")
    data, _ = parse_text(raw, shown)
    return data
