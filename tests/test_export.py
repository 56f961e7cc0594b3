"""The export (issue 19): the verified digits model as a C library, built the way a user would, outside the
repository (the exported folder, examples/export_app and the application's startup code copied to a temporary
directory): CMake add_subdirectory and the Makefile fragment, host gcc and arm-none-eabi-gcc for the pipeline's QEMU
board, C99 and C11, -Wall -Wextra -Werror. The reference is what verify recorded: its int8 inputs and the outputs
of the host and QEMU runs (which verify compared with ONNX Runtime); symbols come from nm, flash from the link maps."""
import json
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import numpy as np
import pytest

from helpers import ROOT, have_cross_tools
from mcuforge.core.errors import McuforgeError
from mcuforge.toolchain.objects import global_symbols, map_flash
from tasks import config as config_stage
from tasks import export as export_stage

pytestmark = [pytest.mark.slow, pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")]

WARNINGS = "-O2 -Wall -Wextra -Werror -ffunction-sections -fdata-sections"
ARENA_SECTION = '__attribute__((section(".bss.user_arena")))'


def _load(path: Path):
    return json.loads(path.read_text())


def _sh(*command, cwd: Path | None = None) -> str:
    result = subprocess.run([str(c) for c in command], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"{command}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.fixture(scope="module")
def build(digits_built: Path) -> Path:
    return digits_built


@pytest.fixture(scope="module")
def cfg(build: Path) -> dict:
    return _load(build / "config.resolved.json")


@pytest.fixture(scope="module")
def workspace(tmp_path_factory, build: Path, cfg: dict) -> Path:
    """A folder without the repository: the export, the example, the application's platform files, the vectors."""
    root = tmp_path_factory.mktemp("user")
    shutil.copytree(build / "export" / "digits", root / "digits")
    shutil.copytree(ROOT / "examples" / "export_app", root / "app")
    machine = cfg["board"]["qemu"]["machine"]
    (root / "app" / "platform").mkdir()
    for name in ("startup.c", "mf_sections.ld", f"{machine}.ld"):  # the application's startup code and linker script
        shutil.copy(ROOT / "engine_c" / "platform" / name, root / "app" / "platform" / name)
    work = build / "verify" / "work"
    for name in ("inputs.bin", "host_outputs.bin", "qemu_outputs.bin", "ort_outputs.bin"):
        shutil.copy(work / name, root / name)
    x = np.load(build / "data" / "x_test.npy")[:cfg["deploy"]["verify_samples"]]
    x.tofile(root / "pixels.u8")
    (x.astype(np.float32) / np.float32(255.0)).tofile(root / "values.f32")
    return root


def test_export_folder(build: Path, cfg: dict):
    folder = build / "export" / "digits"
    summary = _load(build / "export" / "export.json")
    for name in ("include/digits.h", "src/model.c", "src/weights.c", "src/digits_prefix.h", "src/digits_api.c",
                 "CMakeLists.txt", "digits.mk", "README.md"):
        assert (folder / name).is_file(), name
    code = "\n".join(p.read_text() for p in folder.rglob("*.[ch]"))
    for forbidden in ("#include <stdio.h>", "#include <stdlib.h>", "malloc(", "main("):  # no runner, no stdio, no heap
        assert forbidden not in code, forbidden
    # only the engine sources the model uses: the archive members the linker pulled into the verified board build
    link_map = (build / f"build_{cfg['board']['name']}" / "mf_runner.map").read_text()
    pulled = link_map.split("Memory Configuration", 1)[0]  # "Archive member included ...": one member a line
    members = set(re.findall(r"^libmf_engine\.a\((\w+)\.c\.obj\)", pulled, flags=re.M)) - {"model", "weights"}
    copied = {p.stem for p in (folder / "src").rglob("mf_*.c")}
    assert copied == members and 5 < len(copied) < len(list((ROOT / "engine_c" / "src").rglob("*.c")))
    header = (folder / "include" / "digits.h").read_text()
    plan = _load(build / "schedule" / "plan.json")
    assert f"#define DIGITS_ARENA_BYTES {plan['arena_bytes']}" in header
    assert "#define DIGITS_NUM_CLASSES 10" in header and "digits_quantize_u8" in header and "@brief" in header
    readme = (folder / "README.md").read_text()
    assert "PASSED" in readme and "NOT VERIFIED" not in readme and "export_unverified=1" in readme
    assert f"{summary['flash_bytes']} B" in readme and cfg["resolved"]["requant"] in readme
    manifest = _load(build / "manifest.json")
    assert "export/digits.zip" in manifest["artifacts"]


def test_zip_is_reproducible_and_sorted(build: Path, cfg: dict):
    zip_path = build / "export" / "digits.zip"
    first = zip_path.read_bytes()
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        assert names == sorted(names) and all(n.startswith("digits/") for n in names)
        assert {info.date_time for info in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}
        folder = build / "export" / "digits"
        for name in names:
            assert archive.read(name) == (folder / name.split("/", 1)[1]).read_bytes(), name
    export_stage.run(cfg, config_stage.paths(cfg, build))  # the whole stage again: the same bytes
    assert zip_path.read_bytes() == first


def _cmake(workspace: Path, out: str, std: str, arm: bool, cfg: dict) -> Path:
    args = ["cmake", "-S", workspace / "app", "-B", workspace / out, f"-DMF_EXPORT_DIR={workspace / 'digits'}",
            f"-DCMAKE_C_STANDARD={std}", "-DCMAKE_C_EXTENSIONS=OFF"]
    if arm:
        machine = cfg["board"]["qemu"]["machine"]
        args += ["-DCMAKE_SYSTEM_NAME=Generic", "-DCMAKE_C_COMPILER=arm-none-eabi-gcc",
                 "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY",
                 f"-DCMAKE_C_FLAGS={' '.join(cfg['board']['compiler']['flags'])} {WARNINGS}",
                 f"-DEXAMPLE_PLATFORM_DIR={workspace / 'app' / 'platform'}",
                 f"-DEXAMPLE_LINKER_SCRIPT={workspace / 'app' / 'platform' / (machine + '.ld')}"]
    else:  # and the arena placed by the user's attribute
        args += [f"-DCMAKE_C_FLAGS={WARNINGS}", f"-DDIGITS_ARENA_SECTION={ARENA_SECTION}"]
    _sh(*args)
    _sh("cmake", "--build", workspace / out, "--parallel", "2")
    return workspace / out / ("example.elf" if arm else "example")


def _make(workspace: Path, out: str, std: str, arm: bool, cfg: dict) -> Path:
    args = ["make", "-C", workspace / "app", f"MF_EXPORT_DIR={workspace / 'digits'}", f"BUILD={workspace / out}",
            f"STD={std}", "-j2"]
    if arm:
        machine = cfg["board"]["qemu"]["machine"]
        args += ["CC=arm-none-eabi-gcc", f"ARCH_FLAGS={' '.join(cfg['board']['compiler']['flags'])}",
                 "PLATFORM_DIR=platform", f"LINKER_SCRIPT=platform/{machine}.ld"]
    else:
        args += ["CC=gcc"]
    _sh(*args)
    return workspace / out / ("example.elf" if arm else "example")


def _run(workspace: Path, elf: Path, arm: bool, cfg: dict, inputs: str, outputs: str) -> bytes:
    if arm:
        machine = cfg["board"]["qemu"]["machine"]
        _sh("qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", f"enable=on,target=native,arg=example,arg={inputs},arg={outputs}",
            "-kernel", elf, cwd=workspace)
    else:
        _sh(elf, inputs, outputs, cwd=workspace)
    return (workspace / outputs).read_bytes()


@pytest.mark.parametrize("tool,std,arm", [("cmake", "99", False), ("make", "c11", False),
                                          ("cmake", "11", True), ("make", "c99", True)])
def test_standalone_example(workspace: Path, build: Path, cfg: dict, tool: str, std: str, arm: bool):
    out = f"{tool}_{std}_{'arm' if arm else 'host'}"
    elf = (_cmake if tool == "cmake" else _make)(workspace, out, std, arm, cfg)
    expected = (workspace / ("qemu_outputs.bin" if arm else "host_outputs.bin")).read_bytes()
    assert expected == (workspace / "ort_outputs.bin").read_bytes()  # verify passed with 0 differing bytes
    assert _run(workspace, elf, arm, cfg, "inputs.bin", f"{out}.bin") == expected
    if not arm:  # the input helpers reproduce ONNX Runtime's QuantizeLinear on the raw data
        assert _run(workspace, elf, arm, cfg, "pixels.u8", f"{out}_u8.bin") == expected
        assert _run(workspace, elf, arm, cfg, "values.f32", f"{out}_f32.bin") == expected

    if tool == "cmake" and not arm:
        model_o = next((workspace / out / "export").rglob("model.c.o"))
        sections = _sh("objdump", "-h", model_o)
        arena = _load(build / "schedule" / "plan.json")["arena_bytes"]
        assert re.search(rf"\.bss\.user_arena\s+0*{arena:x}\s", sections), sections

    # no global symbol outside the prefix
    if tool == "cmake":
        library = [workspace / out / "export" / "libdigits.a"]
    else:
        library = [o for o in (workspace / out).glob("*.o") if o.name not in ("main.o", "startup.o")]
    symbols = global_symbols(library, "arm-none-eabi-nm" if arm else "nm")
    assert symbols["defined"] and all(s.startswith("digits_") for s in symbols["defined"]), symbols["defined"]
    libc = set(_load(build / "export" / "export.json")["needs_from_libc"])
    assert symbols["undefined"] <= libc | {"fmaf"}, symbols["undefined"]

    if arm:  # flash of model + engine within 1 % of the verified build's (the API helpers aside)
        link_map = workspace / out / "example.map"
        if tool == "cmake":
            ours = map_flash(link_map, "libdigits.a(")
        else:
            ours = {k: map_flash(link_map, str(workspace / out))[k] - map_flash(link_map, "/main.o")[k]
                    - map_flash(link_map, "/startup.o")[k] for k in (".text", ".rodata", ".data")}
        api = map_flash(link_map, "digits_api.")
        verified = map_flash(build / f"build_{cfg['board']['name']}" / "mf_runner.map", "libmf_engine.a")
        flash, reference = sum(ours.values()) - sum(api.values()), sum(verified.values())
        assert reference > 10000 and abs(flash - reference) <= 0.01 * reference, (ours, api, verified)


def test_refuses_unverified(tmp_path: Path, build: Path, cfg: dict):
    copy = tmp_path / "digits"
    shutil.copytree(build, copy, ignore=shutil.ignore_patterns("*_dump", "work", "export*", "review"))
    paths = config_stage.paths(cfg, copy)
    paths.verify_report.unlink()
    with pytest.raises(McuforgeError, match=r"(?s)refusing to export 'digits': verification did not run.*export_unverified=1"):
        export_stage.run(cfg, paths)
    report = _load(build / "verify" / "report.json") | {"passed": False, "problems": ["layer 3: 2 bytes differ"]}
    paths.verify_report.write_text(json.dumps(report))
    with pytest.raises(McuforgeError, match=r"verification failed \(layer 3: 2 bytes differ\)"):
        export_stage.run(cfg, paths)
    forced = json.loads(json.dumps(cfg))
    forced["deploy"]["export_unverified"] = True
    assert export_stage.run(forced, paths)["verified"] is False
    readme = (copy / "export" / "digits" / "README.md").read_text()
    assert "**NOT VERIFIED**" in readme and "layer 3: 2 bytes differ" in readme
