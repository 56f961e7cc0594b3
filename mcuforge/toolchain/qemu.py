"""The Cortex-M runner under qemu-system-arm with semihosting: exact instruction counts and the measured stack.

QEMU recipe (Debian qemu-system-arm 7.2, docs: DESIGN section 5): ``qemu-system-arm -M <machine> -nographic
-monitor none -serial null -semihosting-config enable=on,target=native,arg=mf_runner,arg=<in>,arg=<out>[,arg=<dir>]
-kernel <elf>``. The runner's startup code reads the ``arg=`` values through SYS_GET_CMDLINE (QEMU joins them with
spaces), so paths given to QEMU may not contain whitespace; commas are escaped for QEMU's option parser.

Measured stack: the Cortex-M startup paints the free stack and the runner repaints it before every inference
(engine_c/platform/startup.c); after main the guest prints ``mf_stack: used N B, inference M B, reserved R B`` on the
semihosting console (QEMU's stderr), which run_qemu parses into RunResult.stack_bytes and inference_stack_bytes.

Instruction counts: a QEMU TCG plugin (engine_c/tools/icount_plugin.c, built with the host gcc next to the ELF)
counts the guest instructions from mf_bench_start to mf_bench_stop. Per layer: in a layer-dump ELF the model calls
mf_layer_dump after every layer and the runner's mf_layer_dump ends by calling mf_layer_dump_done; given both as the
plugin's ``mark=`` and ``resume=``, every inference is split into one count per layer (from the inference's start
or the previous layer's mf_layer_dump_done to this layer's mf_layer_dump: the layer's kernel call, without the
dump's I/O) and a tail (from the last mf_layer_dump_done to mf_bench_stop: the model's return).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import tempfile
from pathlib import Path
from typing import Sequence

from mcuforge.toolchain.cmake import ENGINE_DIR
from mcuforge.toolchain.elf import symbol_addresses
from mcuforge.toolchain.process import TOOL_TIMEOUT_S, RunResult, ToolchainError, require_tool, run, tail
from mcuforge.toolchain.runner import RUN_TIMEOUT_S, runner_arguments

ICOUNT_PLUGIN_SOURCE = ENGINE_DIR / "tools" / "icount_plugin.c"
BENCH_START_SYMBOL = "mf_bench_start"
BENCH_STOP_SYMBOL = "mf_bench_stop"
LAYER_MARK_SYMBOL = "mf_layer_dump"  # layer dump ELFs: end of a layer's instruction count
LAYER_RESUME_SYMBOL = "mf_layer_dump_done"  # ... and where counting resumes after the dump's I/O
_STACK_LINE = re.compile(r"^mf_stack: used (?P<used>\d+ B|overflow), inference (?P<inference>\d+ B|overflow), "
                         r"reserved (?P<reserved>\d+) B$", re.MULTILINE)


def _qemu_arg(path: Path | str) -> str:
    text = str(path)
    if any(character.isspace() for character in text):
        raise ToolchainError(f"path {text!r} contains whitespace: QEMU passes semihosting arguments joined by "
                             "spaces, so the runner cannot receive it; use a path without spaces")
    return text.replace(",", ",,")


def _newer(target: Path, source: Path) -> bool:
    return target.exists() and target.stat().st_mtime >= source.stat().st_mtime


def build_icount_plugin(output_dir: str | os.PathLike[str], timeout: float = TOOL_TIMEOUT_S) -> Path:
    """Build engine_c/tools/icount_plugin.c with the host gcc into output_dir/icount_plugin.so (if out of date)."""
    output_dir = Path(output_dir).resolve()
    plugin = output_dir / "icount_plugin.so"
    if _newer(plugin, ICOUNT_PLUGIN_SOURCE):
        return plugin
    gcc = require_tool("gcc", "build the QEMU instruction-count plugin")
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f".icount_plugin.{os.getpid()}.so"
    run([gcc, "-std=c11", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
         "-o", partial, ICOUNT_PLUGIN_SOURCE], timeout, "building the QEMU plugin")
    os.replace(partial, plugin)
    return plugin


def qemu_command(elf: str | os.PathLike[str], machine: str, arguments: Sequence[str | os.PathLike[str]],
                 plugin: str | None = None) -> list[str]:
    """The QEMU command line for the runner ELF on an MPS2/MPS3 machine (no -cpu: the machine fixes the core)."""
    qemu = require_tool("qemu-system-arm", "run the engine on an emulated Cortex-M")
    semihosting = ",".join(["enable=on", "target=native"] +
                           [f"arg={_qemu_arg(argument)}" for argument in ["mf_runner", *arguments]])
    command = [qemu, "-M", machine, "-nographic", "-monitor", "none", "-serial", "null",
               "-semihosting-config", semihosting, "-kernel", str(Path(elf).resolve())]
    if plugin is not None:
        command += ["-plugin", plugin]
    return command


def run_qemu(elf: str | os.PathLike[str], machine: str, inputs: str | os.PathLike[str],
             outputs: str | os.PathLike[str], layer_dir: str | os.PathLike[str] | None = None,
             timeout: float = RUN_TIMEOUT_S, count_instructions: bool = False,
             command: str | None = None) -> RunResult:
    """Run the runner ELF under qemu-system-arm with semihosting; ToolchainError on timeout or non-zero exit.

    With count_instructions, the icount plugin (built next to the ELF on first use) counts the guest instructions
    of every inference, from mf_bench_start to mf_bench_stop: RunResult.instructions (one per sample) and
    RunResult.instructions_per_inference; for an ELF built with MF_LAYER_DUMP (it has mf_layer_dump and
    mf_layer_dump_done) also per layer: RunResult.layer_instructions and layer_tail_instructions. The runner's stack
    painting report fills RunResult.stack_bytes, inference_stack_bytes and stack_reserved_bytes (measured_stack).
    """
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise ToolchainError(f"ELF {elf} does not exist (build it first)")
    if not machine:
        raise ToolchainError("no QEMU machine given (the board's qemu.machine is null: build-only board)")
    arguments = runner_arguments(Path(inputs).resolve(), Path(outputs).resolve(),
                                 None if layer_dir is None else Path(layer_dir).resolve(), command)
    if not count_instructions:
        result = run(qemu_command(elf, machine, arguments), timeout, f"QEMU {machine}")
        return dataclasses.replace(result, **measured_stack(result))

    plugin = build_icount_plugin(elf.parent)
    symbols = symbol_addresses(elf)
    for name in (BENCH_START_SYMBOL, BENCH_STOP_SYMBOL):
        if name not in symbols:
            raise ToolchainError(f"symbol {name} not found in {elf}")
    plugin_spec = f"{_qemu_arg(plugin)},start={symbols[BENCH_START_SYMBOL]:#x},stop={symbols[BENCH_STOP_SYMBOL]:#x}"
    per_layer = LAYER_MARK_SYMBOL in symbols and LAYER_RESUME_SYMBOL in symbols
    if per_layer:
        plugin_spec += f",mark={symbols[LAYER_MARK_SYMBOL]:#x},resume={symbols[LAYER_RESUME_SYMBOL]:#x}"
    with tempfile.TemporaryDirectory(prefix="mf_icount_") as scratch:
        report_path = Path(scratch) / "icount.json"
        plugin_spec += f",out={_qemu_arg(report_path)}"
        result = run(qemu_command(elf, machine, arguments, plugin_spec), timeout, f"QEMU {machine}")
        if not report_path.is_file():
            raise ToolchainError(f"the QEMU plugin wrote no report: {shlex.join(result.command)}\n"
                                 f"{tail(result.stderr)}")
        report = json.loads(report_path.read_text())
    if report["unfinished_region"] or report["unmatched_stops"] or report["out_of_memory"] \
            or report.get("unmatched_marks"):
        raise ToolchainError(f"instruction count regions are inconsistent ({report}): {shlex.join(result.command)}")
    layers = None
    if per_layer:
        marks = [int(count) for count in report["mark_instructions"]]
        layers = []
        for count in report["region_marks"]:
            layers.append(marks[:count])
            marks = marks[count:]
    return RunResult(command=result.command, returncode=result.returncode, stdout=result.stdout,
                     stderr=result.stderr, seconds=result.seconds,
                     instructions=[int(count) for count in report["region_instructions"]],
                     total_instructions=int(report["total_instructions"]), layer_instructions=layers,
                     layer_tail_instructions=[int(count) for count in report["region_tails"]] if per_layer else None,
                     **measured_stack(result))


def measured_stack(result: RunResult) -> dict[str, int]:
    """The runner's stack painting report in a QEMU run's output (see RunResult): {} when there is none.

    A stack that reached the end of its reservation raises ToolchainError: the figure would be a lower bound and
    the program has written below its stack.
    """
    match = None
    for match in _STACK_LINE.finditer(result.stderr + "\n" + result.stdout):
        pass
    if match is None:
        return {}
    if "overflow" in (match.group("used"), match.group("inference")):
        raise ToolchainError(f"the runner used all {int(match.group('reserved')):,} B of its stack reservation "
                             f"(__stack_size in engine_c/platform/mf_sections.ld): {shlex.join(result.command)}\n"
                             f"{tail(result.stderr)}")
    return {"stack_bytes": int(match.group("used").split()[0]),
            "inference_stack_bytes": int(match.group("inference").split()[0]),
            "stack_reserved_bytes": int(match.group("reserved"))}
