"""A small indenting writer for generated C, and C literal helpers (exact float32 as hex floats)."""
from __future__ import annotations

import contextlib
from typing import Iterable, Iterator

import numpy as np


class CWriter:
    def __init__(self, indent: str = "    "):
        self._lines: list[str] = []
        self._depth = 0
        self._indent = indent

    def line(self, text: str = "") -> None:
        self._lines.append(f"{self._indent * self._depth}{text}" if text else "")

    def lines(self, texts: Iterable[str]) -> None:
        for text in texts:
            self.line(text)

    def embed(self, other: CWriter) -> None:
        """Another writer's lines, indented to this writer's depth."""
        self.lines(other._lines)

    @contextlib.contextmanager
    def block(self, opener: str, closer: str = "}") -> Iterator[None]:
        self.line(opener)
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            self.line(closer)

    @contextlib.contextmanager
    def for_range(self, var: str, count: int | str) -> Iterator[None]:
        """`int32_t var;` and a loop block over var = 0 .. count - 1 (declaration first, as C89 wants)."""
        self.line(f"int32_t {var};")
        with self.block(f"for ({var} = 0; {var} < {count}; {var}++) {{"):
            yield

    def checked_call(self, call: str) -> None:
        """An engine call whose mf_status return ends mf_model_invoke() unless it is MF_OK."""
        self.line(f"status = {call};")
        with self.block("if (status != MF_OK) {"):
            self.line("return status;")

    def text(self) -> str:
        return "\n".join(self._lines) + "\n"


def c_float(value) -> str:
    """Exact C99 literal of a float32 value (hex float), e.g. 0x1.8p-3f."""
    value = np.float32(value)
    if not np.isfinite(value):
        raise ValueError(f"non-finite float {value}")
    if value == 0:
        return "0.0f"
    return f"{float(value).hex()}f"


def c_array(writer: CWriter, ctype: str, name: str, values: np.ndarray, per_line: int = 16,
            qualifiers: str = "const", align: int = 4) -> None:
    """`qualifiers ctype name[N] __attribute__((aligned(align))) = {...};` with per_line values a line."""
    flat = np.asarray(values).reshape(-1)
    if ctype == "float":
        items = [c_float(v) for v in flat]
        per_line = min(per_line, 6)
    else:
        items = [str(int(v)) for v in flat]
    with writer.block(f"{qualifiers} {ctype} {name}[{len(items)}] __attribute__((aligned({align}))) = {{", "};"):
        for start in range(0, len(items), per_line):
            writer.line(", ".join(items[start:start + per_line]) + ",")


# The model's C API in every generated model.h (engine_c/runner/main.c and the export call these); the layer-dump hook
# only in layer-dump builds.
MODEL_PROTOTYPES = ["int8_t *mf_model_input(void);", "const int8_t *mf_model_output(void);", "int mf_model_invoke(void);"]
LAYER_DUMP_PROTOTYPE = ["#ifdef MF_LAYER_DUMP", "void mf_layer_dump(int layer_index, const int8_t *data, size_t bytes);",
                        "#endif"]
