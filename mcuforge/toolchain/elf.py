"""What a built ELF holds: sizes (``size``), symbols (``nm``), the call graph (``objdump``) and the stack frames GCC
reported (-fstack-usage ``.su`` files next to the objects).

Arm ELFs are read with the arm-none-eabi- tools; elf_size reads a host executable with the host ``size``.
"""
from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np

from mcuforge.toolchain.process import TOOL_TIMEOUT_S, ToolchainError, require_tool, run

ELF_MACHINE_ARM = 40
DISASSEMBLY_TIMEOUT_S = 120.0
_FUNCTION = re.compile(r"^([0-9a-f]+) <([^>]+)>:$")
_CALL = re.compile(r"^\s*[0-9a-f]+:\s+(bl|blx|b|b\.w|b\.n)\s+([0-9a-f]+) <([^>+]+)>")
_INSN = re.compile(r"^\s*[0-9a-f]+:\s+(\S+)\s*(.*)$")
_REGISTER = re.compile(r"r\d+|sl|fp|ip|lr")
_SHT_PROGBITS, _SHF_ALLOC, _SHF_EXECINSTR = 1, 0x2, 0x4


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
    return disassembly(elf)["calls"]


def disassembly(elf: Path) -> dict:
    """What the Arm ELF's code says about its stack, from one arm-none-eabi-objdump pass.

    "calls": function -> functions it calls directly (bl/blx/b to a symbol); "frames": function -> bytes its own code
    moves the stack pointer down (every push/vpush/stmdb sp!/sub sp, #n/str ..., [sp, #-n]! in its body, summed: an
    upper bound for the library functions compiled without -fstack-usage); "dynamic": functions that move sp by a
    register (alloca, VLAs: no static bound); "indirect": functions calling through a register (blx rN, bx rN);
    "address_taken": functions whose address is in a literal pool or, as a Thumb code pointer (bit 0 set), in a data
    section (.data, .rodata, the init/fini arrays: a function pointer stored only in an initialised table); the
    vector table is left out (its handlers are entered by exceptions, counted as the exception frame).
    """
    objdump = require_tool("arm-none-eabi-objdump", "measure the stack of the board build")
    text = run([objdump, "-d", "--no-show-raw-insn", elf], DISASSEMBLY_TIMEOUT_S, "arm-none-eabi-objdump").stdout
    calls: dict[str, set[str]] = {}
    frames: dict[str, int] = {}
    words: set[int] = set()
    dynamic: set[str] = set()
    indirect: set[str] = set()
    instance: dict[str, int] = {}
    lines = text.splitlines()
    named = [(int(m.group(1), 16), m.group(2)) for m in map(_FUNCTION.match, lines) if m]
    clashing = {name for name in {n for _, n in named} if sum(n == name for _, n in named) > 1}
    # two static functions may share a name (newlib's two __sbprintf): those are told apart by their address
    starts = {address: f"{name}@{address:x}" if name in clashing else name for address, name in named}
    current = None
    for line in lines:
        match = _FUNCTION.match(line)
        if match:
            current = starts[int(match.group(1), 16)]
            calls.setdefault(current, set())
            instance[current] = 0
            continue
        if current is None:
            continue
        match = _CALL.match(line)
        if match:
            callee = starts.get(int(match.group(2), 16), match.group(3))
            if callee != current:
                calls[current].add(callee)
            continue
        match = _INSN.match(line)
        if not match:
            continue
        mnemonic, operands = match.group(1), match.group(2).split(";")[0].split("@")[0].strip()
        if mnemonic == ".word":
            words.add(int(operands.split()[0], 16) & ~1)
        elif mnemonic in ("blx", "bx") and _REGISTER.fullmatch(operands) and operands != "lr":
            indirect.add(current)
        else:
            drop = _sp_decrement(mnemonic, operands)
            if drop is None:
                dynamic.add(current)
            else:
                instance[current] += drop
                frames[current] = max(frames.get(current, 0), instance[current])
    words |= data_pointers(elf)
    address_taken = {starts[address] for address in words if address in starts}
    frames.update({name: 0 for name in calls if name not in frames})
    return {"calls": calls, "frames": frames, "dynamic": dynamic, "indirect": indirect,
            "address_taken": address_taken}


def data_pointers(elf: Path) -> set[int]:
    """Addresses (bit 0 cleared) of the Thumb code pointers that may sit in the ELF's initialised data: every aligned
    32-bit little-endian word with bit 0 set in an allocated, non-executable PROGBITS section other than the vector
    table. Words of weights that happen to look like a pointer to a function's first instruction only add that
    function as a possible target of indirect calls: the bound stays an upper bound."""
    data = Path(elf).read_bytes()
    if data[:4] != b"\x7fELF" or data[4] != 1 or data[5] != 1:
        raise ToolchainError(f"{elf}: not a 32-bit little-endian ELF")
    shoff, = struct.unpack_from("<I", data, 0x20)
    shentsize, shnum, shstrndx = struct.unpack_from("<HHH", data, 0x2E)

    def header(index: int) -> tuple:  # name, type, flags, addr, offset, size
        return struct.unpack_from("<IIIIII", data, shoff + index * shentsize)

    names = header(shstrndx)[4]
    found: set[int] = set()
    for index in range(shnum):
        name_at, kind, flags, address, offset, size = header(index)
        name = data[names + name_at:data.index(b"\0", names + name_at)].decode("ascii", "replace")
        if kind != _SHT_PROGBITS or not flags & _SHF_ALLOC or flags & _SHF_EXECINSTR or name == ".vectors":
            continue
        skip = -address % 4  # the words aligned in the address space
        words = np.frombuffer(data, "<u4", count=(size - skip) // 4, offset=offset + skip) if size > skip else ()
        if len(words):
            found.update(int(w) & ~1 for w in np.unique(words[(words & 1) == 1]))
    return found


def _register_count(registers: str) -> tuple[int, int]:
    """(count, bytes per register) of a register list such as 'r4, r5, lr', 'r4-r11' or 'd8-d15'."""
    count, width = 0, 4
    for item in registers.strip("{} ").split(","):
        item = item.strip()
        if item.startswith("d"):
            width = 8
        bounds = item.split("-")
        if len(bounds) == 2 and bounds[0][1:].isdigit() and bounds[1][1:].isdigit():
            count += int(bounds[1][1:]) - int(bounds[0][1:]) + 1
        elif item:
            count += 1
    return count, width


def _sp_decrement(mnemonic: str, operands: str) -> int | None:
    """Bytes an instruction moves sp down (0 for most); None when it sets sp from a register (unbounded here)."""
    base = mnemonic.split(".")[0]
    if base in ("push", "vpush") or (base in ("stmdb", "stmfd", "vstmdb") and operands.startswith("sp!")):
        count, width = _register_count(operands[operands.index("{"):])
        return count * width
    if base in ("sub", "subw") and re.match(r"sp,\s*(sp,\s*)?#", operands):
        return int(operands.rsplit("#", 1)[1], 0)
    if base in ("sub", "subw", "mov", "add") and re.match(r"sp,\s*(sp,\s*)?r\d", operands):
        return None if base != "add" or "#" not in operands else 0
    written_back = re.search(r"\[sp,\s*#-(\d+)\]!", operands)
    if base.startswith(("str", "vstr")) and written_back:
        return int(written_back.group(1))
    return 0
