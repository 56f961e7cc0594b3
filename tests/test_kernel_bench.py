"""The kernel benchmark (benchmarks/kernel_bench.py) on one small shape under QEMU, and the extra-defines build option
it uses for its engine variants (toolchain.cmake_build(defines=...), engine_c/CMakeLists.txt MF_EXTRA_DEFINES)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from torch import nn

from benchmarks import kernel_bench
from helpers import have_cross_tools
from mcuforge import toolchain
from mcuforge.toolchain import ToolchainError

# 1x1 convolution 8x8x16 -> 8: every output value (8 x 8 pixels x 8 channels) sums 16 products
SMALL = kernel_bench.Shape("small_conv1x1", "1x1 conv 8x8x16 -> 8", lambda: nn.Conv2d(16, 8, 1), (16, 8, 8),
                           ("conv1x1",), cmsis_nn=2.69)
SMALL_MACS = 8 * 8 * 8 * 16


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_small_shape_counts_are_exact_and_the_variants_agree(tmp_path: Path):
    first = kernel_bench.bench_shape(SMALL, ["m4"], "fixed", tmp_path / "first")
    second = kernel_bench.bench_shape(SMALL, ["m4"], "fixed", tmp_path / "second")
    assert first["units"] == SMALL_MACS and first["unit"] == "MAC"
    assert first["counted"] == "whole inference"
    assert set(first["runs"]) == {"m4/dsp", "m4/plain"}
    for key, run in first["runs"].items():
        assert run["instructions"] > SMALL_MACS, run  # at least one instruction per MAC
        assert run["instructions"] == second["runs"][key]["instructions"]  # exact counts are deterministic
        assert run["per_unit"] == pytest.approx(run["instructions"] / SMALL_MACS, abs=1e-3)
        assert run["vs_cmsis_nn"] == pytest.approx(run["per_unit"] / 2.69, abs=1e-3)
    # the variants (and both runs) wrote the same output bytes
    assert first["outputs_identical"] and second["outputs_identical"]
    assert first["runs"]["m4/dsp"]["outputs_sha256"] == first["runs"]["m4/plain"]["outputs_sha256"]
    assert first["runs"]["m4/dsp"]["outputs_sha256"] == second["runs"]["m4/dsp"]["outputs_sha256"]
    table = kernel_bench.markdown({"requant": "fixed", "cores": ["m4"], "shapes": [first], "models": []})
    assert "| 1x1 conv 8x8x16 -> 8 | M4 | plain | 8,192 MACs |" in table


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("gcc") is None, reason="needs cmake and gcc")
def test_extra_defines_reach_the_compiler_and_only_when_given(tmp_path: Path):
    model = toolchain.ENGINE_DIR / "testmodel"
    toolchain.cmake_build(model, tmp_path / "plain", defines=["MF_NO_DSP", "MF_BENCH_LEVEL=2"])
    flags = (tmp_path / "plain" / "CMakeFiles" / "mf_engine.dir" / "flags.make").read_text()
    assert "-DMF_NO_DSP" in flags and "-DMF_BENCH_LEVEL=2" in flags
    toolchain.cmake_build(model, tmp_path / "default")
    arguments = json.loads((tmp_path / "default" / "mf_configure.json").read_text())
    assert not any("MF_EXTRA_DEFINES" in argument for argument in arguments)
    assert "MF_NO_DSP" not in (tmp_path / "default" / "CMakeFiles" / "mf_engine.dir" / "flags.make").read_text()
    with pytest.raises(ToolchainError, match="defines"):
        toolchain.cmake_build(model, tmp_path / "bad", defines=["A;B"])
