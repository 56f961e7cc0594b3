"""Tasks `build_host` and `build_<board>`: CMake builds of the generated model over engine_c/ (mcuforge/toolchain/).

Each target is built twice: the deployable binary, and a layer-dump variant (MF_LAYER_DUMP) for per-layer checks.
The board build also writes size.json (text/data/bss from arm-none-eabi-size, and the deepest stack frame) and
budget.json, and refuses a model over the board's SRAM or flash budget.
"""
from __future__ import annotations

from mcuforge import toolchain
from mcuforge.core.io import write_json
from mcuforge.frontends import load
from mcuforge.toolchain import budget
from mcuforge.toolchain.build import build_target, engine_files, sizes_are_for  # noqa: F401  (dodo.py reads them)


def run_host(cfg: dict, paths) -> dict:
    requant = cfg["resolved"]["requant"]
    build_target(paths, None, requant, paths.build_dir("host"), False)
    build_target(paths, None, requant, paths.build_dir("host", dump=True), True)
    return {}


def run_board(cfg: dict, paths) -> dict:
    board = cfg["board"]
    requant = cfg["resolved"]["requant"]
    ops = load(paths.int8).ops
    budget.check_constants(ops, cfg["resolved"]["flash_budget_bytes"], board["name"],
                           f"the model {paths.int8.name}")  # before the linker can overflow
    elf = build_target(paths, board, requant, paths.build_dir(board["name"]), False)
    build_target(paths, board, requant, paths.build_dir(board["name"], dump=True), True)
    sizes = toolchain.elf_size(elf)
    sizes["board"] = board["name"]
    stack = toolchain.stack_usage(paths.build_dir(board["name"]))
    sizes["max_stack_frame_bytes"] = max(stack.values(), default=0)
    sizes["flash_budget_bytes"] = cfg["resolved"]["flash_budget_bytes"]
    sizes["sram_budget_bytes"] = cfg["resolved"]["sram_budget_bytes"]
    write_json(paths.size_json, sizes)
    budget.run_board(cfg, paths, sizes, elf, paths.build_dir(board["name"]), ops)  # budget.json; over budget: error
    return {"flash": sizes["flash"], "ram": sizes["ram"]}
