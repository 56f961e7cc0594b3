"""Building and running the C engine: the only part of mcuforge that runs external commands.

process.py runs every command (timeout, checked exit code, ToolchainError naming the command); cmake.py builds
engine_c/ for the host or a board; runner.py and qemu.py run the runner (QEMU: instruction counts, measured stack);
elf.py reads built ELFs (sizes, symbols, call graph, stack frames); versions.py probes the tools' versions;
budget.py checks a build against the board's SRAM and flash; build.py holds the build stage's helpers.
"""
from mcuforge.toolchain.cmake import ENGINE_DIR, cmake_build
from mcuforge.toolchain.elf import call_graph, elf_size, stack_usage, symbols
from mcuforge.toolchain.process import RunResult, ToolchainError, run
from mcuforge.toolchain.qemu import measured_stack, run_qemu
from mcuforge.toolchain.runner import run_host
from mcuforge.toolchain.versions import tool_versions

__all__ = ["ENGINE_DIR", "RunResult", "ToolchainError", "call_graph", "cmake_build", "elf_size", "measured_stack",
           "run", "run_host", "run_qemu", "stack_usage", "symbols", "tool_versions"]
