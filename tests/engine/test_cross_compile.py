"""The engine compiles warning-free for Cortex-M, and fixed mode keeps soft-float out of the integer kernels."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from mf_engine import ENGINE_DIR, MODE_MACRO, engine_sources

ARM_GCC = shutil.which("arm-none-eabi-gcc")
CORES = {
    "cortex-m4f": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"],
    "cortex-m3": ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"],
}
FLOAT_KERNELS = {"mf_softmax_s8.c"}  # softmax is float32 in both modes (see mcuforge.h)

pytestmark = pytest.mark.skipif(ARM_GCC is None, reason="arm-none-eabi-gcc not installed")


def _compile(src: Path, out: Path, core: str, mode: str, optimize: tuple[str, ...] = ("-O2",)) -> None:
    cmd = [ARM_GCC, *CORES[core], "-std=c99", *optimize, "-Wall", "-Wextra", "-Werror", "-ffp-contract=off",
           f"-DMF_REQUANT_MODE={MODE_MACRO[mode]}", f"-I{ENGINE_DIR / 'include'}", "-c", str(src), "-o", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("core", sorted(CORES))
@pytest.mark.parametrize("mode", sorted(MODE_MACRO))
def test_cross_compiles(tmp_path, core, mode):
    for src in engine_sources():
        _compile(src, tmp_path / (src.stem + ".o"), core, mode)


def test_fixed_mode_integer_kernels_need_no_soft_float(tmp_path):
    nm = shutil.which("arm-none-eabi-nm")
    for src in engine_sources():
        obj = tmp_path / (src.stem + ".o")
        _compile(src, obj, "cortex-m3", "fixed")
        undefined = subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True, check=True).stdout
        soft_float = [line.split()[-1] for line in undefined.splitlines()
                      if line.split()[-1].startswith(("__aeabi_f", "__aeabi_d", "__aeabi_i2f", "__aeabi_ui2f"))]
        if src.name in FLOAT_KERNELS:
            continue
        assert not soft_float, f"{src.name} pulls soft-float helpers in fixed mode: {soft_float}"


@pytest.mark.parametrize("optimize", [("-O0",), ("-Os",), ("-O3",), ("-O2", "-fno-omit-frame-pointer")],
                         ids=["O0", "Os", "O3", "frame-pointer"])
def test_inline_asm_kernels_compile_at_every_optimization_level(tmp_path, optimize):
    """The DSP kernels' register-resident inline asm loops leave the compiler a register to spare (a frame pointer
    takes one; at -O0 the C path is used), so a user's debug or size build compiles too."""
    asm_sources = [src for src in engine_sources() if "__asm__" in src.read_text()]
    assert asm_sources  # mf_pointwise_s8.c, mf_depthwise_row_s8.c, ...
    for src in asm_sources:
        for mode in sorted(MODE_MACRO):
            _compile(src, tmp_path / (src.stem + ".o"), "cortex-m4f", mode, optimize)
