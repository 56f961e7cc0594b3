"""Objects and link maps for the export stage: compile C files one by one and list the global symbols each defines
and needs (nm -P), and add up what a linker map says a set of objects put in flash.

The export (mcuforge/codegen/export.py) picks the engine sources a model needs the way a linker picks archive members
(the closure of undefined symbols over defined ones) and renames every global symbol they define behind its prefix.
"""
from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mcuforge.codegen.export import needed_sources
from mcuforge.toolchain.process import TOOL_TIMEOUT_S, require_tool, run

# The engine's flags (engine_c/CMakeLists.txt: MF_COMPILE_OPTIONS) without the warnings-as-errors set, which callers add.
ENGINE_FLAGS = ("-O2", "-ffp-contract=off", "-std=c99")


@dataclass(frozen=True)
class ObjectSymbols:
    """The external symbols of one compiled source: those it defines and those it needs from other objects."""

    source: Path
    defined: frozenset[str]
    undefined: frozenset[str]


def _nm_globals(nm: str, obj: Path) -> tuple[set[str], set[str]]:
    listing = run([nm, "-P", "-g", obj], TOOL_TIMEOUT_S, f"{Path(nm).name} {obj.name}").stdout
    defined, undefined = set(), set()
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) < 2 or fields[0].endswith(":"):  # archive member headers
            continue
        (undefined if fields[1] in "Uw" else defined).add(fields[0])
    return defined, undefined


def compile_symbols(sources: Sequence[Path], out_dir: Path, compiler: str = "gcc", flags: Sequence[str] = (),
                    jobs: int = 2) -> list[ObjectSymbols]:
    """Compile every source with `compiler -c <flags>` into out_dir (one object each, names kept apart by their
    index) and list its global symbols with the matching nm (arm-none-eabi-nm for arm-none-eabi-gcc)."""
    cc = require_tool(compiler, "compile the export's sources")
    nm = require_tool(compiler[:-3] + "nm" if compiler.endswith("gcc") else "nm", "list the export's symbols")
    out_dir.mkdir(parents=True, exist_ok=True)

    def one(item: tuple[int, Path]) -> ObjectSymbols:
        index, source = item
        obj = out_dir / f"{index:03d}_{source.stem}.o"
        run([cc, *flags, "-c", source, "-o", obj], TOOL_TIMEOUT_S, f"{compiler} -c {source.name}")
        defined, undefined = _nm_globals(nm, obj)
        return ObjectSymbols(Path(source), frozenset(defined), frozenset(undefined))

    with ThreadPoolExecutor(max_workers=max(1, min(jobs, os.cpu_count() or 1))) as pool:
        return list(pool.map(one, enumerate(sources)))


def select_for_export(model_sources: Sequence[Path], engine_sources: Sequence[Path], targets: Sequence[tuple],
                      flags: Sequence[str], out_dir: Path) -> tuple[list[Path], set[str], set[str]]:
    """(engine sources the model needs, symbols left to the C library, global symbols defined by the model and those
    sources), over every target: (compiler, its own flags, a folder name under out_dir), e.g. the host gcc and the
    board's arm-none-eabi-gcc, so that the DSP and the plain paths both link."""
    chosen: set[Path] = set()
    external: set[str] = set()
    defined: set[str] = set()
    for compiler, target_flags, folder in targets:
        found = compile_symbols([*model_sources, *engine_sources], out_dir / folder, compiler,
                                [*ENGINE_FLAGS, "-Wall", "-Wextra", "-Werror", *target_flags, *flags])
        table = {o.source: (set(o.defined), set(o.undefined)) for o in found}
        needed, missing = needed_sources({s: table[s] for s in model_sources}, {s: table[s] for s in engine_sources})
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
