"""The export: the verified model as a self-contained C library (docs/export.md).

Which engine sources a model needs is decided like a linker decides which archive members to pull: from the global
symbols each member of the verified builds' engine libraries defines and needs (mcuforge/toolchain/objects.py, host
and board), the closure of the model's undefined symbols. Every global symbol of the chosen sources is renamed behind the export's prefix
by `src/<prefix>prefix.h`, included first by every copied source, so two exported models can live in one firmware.

Layout of `build/<name>/export/<name>/`: include/<name>.h (the API), src/ (model, weights, the engine sources used,
the API source, the renaming header), CMakeLists.txt, <name>.mk, README.md; a zip beside it (fixed timestamps,
sorted entries).
"""
from __future__ import annotations

import re
import shutil
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from mcuforge.core.errors import McuforgeError
from mcuforge.core.io import atomic_path, write_text

ENGINE_HEADERS = ("include/mcuforge.h", "include/mf_frontend.h", "src/mf_internal.h", "src/mf_arith.h", "src/mf_dsp.h",
                  "src/frontend/mf_frontend_internal.h")
MODEL_SOURCES = ("model.c", "weights.c")
MODEL_HEADERS = ("model.h", "weights.h")
FRONTEND_SOURCES = ("mf_model_frontend.c",)  # an audio front end chained in front of the network (codegen/chain.py)
FRONTEND_HEADERS = ("mf_model_frontend.h",)


def model_sources(codegen_dir: Path) -> tuple[str, ...]:
    return MODEL_SOURCES + tuple(s for s in FRONTEND_SOURCES if (codegen_dir / s).is_file())


def model_headers(codegen_dir: Path) -> tuple[str, ...]:
    return MODEL_HEADERS + tuple(h for h in FRONTEND_HEADERS if (codegen_dir / h).is_file())
# The model's entry points keep short names behind the prefix: digits_invoke, not digits_mf_model_invoke.
API_NAMES = {"mf_model_invoke": "invoke", "mf_model_input": "input", "mf_model_output": "output",
             "mf_model_invoke_pcm": "invoke_pcm", "mf_model_anomaly_score": "score",
             "mf_model_anomaly_score_pcm": "score_pcm"}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a zip can hold: the archive does not depend on when it was made


@dataclass(frozen=True)
class ExportSpec:
    """What the export's texts say about the model: names, tensors, arena, labels, sizes, verification."""

    name: str  # the pipeline name: folder, header and target names
    requant: str  # "float" | "fixed"
    input_shape: tuple[int, ...]
    input_scale: float
    input_zero_point: int
    output_shape: tuple[int, ...]
    output_scale: float
    output_zero_point: int
    arena_bytes: int
    labels: tuple[str, ...] = ()
    u8_table: tuple[int, ...] = ()  # 256 int8 values: the pipeline's uint8 pixel -> the model's input (ORT)
    pcm_samples: int = 0  # an audio front end chained in front of the network: invoke_pcm takes this many int16
    score_clip_bytes: int = 0  # an autoencoder: score() takes a clip of this many int8 features (score_pcm: PCM)
    score_threshold: int = 0  # the integer threshold of the score's accumulator
    facts: Mapping = field(default_factory=dict)  # README figures: flash, stack, verification, hashes, flags

    @property
    def prefix(self) -> str:
        """The C prefix of every global symbol: the name in lower case, '-' as '_', never starting with a digit."""
        base = re.sub(r"[^a-z0-9_]", "_", self.name.lower())
        return ("m" + base if base[0].isdigit() else base) + "_"

    @property
    def upper(self) -> str:
        return self.prefix.upper()


def engine_sources(engine_dir: Path) -> list[Path]:
    """Every engine source that can end up in an export (the runner and the platform never do)."""
    return sorted(engine_dir.glob("src/**/*.c"))


def engine_files(engine_dir: Path, names: list[str]) -> list[Path]:
    """The engine sources of these file names ("mf_add_s8.c"), wherever they sit under engine_c/src."""
    by_name = {p.name: p for p in engine_sources(engine_dir)}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise McuforgeError(f"export: the verified build used {', '.join(unknown)}, which engine_c/src does not have "
                            "(rebuild: `doit build_host`, `doit build_<board>`)")
    return sorted(by_name[n] for n in names)


def needed_sources(model: Mapping[str, tuple[set, set]], engine: Mapping[str, tuple[set, set]]) -> tuple[
        list[str], set[str]]:
    """The engine sources the model's objects pull in, and the symbols nothing here defines (the C library's).

    model, engine: {source: (defined global symbols, undefined symbols)} of compiled objects. As a linker does with
    an archive, a source is taken when it defines a symbol that a taken object needs, until nothing changes."""
    definer: dict[str, str] = {}
    for source, (defined, _) in engine.items():
        for symbol in defined:
            definer.setdefault(symbol, source)
    taken: set[str] = set()
    wanted = set().union(*(undefined for _, undefined in model.values()))
    seen: set[str] = set()
    external: set[str] = set()
    while wanted - seen:
        symbol = min(wanted - seen)
        seen.add(symbol)
        source = definer.get(symbol)
        if source is None:
            external.add(symbol)
        elif source not in taken:
            taken.add(source)
            wanted |= engine[source][1]
    defined_here = set().union(*(d for d, _ in model.values()), *(engine[s][0] for s in taken))
    return sorted(taken), external - defined_here


def renamed(spec: ExportSpec, symbols: set[str]) -> dict[str, str]:
    """{global symbol: its exported name}: the prefix in front, the model's entry points shortened."""
    return {symbol: spec.prefix + API_NAMES.get(symbol, symbol) for symbol in sorted(symbols)}


def prefix_header(spec: ExportSpec, renames: Mapping[str, str]) -> str:
    """src/<prefix>prefix.h: the requantization mode and the renaming of every global symbol of the sources."""
    guard = f"{spec.upper}PREFIX_H"
    lines = [f"/* Generated by mcuforge for the export '{spec.name}': included first by every source of src/. Fixes",
             " * the requantization mode the model was verified with and renames every global symbol of the model and",
             f" * the engine behind the prefix '{spec.prefix}' (two exported models can share a firmware). Do not edit. */",
             f"#ifndef {guard}", f"#define {guard}", "",
             f"#define MF_REQUANT_MODE MF_REQUANT_{spec.requant.upper()}", "",
             f"#ifdef {spec.upper}ARENA_SECTION", f"#define MF_ARENA_SECTION {spec.upper}ARENA_SECTION", "#endif", ""]
    width = max((len(s) for s in renames), default=0)
    lines += [f"#define {symbol:<{width}} {name}" for symbol, name in renames.items()]
    lines += ["", f"#endif /* {guard} */", ""]
    return "\n".join(lines)


def with_prefix(text: str, relative: str, spec: ExportSpec) -> str:
    """A copied .c file with the prefix header included on its first line (relative to its folder under src/)."""
    depth = relative.count("/") - 1  # "src/model.c" -> 0, "src/kernels/x.c" -> 1
    include = "../" * depth + f"{spec.prefix}prefix.h"
    return f'#include "{include}" /* added by the export: symbol prefix, requantization mode */\n' + text


def export_path(engine_dir: Path, source: Path) -> str:
    """Where an engine file goes in the export: src/ keeps engine_c/src's layout; mcuforge.h joins it in src/."""
    relative = source.relative_to(engine_dir).as_posix()
    return "src/" + relative.split("/", 1)[1]


def layout(spec: ExportSpec, engine_dir: Path, codegen_dir: Path, chosen: list[Path],
           renames: Mapping[str, str], texts: Mapping[str, str]) -> dict[str, str]:
    """{relative path: text} of every file of the export folder. texts: the generated files (header, API source,
    CMakeLists.txt, the .mk fragment, README.md) by relative path."""
    files: dict[str, str] = {}
    for header in ENGINE_HEADERS:
        files[export_path(engine_dir, engine_dir / header)] = (engine_dir / header).read_text()
    for header in model_headers(codegen_dir):
        files[f"src/{header}"] = (codegen_dir / header).read_text()
    for source in chosen:
        relative = export_path(engine_dir, source)
        files[relative] = with_prefix(source.read_text(), relative, spec)
    for source in model_sources(codegen_dir):
        files[f"src/{source}"] = with_prefix((codegen_dir / source).read_text(), f"src/{source}", spec)
    if "src/frontend/mf_frontend.c" in files:  # it includes its public header from its own folder (no -I src/)
        files["src/frontend/mf_frontend.h"] = files["src/mf_frontend.h"].replace('#include "mcuforge.h"', '#include "../mcuforge.h"')
    files[f"src/{spec.prefix}prefix.h"] = prefix_header(spec, renames)
    files.update(texts)
    return dict(sorted(files.items()))


def c_sources(files: Mapping[str, str]) -> list[str]:
    return sorted(path for path in files if path.endswith(".c"))


def write_folder(folder: Path, files: Mapping[str, str]) -> None:
    """Replace the export folder by these files (a file left from an earlier export never survives)."""
    if folder.exists():
        shutil.rmtree(folder)
    for relative, text in files.items():
        write_text(folder / relative, text)


def write_zip(folder: Path, zip_path: Path) -> None:
    """The folder as a zip whose bytes depend only on the files: sorted entries under <folder name>/, fixed date,
    permissions and creating system, deflate at a fixed level."""
    entries = sorted(p for p in folder.rglob("*") if p.is_file())
    if not entries:
        raise McuforgeError(f"export: {folder} is empty, nothing to zip")
    with atomic_path(zip_path) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for path in entries:
            info = zipfile.ZipInfo(f"{folder.name}/{path.relative_to(folder).as_posix()}", date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # Unix, whatever the machine
            info.external_attr = 0o644 << 16
            archive.writestr(info, path.read_bytes(), compresslevel=9)
