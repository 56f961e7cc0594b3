"""Build and run the C engine: CMake builds (host gcc or arm-none-eabi-gcc), the host runner, QEMU with semihosting,
exact instruction counts (a QEMU TCG plugin), ELF sizes, stack usage and tool versions.

Plain functions over paths, no doit dependency (dodo.py wires them). Every external command runs with a timeout
and its exit code checked; a failure raises ToolchainError naming the command, the exit code and the tail of its
output.

QEMU recipe (Debian qemu-system-arm 7.2, docs: DESIGN section 5): ``qemu-system-arm -M <machine> -nographic
-monitor none -serial null -semihosting-config enable=on,target=native,arg=mf_runner,arg=<in>,arg=<out>[,arg=<dir>]
-kernel <elf>``. The runner's startup code reads the ``arg=`` values through SYS_GET_CMDLINE (QEMU joins them with
spaces), so paths given to QEMU may not contain whitespace; commas are escaped for QEMU's option parser.

Measured stack: the Cortex-M startup paints the free stack and the runner repaints it before every inference
(engine_c/platform/startup.c); after main the guest prints ``mf_stack: used N B, inference M B, reserved R B`` on the
semihosting console (QEMU's stderr), which run_qemu parses into RunResult.stack_bytes and inference_stack_bytes.

Per-layer instruction counts: in a layer-dump ELF the model calls mf_layer_dump after every layer and the runner's
mf_layer_dump ends by calling mf_layer_dump_done; given both as the plugin's ``mark=`` and ``resume=``, every
inference is split into one count per layer (from the inference's start or the previous layer's
mf_layer_dump_done to this layer's mf_layer_dump: the layer's kernel call, without the dump's I/O) and a tail
(from the last mf_layer_dump_done to mf_bench_stop: the model's return).
"""
from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from mcuforge.core.paths import ROOT as REPO_ROOT

ENGINE_DIR = REPO_ROOT / "engine_c"
TOOLCHAIN_FILE = ENGINE_DIR / "cmake" / "arm-none-eabi.cmake"
PLATFORM_DIR = ENGINE_DIR / "platform"
ICOUNT_PLUGIN_SOURCE = ENGINE_DIR / "tools" / "icount_plugin.c"

REQUANT_MODES = {"float": "MF_REQUANT_FLOAT", "fixed": "MF_REQUANT_FIXED"}
BUILD_TIMEOUT_S = 600.0
RUN_TIMEOUT_S = 120.0
TOOL_TIMEOUT_S = 60.0
OUTPUT_TAIL_LINES = 30
ELF_MACHINE_ARM = 40
BENCH_START_SYMBOL = "mf_bench_start"
BENCH_STOP_SYMBOL = "mf_bench_stop"
LAYER_MARK_SYMBOL = "mf_layer_dump"  # layer dump ELFs: end of a layer's instruction count
LAYER_RESUME_SYMBOL = "mf_layer_dump_done"  # ... and where counting resumes after the dump's I/O
_STACK_LINE = re.compile(r"^mf_stack: used (?P<used>\d+ B|overflow), inference (?P<inference>\d+ B|overflow), "
                         r"reserved (?P<reserved>\d+) B$", re.MULTILINE)


class ToolchainError(RuntimeError):
    """A build, run or tool invocation failed; the message says which command, how, and its output's tail."""


@dataclass(frozen=True)
class RunResult:
    """What one run of the runner (host or QEMU) did.

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


# ---- helpers ---------------------------------------------------------------------------------------------------
def _tail(text: str, lines: int = OUTPUT_TAIL_LINES) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _require_tool(name: str, purpose: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} not found on PATH (needed to {purpose})")
    return path


def _run(command: Sequence[str | os.PathLike[str]], timeout: float, what: str,
         cwd: Path | None = None) -> RunResult:
    """Runs a command with a timeout; raises ToolchainError unless it exits with 0."""
    argv = [str(part) for part in command]
    started = time.monotonic()
    try:
        completed = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   errors="replace", timeout=timeout, cwd=cwd, check=False)
    except subprocess.TimeoutExpired as error:
        output = error.stderr or error.stdout or b""
        if isinstance(output, bytes):
            output = output.decode("utf-8", "replace")
        raise ToolchainError(f"{what} timed out after {timeout:g} s: {shlex.join(argv)}\n{_tail(output)}") from None
    except OSError as error:
        raise ToolchainError(f"{what} could not start: {shlex.join(argv)}: {error}") from None
    result = RunResult(command=argv, returncode=completed.returncode, stdout=completed.stdout,
                       stderr=completed.stderr, seconds=time.monotonic() - started)
    if completed.returncode != 0:
        output = "\n".join(part for part in (_tail(completed.stderr), _tail(completed.stdout)) if part)
        raise ToolchainError(f"{what} failed with exit code {completed.returncode}: {shlex.join(argv)}\n{output}")
    return result


def _board_field(board: Any, *keys: str) -> Any:
    """board["compiler"]["flags"] for a dict (board YAML) or board.compiler.flags for a pydantic model."""
    value = board
    for key in keys:
        if value is None:
            return None
        value = value.get(key) if isinstance(value, Mapping) else getattr(value, key, None)
    return value


def _qemu_arg(path: Path | str) -> str:
    text = str(path)
    if any(character.isspace() for character in text):
        raise ToolchainError(f"path {text!r} contains whitespace: QEMU passes semihosting arguments joined by "
                             "spaces, so the runner cannot receive it; use a path without spaces")
    return text.replace(",", ",,")


def _newer(target: Path, source: Path) -> bool:
    return target.exists() and target.stat().st_mtime >= source.stat().st_mtime


# ---- build -----------------------------------------------------------------------------------------------------
def cmake_build(model_dir: str | os.PathLike[str], build_dir: str | os.PathLike[str], board: Any = None,
                requant_mode: str = "float", layer_dump: bool = False, sanitize: bool = False,
                timeout: float = BUILD_TIMEOUT_S) -> Path:
    """Configure and build engine_c/ for one model; return the runner executable (host) or ELF (Cortex-M).

    model_dir: directory with the generated model.h and *.c. board: None for the host (gcc), else a board (dict
    from the board YAML or an object with the same fields): ``compiler.flags`` become MF_BOARD_FLAGS and
    ``qemu.machine`` selects engine_c/platform/<machine>.ld (platform/generic.ld, build-only, when it is null).
    requant_mode: "float" or "fixed". layer_dump: build with MF_LAYER_DUMP. sanitize: ASan+UBSan (host only).
    Output is captured; on failure a ToolchainError carries the tail of the compiler output. A build directory
    configured with other settings is reconfigured from scratch.
    """
    if requant_mode not in REQUANT_MODES:
        raise ToolchainError(f"requant_mode {requant_mode!r} is not one of {sorted(REQUANT_MODES)}")
    model_dir = Path(model_dir).resolve()
    build_dir = Path(build_dir).resolve()
    if not (model_dir / "model.h").is_file():
        raise ToolchainError(f"model directory {model_dir} has no model.h")
    cmake = _require_tool("cmake", "build the engine")
    arguments = [
        f"-DMF_MODEL_DIR={model_dir}",
        f"-DMF_REQUANT_MODE={REQUANT_MODES[requant_mode]}",
        f"-DMF_LAYER_DUMP={'ON' if layer_dump else 'OFF'}",
        f"-DMF_SANITIZE={'ON' if sanitize else 'OFF'}",
    ]
    if board is None:
        _require_tool("gcc", "build the engine for the host")
        executable = build_dir / "mf_runner"
    else:
        if sanitize:
            raise ToolchainError("sanitize=True is for host builds only (board given)")
        _require_tool("arm-none-eabi-gcc", "cross-compile the engine")
        flags = _board_field(board, "compiler", "flags")
        if not flags:
            raise ToolchainError("the board has no compiler.flags (e.g. [-mcpu=cortex-m4, -mthumb, -mfloat-abi=soft])")
        machine = _board_field(board, "qemu", "machine") or ""
        if machine and not (PLATFORM_DIR / f"{machine}.ld").is_file():
            known = sorted(path.stem for path in PLATFORM_DIR.glob("*.ld") if path.stem not in ("mf_sections",))
            raise ToolchainError(f"no linker script for QEMU machine {machine!r}; known: {', '.join(known)}")
        arguments += [
            f"-DCMAKE_TOOLCHAIN_FILE={TOOLCHAIN_FILE}",
            f"-DMF_BOARD_FLAGS={';'.join(str(flag) for flag in flags)}",
            f"-DMF_QEMU_MACHINE={machine}",
        ]
        executable = build_dir / "mf_runner.elf"

    build_dir.mkdir(parents=True, exist_ok=True)
    stamp = build_dir / "mf_configure.json"
    if stamp.exists() and json.loads(stamp.read_text()) != arguments:
        (build_dir / "CMakeCache.txt").unlink(missing_ok=True)
        shutil.rmtree(build_dir / "CMakeFiles", ignore_errors=True)
    _run([cmake, "-S", ENGINE_DIR, "-B", build_dir, *arguments], timeout, "CMake configure")
    stamp.write_text(json.dumps(arguments))
    _run([cmake, "--build", build_dir, "--parallel", str(os.cpu_count() or 2)], timeout, "CMake build")
    if not executable.is_file():
        raise ToolchainError(f"the build finished but {executable} does not exist")
    return executable


def build_icount_plugin(output_dir: str | os.PathLike[str], timeout: float = TOOL_TIMEOUT_S) -> Path:
    """Build engine_c/tools/icount_plugin.c with the host gcc into output_dir/icount_plugin.so (if out of date)."""
    output_dir = Path(output_dir).resolve()
    plugin = output_dir / "icount_plugin.so"
    if _newer(plugin, ICOUNT_PLUGIN_SOURCE):
        return plugin
    gcc = _require_tool("gcc", "build the QEMU instruction-count plugin")
    output_dir.mkdir(parents=True, exist_ok=True)
    partial = output_dir / f".icount_plugin.{os.getpid()}.so"
    _run([gcc, "-std=c11", "-shared", "-fPIC", "-O2", "-Wall", "-Wextra", "-Werror", "-fvisibility=hidden",
          "-o", partial, ICOUNT_PLUGIN_SOURCE], timeout, "building the QEMU plugin")
    os.replace(partial, plugin)
    return plugin


def symbol_addresses(elf: str | os.PathLike[str]) -> dict[str, int]:
    """Addresses of the symbols of an Arm ELF (arm-none-eabi-nm), Thumb bit cleared."""
    nm = _require_tool("arm-none-eabi-nm", "read symbols of the ELF")
    listing = _run([nm, elf], TOOL_TIMEOUT_S, "arm-none-eabi-nm").stdout
    addresses = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3:
            addresses[fields[2]] = int(fields[0], 16) & ~1
    return addresses


def symbol_address(elf: str | os.PathLike[str], name: str) -> int:
    """Address of a global symbol in an Arm ELF (arm-none-eabi-nm), Thumb bit cleared."""
    addresses = symbol_addresses(elf)
    if name not in addresses:
        raise ToolchainError(f"symbol {name} not found in {elf}")
    return addresses[name]


# ---- run -------------------------------------------------------------------------------------------------------
def _runner_arguments(inputs: Path, outputs: Path, layer_dir: Path | None) -> list[Path]:
    if not inputs.is_file():
        raise ToolchainError(f"inputs file {inputs} does not exist")
    outputs.parent.mkdir(parents=True, exist_ok=True)
    arguments = [inputs, outputs]
    if layer_dir is not None:
        layer_dir.mkdir(parents=True, exist_ok=True)
        arguments.append(layer_dir)
    return arguments


def run_host(exe: str | os.PathLike[str], inputs: str | os.PathLike[str], outputs: str | os.PathLike[str],
             layer_dir: str | os.PathLike[str] | None = None, timeout: float = RUN_TIMEOUT_S) -> RunResult:
    """Run the host runner: ``exe inputs outputs [layer_dir]``; ToolchainError on timeout or non-zero exit."""
    exe = Path(exe).resolve()
    if not exe.is_file():
        raise ToolchainError(f"runner {exe} does not exist (build it first)")
    arguments = _runner_arguments(Path(inputs).resolve(), Path(outputs).resolve(),
                                  None if layer_dir is None else Path(layer_dir).resolve())
    return _run([exe, *arguments], timeout, "host runner")


def qemu_command(elf: str | os.PathLike[str], machine: str, arguments: Sequence[str | os.PathLike[str]],
                 plugin: str | None = None) -> list[str]:
    """The QEMU command line for the runner ELF on an MPS2/MPS3 machine (no -cpu: the machine fixes the core)."""
    qemu = _require_tool("qemu-system-arm", "run the engine on an emulated Cortex-M")
    semihosting = ",".join(["enable=on", "target=native"] +
                           [f"arg={_qemu_arg(argument)}" for argument in ["mf_runner", *arguments]])
    command = [qemu, "-M", machine, "-nographic", "-monitor", "none", "-serial", "null",
               "-semihosting-config", semihosting, "-kernel", str(Path(elf).resolve())]
    if plugin is not None:
        command += ["-plugin", plugin]
    return command


def run_qemu(elf: str | os.PathLike[str], machine: str, inputs: str | os.PathLike[str],
             outputs: str | os.PathLike[str], layer_dir: str | os.PathLike[str] | None = None,
             timeout: float = RUN_TIMEOUT_S, count_instructions: bool = False) -> RunResult:
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
    arguments = _runner_arguments(Path(inputs).resolve(), Path(outputs).resolve(),
                                  None if layer_dir is None else Path(layer_dir).resolve())
    if not count_instructions:
        result = _run(qemu_command(elf, machine, arguments), timeout, f"QEMU {machine}")
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
        result = _run(qemu_command(elf, machine, arguments, plugin_spec), timeout, f"QEMU {machine}")
        if not report_path.is_file():
            raise ToolchainError(f"the QEMU plugin wrote no report: {shlex.join(result.command)}\n"
                                 f"{_tail(result.stderr)}")
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
                             f"{_tail(result.stderr)}")
    return {"stack_bytes": int(match.group("used").split()[0]),
            "inference_stack_bytes": int(match.group("inference").split()[0]),
            "stack_reserved_bytes": int(match.group("reserved"))}


# ---- inspect ---------------------------------------------------------------------------------------------------
def _elf_machine(path: Path) -> int:
    with path.open("rb") as stream:
        header = stream.read(20)
    if header[:4] != b"\x7fELF":
        raise ToolchainError(f"{path} is not an ELF file")
    byteorder = "little" if header[5] == 1 else "big"
    return int.from_bytes(header[18:20], byteorder)


def elf_size(elf: str | os.PathLike[str]) -> dict[str, int]:
    """Sizes of an ELF from ``size`` (Berkeley format): text, data, bss, flash = text + data, ram = data + bss.

    arm-none-eabi-size for Arm ELFs, the host ``size`` otherwise. On Cortex-M ``text`` includes the const weights
    (.rodata) and the vector table; the stack is a reservation in the linker script, not counted in ``bss``.
    """
    elf = Path(elf).resolve()
    if not elf.is_file():
        raise ToolchainError(f"ELF {elf} does not exist")
    tool = "arm-none-eabi-size" if _elf_machine(elf) == ELF_MACHINE_ARM else "size"
    output = _run([_require_tool(tool, "measure the ELF"), elf], TOOL_TIMEOUT_S, tool).stdout
    lines = output.strip().splitlines()
    if len(lines) < 2:
        raise ToolchainError(f"unexpected output of {tool} {elf}: {output!r}")
    text, data, bss = (int(field) for field in lines[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "flash": text + data, "ram": data + bss}


def stack_usage(build_dir: str | os.PathLike[str]) -> dict[str, int]:
    """Stack frame bytes per function from the GCC ``.su`` files (-fstack-usage, Cortex-M builds) under build_dir.

    Maps function name -> bytes (the maximum when a name appears in several files). These are frames, not a
    call-graph worst case; "dynamic" frames are lower bounds. Empty when there are no .su files (host builds).
    """
    usage: dict[str, int] = {}
    for path in sorted(Path(build_dir).rglob("*.su")):
        for line in path.read_text(errors="replace").splitlines():
            fields = line.split("\t")
            if len(fields) < 2 or not fields[1].strip().isdigit():
                continue
            function = fields[0].rsplit(":", 1)[-1]
            usage[function] = max(usage.get(function, 0), int(fields[1]))
    return dict(sorted(usage.items()))


def _version(command: list[str]) -> str | None:
    if shutil.which(command[0]) is None:
        return None
    try:
        completed = subprocess.run(command, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                                   timeout=TOOL_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    first_line = (completed.stdout or completed.stderr).strip().splitlines()[:1]
    if completed.returncode != 0 or not first_line:
        return None
    for pattern in (r"version\s+(\d+(?:\.\d+)+)", r"\)\s+(\d+(?:\.\d+)+)", r"(\d+(?:\.\d+)+)"):
        match = re.search(pattern, first_line[0])
        if match:
            return match.group(1)
    return first_line[0]


def tool_versions() -> dict[str, str | None]:
    """Versions of the tools the engine build uses (gcc, arm-none-eabi-gcc, cmake, qemu-system-arm); None if absent."""
    return {
        "gcc": _version(["gcc", "--version"]),
        "arm-none-eabi-gcc": _version(["arm-none-eabi-gcc", "--version"]),
        "cmake": _version(["cmake", "--version"]),
        "qemu-system-arm": _version(["qemu-system-arm", "--version"]),
    }
