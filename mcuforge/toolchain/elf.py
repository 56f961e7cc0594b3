"""What a built ELF holds: sizes (``size``), symbols (``nm``), the call graph (``objdump``) and the stack frames GCC
reported (-fstack-usage ``.su`` files next to the objects).

Arm ELFs are read with the arm-none-eabi- tools; elf_size reads a host executable with the host ``size``.
"""
from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

from mcuforge.toolchain.process import TOOL_TIMEOUT_S, ToolchainError, require_tool, run

ELF_MACHINE_ARM = 40
DISASSEMBLY_TIMEOUT_S = 120.0
_FUNCTION = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
_CALL = re.compile(r"^\s*[0-9a-f]+:\s+(bl|blx|b|b\.w|b\.n)\s+([0-9a-f]+) <([^>+]+)>")


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
    output = run([require_tool(tool, "measure the ELF"), elf], TOOL_TIMEOUT_S, tool).stdout
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


def symbol_addresses(elf: str | os.PathLike[str]) -> dict[str, int]:
    """Addresses of the symbols of an Arm ELF (arm-none-eabi-nm), Thumb bit cleared."""
    nm = require_tool("arm-none-eabi-nm", "read symbols of the ELF")
    listing = run([nm, elf], TOOL_TIMEOUT_S, "arm-none-eabi-nm").stdout
    addresses = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 3:
            addresses[fields[2]] = int(fields[0], 16) & ~1
    return addresses


def symbols(elf: Path) -> dict[str, tuple[str, int]] | None:
    """name -> (type letter, size) of the sized symbols of an Arm ELF (arm-none-eabi-nm -S); None when the tool or
    the ELF is missing."""
    tool = shutil.which("arm-none-eabi-nm")
    if tool is None or not elf.is_file():
        return None
    listing = run([tool, "-S", elf], TOOL_TIMEOUT_S, "arm-none-eabi-nm -S").stdout
    sized = {}
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) == 4:
            sized[fields[3]] = (fields[2], int(fields[1], 16))
    return sized


def call_graph(elf: Path) -> dict[str, set[str]]:
    """Function -> functions it calls (direct calls and tail calls), from the Arm ELF's disassembly."""
    objdump = require_tool("arm-none-eabi-objdump", "measure the stack of the board build")
    text = run([objdump, "-d", "--no-show-raw-insn", elf], DISASSEMBLY_TIMEOUT_S, "arm-none-eabi-objdump").stdout
    calls: dict[str, set[str]] = {}
    current = None
    for line in text.splitlines():
        match = _FUNCTION.match(line)
        if match:
            current = match.group(2)
            calls.setdefault(current, set())
            continue
        match = _CALL.match(line)
        if match and current is not None and match.group(3) != current:
            calls[current].add(match.group(3))
    return calls
