"""The engine's runner program on the host: ``mf_runner inputs outputs [layer_dir]``.

The same three arguments are given to the Cortex-M runner under QEMU (qemu.py) through semihosting.
"""
from __future__ import annotations

import os
from pathlib import Path

from mcuforge.toolchain.process import RunResult, ToolchainError, run

RUN_TIMEOUT_S = 120.0


def runner_arguments(inputs: Path, outputs: Path, layer_dir: Path | None, command: str | None = None) -> list:
    """The runner's arguments, checked: the inputs file exists; the outputs' and the layer dumps' folders made.
    command: a runner sub-command before the files (`score`: anomaly models' whole-clip scores)."""
    if inputs.is_dir():
        raise ToolchainError(f"inputs {inputs} is a directory, not a file")
    if not inputs.is_file():
        raise ToolchainError(f"inputs file {inputs} does not exist")
    if outputs.exists() and outputs.samefile(inputs):
        raise ToolchainError(f"outputs file {outputs} is the inputs file: it would be truncated before it is read")
    outputs.parent.mkdir(parents=True, exist_ok=True)
    arguments = ([command] if command else []) + [inputs, outputs]
    if layer_dir is not None:
        layer_dir.mkdir(parents=True, exist_ok=True)
        arguments.append(layer_dir)
    return arguments


def run_host(exe: str | os.PathLike[str], inputs: str | os.PathLike[str], outputs: str | os.PathLike[str],
             layer_dir: str | os.PathLike[str] | None = None, timeout: float = RUN_TIMEOUT_S,
             command: str | None = None) -> RunResult:
    """Run the host runner: ``exe [command] inputs outputs [layer_dir]``; ToolchainError on timeout or non-zero exit."""
    exe = Path(exe).resolve()
    if not exe.is_file():
        raise ToolchainError(f"runner {exe} does not exist (build it first)")
    arguments = runner_arguments(Path(inputs).resolve(), Path(outputs).resolve(),
                                 None if layer_dir is None else Path(layer_dir).resolve(), command)
    return run([exe, *arguments], timeout, "host runner")
