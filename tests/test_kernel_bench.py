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


# The DSP path's register loops under QEMU on the shapes where they split: 5 x 5 = 25 pixels (12 pairs and a last
# pixel), 7 output channels (3 pairs and an odd one; the last pixel 3 + 3 + 1 rows), 12 input channels (one 8-channel
# pass and one word); a fully connected layer 42 -> 11 (rows 3 + 3 + 3 + 2, a 2-channel tail after the words).
REMAINDERS = [
    kernel_bench.Shape("odd_conv1x1", "1x1 conv 5x5x12 -> 7", lambda: nn.Conv2d(12, 7, 1), (12, 5, 5), ("conv1x1",)),
    kernel_bench.Shape("odd_fc", "fully connected 42 -> 11",
                       lambda: kernel_bench.AfterAdd(nn.Linear(42, 11), flatten=True), (42, 1, 1), ("fc",)),
]


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
@pytest.mark.parametrize("shape", REMAINDERS, ids=[shape.key for shape in REMAINDERS])
def test_dsp_loops_equal_the_plain_path_on_every_remainder(tmp_path: Path, shape):
    row = kernel_bench.bench_shape(shape, ["m4"], "fixed", tmp_path)
    assert set(row["runs"]) == {"m4/dsp", "m4/plain"}
    assert row["outputs_identical"], row["runs"]


def test_before_variant_is_added_on_every_core(tmp_path: Path):
    assert kernel_bench.variants_of("m3") == ["plain"]
    kernel_bench.BEFORE_ENGINE[:] = [tmp_path]
    try:
        assert kernel_bench.variants_of("m4") == ["dsp", "plain", "before"]
        assert kernel_bench.variants_of("m3") == ["plain", "before"]
    finally:
        kernel_bench.BEFORE_ENGINE[:] = []
