"""The one way this project runs an external command: `run` with a timeout and a checked exit code.

Every other module of the toolchain (CMake, QEMU, the ELF tools, version probes) goes through `run`; a failure
raises ToolchainError naming the command, the exit code (or the timeout) and the tail of its output.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mcuforge.core.errors import EXIT_TOOLCHAIN, McuforgeError

TOOL_TIMEOUT_S = 60.0
OUTPUT_TAIL_LINES = 30


class ToolchainError(McuforgeError):
    """A build, run or tool invocation failed; the message says which command, how, and its output's tail."""

    exit_code = EXIT_TOOLCHAIN
    kind = "tool failed"


@dataclass(frozen=True)
class RunResult:
    """What one run of a command (the runner on the host or under QEMU, a tool) did.

    ``instructions`` is filled by run_qemu(count_instructions=True): the exact number of guest instructions executed
    between mf_bench_start and mf_bench_stop, one entry per inference (sample), in order.

    The stack figures are filled by run_qemu (stack painting, Cortex-M runner; None for host runs and for ELFs built
    without painting), in bytes below the top of the stack: ``stack_bytes`` the high-water mark of the whole run
    (startup, the runner, newlib's file I/O and the inferences), ``inference_stack_bytes`` the deepest of the
    inferences alone (mf_model_invoke with the frames of its callers), ``stack_reserved_bytes`` the linker
    script's stack reservation.

    ``layer_instructions`` is filled by run_qemu(count_instructions=True) for an ELF built with MF_LAYER_DUMP: per
    inference, the instructions of every layer in order (up to the call of mf_layer_dump, without the dump's I/O);
    ``layer_tail_instructions`` per inference those after the last layer's dump (the model's return). Their sum is
    ``instructions`` minus the dumps' own instructions.
    """

    command: list[str]
    returncode: int
    stdout: str
    stderr: str
    seconds: float
    instructions: list[int] | None = None
    total_instructions: int | None = None
    stack_bytes: int | None = None
    inference_stack_bytes: int | None = None
    stack_reserved_bytes: int | None = None
    layer_instructions: list[list[int]] | None = None
    layer_tail_instructions: list[int] | None = None

    @property
    def instructions_per_inference(self) -> int | None:
        """Mean instructions per inference (rounded), or None when instructions were not counted."""
        if not self.instructions:
            return None
        return round(sum(self.instructions) / len(self.instructions))


def tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    """The last lines of a command's output, for error messages."""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def require_tool(name: str, purpose: str) -> str:
    """The path of a tool on PATH; ToolchainError saying what it is needed for when it is absent."""
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found on PATH (needed to {purpose})")
    return path


_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """preexec_fn: the child gets SIGKILL when the thread that started it dies (Linux PR_SET_PDEATHSIG), so a
    killed `doit run` leaves no CMake or QEMU running; the children's own children (make, the compilers) are in
    the guardian's process group (`_guardian_group`) and die with it."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def die_with_parent(parent: int) -> None:
    """In a worker process started by `parent` (a multiprocessing pool): SIGKILL when the parent dies, and exit now if
    it already has (it may die before this call)."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


# The guardian: one small process per Python process that runs tools, leader of the process group every tool and
# its descendants join. It blocks reading a pipe only this process holds; when this process ends in any way (exit,
# an exception, kill -9 of it alone) the pipe closes and the guardian kills the whole group: no make or compiler
# outlives a killed `doit run`, even when only doit's own pid was killed.
_GUARDIAN_SOURCE = "import os, signal, sys\nsys.stdin.buffer.read()\nos.killpg(os.getpgrp(), signal.SIGKILL)\n"
_guardian: subprocess.Popen | None = None
_guardian_lock = threading.Lock()


def _guardian_group() -> int | None:
    """The process group tools join, starting the guardian on first use (or again, if it was killed); None where
    process groups are not available."""
    global _guardian
    if sys.platform != "linux":
        return None
    with _guardian_lock:
        if _guardian is None or _guardian.poll() is not None:
            _guardian = subprocess.Popen([sys.executable, "-S", "-c", _GUARDIAN_SOURCE], stdin=subprocess.PIPE,
                                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0)
        return _guardian.pid


def run(command: Sequence[str | os.PathLike[str]], timeout: float, what: str, cwd: Path | None = None) -> RunResult:
    """Runs a command with a timeout; raises ToolchainError unless it exits with 0.

    what: how the command is named in error messages ("CMake build", "QEMU mps2-an386"). Output is captured as
    text (undecodable bytes replaced); stdin is closed.
    """
    argv = [str(part) for part in command]
    started = time.monotonic()
    try:
        completed = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   errors="replace", timeout=timeout, cwd=cwd, check=False,
                                   preexec_fn=_die_with_parent if _LIBC is not None else None,
                                   process_group=_guardian_group())
    except subprocess.TimeoutExpired as error:
        output = error.stderr or error.stdout or b""
        if isinstance(output, bytes):
            output = output.decode("utf-8", "replace")
        raise ToolchainError(f"{what} timed out after {timeout:g} s: {shlex.join(argv)}\n{tail(output)}") from None
    except OSError as error:
        raise ToolchainError(f"{what} could not start: {shlex.join(argv)}: {error}") from None
    result = RunResult(command=argv, returncode=completed.returncode, stdout=completed.stdout,
                       stderr=completed.stderr, seconds=time.monotonic() - started)
    if completed.returncode != 0:
        output = "\n".join(part for part in (tail(completed.stderr), tail(completed.stdout)) if part)
        raise ToolchainError(f"{what} failed with exit code {completed.returncode}: {shlex.join(argv)}\n{output}")
    return result
