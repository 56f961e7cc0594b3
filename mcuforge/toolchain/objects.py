"""Symbols and link maps for the export stage: the global symbols each member of the verified builds' engine
library defines and needs (nm -P), and what a linker map says a set of objects put in flash.

The export (mcuforge/codegen/export.py) picks the engine sources a model needs the way the linker picked archive
members for the verified build (the closure of undefined symbols over defined ones), over the host and the board
libraries, and renames every global symbol they define behind its prefix.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Sequence

from mcuforge.codegen.export import needed_sources
from mcuforge.toolchain.process import TOOL_TIMEOUT_S, ToolchainError, require_tool, run

# The engine's flags (engine_c/CMakeLists.txt: MF_COMPILE_OPTIONS) for the README's "verified with".
ENGINE_FLAGS = ("-O2", "-ffp-contract=off", "-std=c99", "-Wall", "-Wextra", "-Werror")


def _nm_globals(nm: str, obj: Path) -> tuple[set[str], set[str]]:
    listing = run([nm, "-P", "-g", obj], TOOL_TIMEOUT_S, f"{Path(nm).name} {obj.name}").stdout
    defined, undefined = set(), set()
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].endswith(":"):  # archive member headers
            continue
        (undefined if fields[1] in "Uw" else defined).add(fields[0])
    return defined, undefined


def archive_symbols(archive: Path, nm: str = "nm") -> dict[str, tuple[set[str], set[str]]]:
    """{source file name (e.g. "mf_add_s8.c"): (defined global symbols, undefined symbols)} of every member of a
    static library built by CMake (members "<source>.o" or "<source>.obj"), from `nm -P -g`."""
    tool = require_tool(nm, "list the symbols of the verified build's engine library")
    listing = run([tool, "-P", "-g", archive], TOOL_TIMEOUT_S, f"{Path(tool).name} {Path(archive).name}").stdout
    members: dict[str, tuple[set[str], set[str]]] = {}
    current = None
    for line in listing.splitlines():
        header = re.match(r"^.*\[(.+?)\.o(?:bj)?\]:$", line)
        if header:
            current = members.setdefault(header.group(1), (set(), set()))
            continue
        fields = line.split()
        if current is not None and len(fields) >= 2:
            (current[1] if fields[1] in "Uw" else current[0]).add(fields[0])
    return members


def select_for_export(model_sources: Sequence[str], archives: Sequence[tuple[Path, str]]) -> tuple[
        list[str], set[str], set[str]]:
    """(engine source file names the model needs, symbols left to the C library, global symbols defined by the model
    and those sources) from the engine libraries of the verified builds: (archive, nm) of the host build and of the
    board build, so that both the DSP and the plain paths link. model_sources: the model's file names (model.c)."""
    chosen: set[str] = set()
    external: set[str] = set()
    defined: set[str] = set()
    for archive, nm in archives:
        table = archive_symbols(archive, nm)
        absent = [s for s in model_sources if s not in table]
        if absent:
            raise ToolchainError(f"{archive} has no member for {', '.join(absent)}: not a build of this model")
        engine = {s: table[s] for s in table if s not in model_sources}
        needed, missing = needed_sources({s: table[s] for s in model_sources}, engine)
        chosen |= set(needed)
        external |= missing
        defined |= set().union(*(table[s][0] for s in [*model_sources, *needed]))
    return sorted(chosen), external, defined


def global_symbols(objects: Sequence[Path], nm: str = "nm") -> dict[str, set[str]]:
    """Defined external symbols of built objects or archives: {"defined": names, "undefined": names}."""
    tool = require_tool(nm, "list the symbols of the built export")
    defined, undefined = set(), set()
    for obj in objects:
        d, u = _nm_globals(tool, Path(obj))
        defined |= d
        undefined |= u
    return {"defined": defined, "undefined": undefined - defined}


_MAP_INPUT = re.compile(r"^ ?(\.\S+)?\s+0x([0-9a-f]+)\s+0x([0-9a-f]+)\s+(\S.*)$")
FLASH_SECTIONS = (".text", ".rodata", ".data")  # .data is copied from flash at startup; .bss takes no flash


def map_flash(map_path: Path, owner: str) -> dict[str, int]:
    """Bytes that input sections of the objects whose name contains `owner` (an archive such as "libmf_engine.a", a
    folder such as "/digits/src/") contribute to the link, per kind (.text, .rodata, .data), from a GNU ld map
    (-Wl,-Map). Only the memory map part is read; discarded sections (--gc-sections) are listed before it."""
    text = Path(map_path).read_text(errors="replace")
    start = text.find("Linker script and memory map")
    sizes = dict.fromkeys(FLASH_SECTIONS, 0)
    section = None
    for line in text[start:].splitlines():
        if re.match(r"^ \.\S+$", line):  # a long input-section name: its address and size follow on the next line
            section = line.strip()
            continue
        match = _MAP_INPUT.match(line)
        if match and not match.group(4).startswith("load address"):
            name = match.group(1) or section
            section = None
            if name is None or owner not in match.group(4):
                continue
            kind = next((k for k in FLASH_SECTIONS if name == k or name.startswith(k + ".")), None)
            if kind is not None:
                sizes[kind] += int(match.group(3), 16)
        else:
            section = None
    return sizes
