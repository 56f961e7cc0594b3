"""Helpers of the build stages (tasks/build.py, wired by dodo.py): one target's CMake build with a stage-level
error, the engine sources a build depends on, and whether size.json belongs to a board.
"""
from __future__ import annotations

import json
import re

from mcuforge.core.errors import BudgetError
from mcuforge.toolchain.cmake import cmake_build
from mcuforge.toolchain.process import ToolchainError

ENGINE_SOURCES = ("CMakeLists.txt", "cmake/*.cmake", "include/*.h", "src/*.c", "src/*.h", "src/kernels/*.c",
                  "runner/*.c", "platform/*.c", "platform/*.ld")


def engine_files(root) -> list:
    engine = root / "engine_c"
    return sorted(p for pattern in ENGINE_SOURCES for p in engine.glob(pattern))


def build_target(paths, board, requant: str, directory, dump: bool):
    try:
        return cmake_build(paths.codegen, directory, board, requant, layer_dump=dump)
    except ToolchainError as exc:
        overflow = re.search(r"region [`']?(\w+)'? overflowed by (\d+) bytes", str(exc))
        if overflow:
            raise BudgetError(f"{board['name'] if board else 'host'}: the program does not fit the linker's "
                              f"{overflow.group(1)} region (over by {int(overflow.group(2)):,} B); see budget.json "
                              "and size.json of a smaller build") from None
        raise ToolchainError(f"build failed: {exc}") from None


def sizes_are_for(paths, board: str) -> bool:
    """doit uptodate check: size.json and budget.json sit in the build root, shared by the boards a pipeline was built
    for; they are current only if the last board build was this board's."""
    try:
        return json.loads(paths.size_json.read_text()).get("board") == board
    except (OSError, ValueError):
        return False
