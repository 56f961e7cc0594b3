"""Versions of the external tools the engine build and run use, as the first line of their ``--version`` output.

The manifest records them (mcuforge/report/manifest.py), so a rebuild with another compiler or QEMU shows.
"""
from __future__ import annotations

import shutil

from mcuforge.toolchain.process import TOOL_TIMEOUT_S, ToolchainError, run

TOOLS = {
    "gcc": ["gcc", "--version"],
    "arm-none-eabi-gcc": ["arm-none-eabi-gcc", "--version"],
    "cmake": ["cmake", "--version"],
    "qemu-system-arm": ["qemu-system-arm", "--version"],
    "espeak-ng": ["espeak-ng", "--version"],
}


def _first_line(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        output = run(command, TOOL_TIMEOUT_S, f"{command[0]} version").stdout
    except ToolchainError:
        return None
    return output.splitlines()[0].strip() if output else None


def tool_versions() -> dict[str, str | None]:
    """Tool name -> the first line of its ``--version`` output (e.g. "cmake version 3.25.1"); None when the tool is
    absent or the probe fails."""
    return {name: _first_line(command) for name, command in TOOLS.items()}
