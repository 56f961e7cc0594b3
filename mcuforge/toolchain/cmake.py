"""CMake builds of engine_c/ for one generated model: the host (gcc) or a board (arm-none-eabi-gcc).

The build directory remembers the configure arguments it was made with (mf_configure.json); built again with other
settings it is reconfigured from scratch, so a directory never mixes two configurations.
"""
from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Mapping, Sequence

from mcuforge.core.io import free_bytes
from mcuforge.core.paths import ROOT as REPO_ROOT
from mcuforge.toolchain.process import ToolchainError, require_tool, run

ENGINE_DIR = REPO_ROOT / "engine_c"
TOOLCHAIN_FILE = ENGINE_DIR / "cmake" / "arm-none-eabi.cmake"
PLATFORM_DIR = ENGINE_DIR / "platform"

REQUANT_MODES = {"float": "MF_REQUANT_FLOAT", "fixed": "MF_REQUANT_FIXED"}
BUILD_TIMEOUT_S = 600.0
MIN_FREE_BYTES = 8 * 2**20  # a board build tree is ~1.5 MB; below this, CMake fails with a misleading message


def _board_field(board: Any, *keys: str) -> Any:
    """board["compiler"]["flags"] for a dict (board YAML) or board.compiler.flags for a pydantic model."""
    value = board
    for key in keys:
        if value is None:
            return None
        value = value.get(key) if isinstance(value, Mapping) else getattr(value, key, None)
    return value


def _board_arguments(board: Any) -> list[str]:
    """The CMake arguments of a cross build: toolchain file, the board's compiler flags, its QEMU machine."""
    require_tool("arm-none-eabi-gcc", "cross-compile the engine")
    flags = _board_field(board, "compiler", "flags")
    if not flags:
        raise ToolchainError("the board has no compiler.flags (e.g. [-mcpu=cortex-m4, -mthumb, -mfloat-abi=soft])")
    machine = _board_field(board, "qemu", "machine") or ""
    if machine and not (PLATFORM_DIR / f"{machine}.ld").is_file():
        known = sorted(path.stem for path in PLATFORM_DIR.glob("*.ld") if path.stem not in ("mf_sections",))
        raise ToolchainError(f"no linker script for QEMU machine {machine!r}; known: {', '.join(known)}")
    return [
        f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}",
        f"-DMF_BOARD_FLAGS={';'.join(str(flag) for flag in flags)}",
        f"-DMF_QEMU_MACHINE={machine}",
    ]


def cmake_build(model_dir: str | os.PathLike[str], build_dir: str | os.PathLike[str], board: Any = None,
                requant_mode: str = "float", layer_dump: bool = False, sanitize: bool = False,
                timeout: float = BUILD_TIMEOUT_S, defines: Sequence[str] = ()) -> Path:
    """Configure and build engine_c/ for one model; return the runner executable (host) or ELF (Cortex-M).

    model_dir: directory with the generated model.h and *.c. board: None for the host (gcc), else a board (dict
    from the board YAML or an object with the same fields): ``compiler.flags`` become MF_BOARD_FLAGS and
    ``qemu.machine`` selects engine_c/platform/<machine>.ld (platform/generic.ld, build-only, when it is null).
    requant_mode: "float" or "fixed". layer_dump: build with MF_LAYER_DUMP. sanitize: ASan+UBSan (host only).
    defines: extra preprocessor definitions for the engine and the runner (MF_EXTRA_DEFINES, e.g. "MF_NO_DSP";
    "NAME=value" allowed), passed only when given so a default build's configure arguments do not change.
    Output is captured; on failure a ToolchainError carries the tail of the compiler output. A build directory
    configured with other settings is reconfigured from scratch.
    """
    if requant_mode not in REQUANT_MODES:
        raise ToolchainError(f"requant_mode {requant_mode!r} is not one of {sorted(REQUANT_MODES)}")
    model_dir = Path(model_dir).resolve()
    build_dir = Path(build_dir).resolve()
    if not (model_dir / "model.h").is_file():
        raise ToolchainError(f"model directory {model_dir} has no model.h")
    cmake = require_tool("cmake", "build the engine")
    arguments = [
        f"-DMF_MODEL_DIR={model_dir}",
        f"-DMF_REQUANT_MODE={REQUANT_MODES[requant_mode]}",
        f"-DMF_LAYER_DUMP={'ON' if layer_dump else 'OFF'}",
        f"-DMF_SANITIZE={'ON' if sanitize else 'OFF'}",
    ]
    if defines:
        if any(not str(define) or ";" in str(define) for define in defines):
            raise ToolchainError(f"defines {list(defines)!r}: each must be a non-empty NAME or NAME=value without ';'")
        arguments.append(f"-DMF_EXTRA_DEFINES={';'.join(str(define) for define in defines)}")
    if board is None:
        require_tool("gcc", "build the engine for the host")
        executable = build_dir / "mf_runner"
    else:
        if sanitize:
            raise ToolchainError("sanitize=True is for host builds only (board given)")
        arguments += _board_arguments(board)
        executable = build_dir / "mf_runner.elf"

    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "mf_configure.json"
    building = build_dir / "mf_building"  # present while a build runs: left behind, the build was interrupted
    if building.exists() or (stamp.exists() and _read_stamp(stamp) != arguments):
        # new arguments, or a build killed midway (a half-written object file would look up to date to make)
        (build_dir / "CMakeCache.txt").unlink(missing_ok=True)
        shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)
        executable.unlink(missing_ok=True)
    free = free_bytes(build_dir)
    if free is not None and free < MIN_FREE_BYTES:  # else CMake says "compiler is not able to compile a test program"
        raise ToolchainError(f"no space left on the device for the CMake build in {build_dir}: {free:,} bytes free, "
                             f"a build needs about {MIN_FREE_BYTES // 2**20} MB; free some space or choose another "
                             "build= directory")
    building.touch()
    run([cmake, "-S", ENGINE_DIR, "-B", build_dir, *arguments], timeout, "CMake configure")
    stamp.write_text(json.dumps(arguments))
    run([cmake, "--build", build_dir, "--parallel", str(os.cpu_count() or 2)], timeout, "CMake build")
    building.unlink()
    if not executable.is_file():
        raise ToolchainError(f"the build finished but {executable} does not exist")
    return executable


def _read_stamp(stamp: Path):
    try:
        return json.loads(stamp.read_text())
    except (OSError, ValueError):
        return None  # unreadable: configure again
