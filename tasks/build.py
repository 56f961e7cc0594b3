"""Stages `build_host` and `build_<board>`: CMake builds of the generated model over engine_c/.

Each target is built twice: the deployable binary, and a layer-dump variant (MF_LAYER_DUMP) for per-layer checks.
The board build also writes size.json (text/data/bss from arm-none-eabi-size, and the deepest stack frame).
"""
from __future__ import annotations

import json

from . import budget, toolchain
from .errors import McuforgeError
from .io import write_json

ENGINE_SOURCES = ("CMakeLists.txt", "cmake/*.cmake", "include/*.h", "src/*.c", "src/*.h", "src/kernels/*.c",
                  "runner/*.c", "platform/*.c", "platform/*.ld")


def engine_files(root) -> list:
    engine = root / "engine_c"
    return sorted(p for pattern in ENGINE_SOURCES for p in engine.glob(pattern))


def _build(paths, board, requant: str, directory, dump: bool):
    try:
        return toolchain.cmake_build(paths.codegen, directory, board, requant, layer_dump=dump)
    except toolchain.ToolchainError as exc:
        raise McuforgeError(f"build failed: {exc}") from None


def run_host(cfg: dict, paths) -> dict:
    requant = cfg["resolved"]["requant"]
    _build(paths, None, requant, paths.build_dir("host"), False)
    _build(paths, None, requant, paths.build_dir("host", dump=True), True)
    return {}


def run_board(cfg: dict, paths) -> dict:
    board = cfg["board"]
    requant = cfg["resolved"]["requant"]
    elf = _build(paths, board, requant, paths.build_dir(board["name"]), False)
    _build(paths, board, requant, paths.build_dir(board["name"], dump=True), True)
    sizes = toolchain.elf_size(elf)
    sizes["board"] = board["name"]
    stack = toolchain.stack_usage(paths.build_dir(board["name"]))
    sizes["max_stack_frame_bytes"] = max(stack.values(), default=0)
    sizes["flash_budget_bytes"] = cfg["resolved"]["flash_budget_bytes"]
    sizes["sram_budget_bytes"] = cfg["resolved"]["sram_budget_bytes"]
    write_json(paths.size_json, sizes)
    budget.run_board(cfg, paths, sizes, elf, paths.build_dir(board["name"]))  # budget.json; over budget: error
    return {"flash": sizes["flash"], "ram": sizes["ram"]}


def sizes_are_for(paths, board: str) -> bool:
    """doit uptodate check: size.json and budget.json sit in the build root, shared by the boards a pipeline was built
    for; they are current only if the last board build was this board's."""
    try:
        return json.loads(paths.size_json.read_text()).get("board") == board
    except (OSError, ValueError):
        return False
