"""Stages `build_host` and `build_<board>`: CMake builds of the generated model over engine_c/.

Each target is built twice: the deployable binary, and a layer-dump variant (MF_LAYER_DUMP) for per-layer checks.
The board build also writes size.json (text/data/bss from arm-none-eabi-size, and the deepest stack frame).
"""
from __future__ import annotations

import json

from mcuforge.toolchain import budget
from mcuforge.toolchain import commands as toolchain
from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import write_json

ENGINE_SOURCES = ("CMakeLists.txt", "cmake/*.cmake", "include/*.h", "src/*.c", "src/*.h", "src/kernels/*.c",
                  "runner/*.c", "platform/*.c", "platform/*.ld")


def engine_files(root) -> list:
    engine = root / "engine_c"
    return sorted(p for pattern in ENGINE_SOURCES for p in engine.glob(pattern))


def build_target(paths, board, requant: str, directory, dump: bool):
    try:
        return toolchain.cmake_build(paths.codegen, directory, board, requant, layer_dump=dump)
    except toolchain.ToolchainError as exc:
        raise McuforgeError(f"build failed: {exc}") from None


def sizes_are_for(paths, board: str) -> bool:
    """doit uptodate check: size.json and budget.json sit in the build root, shared by the boards a pipeline was built
    for; they are current only if the last board build was this board's."""
    try:
        return json.loads(paths.size_json.read_text()).get("board") == board
    except (OSError, ValueError):
        return False
