"""The engine build and run plumbing (mcuforge/toolchain/, engine_c/CMakeLists.txt, runner, platform, QEMU plugin),
tested with the hand-written stand-in model in engine_c/testmodel, whose function is recomputed here in Python."""
from __future__ import annotations

import random
import shutil
import stat
import subprocess
import time
from fractions import Fraction
from pathlib import Path

import pytest

from mcuforge import toolchain
from mcuforge.toolchain import ToolchainError

TESTMODEL_DIR = toolchain.ENGINE_DIR / "testmodel"
INPUT_BYTES = 64
OUTPUT_BYTES = 16
NUM_LAYERS = 3
NUM_SAMPLES = 6
WEIGHTS = [(37 * index) % 41 - 20 for index in range(INPUT_BYTES)]

HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None


def qemu_test(function):
    """Marks a test as needing QEMU (qemu + slow markers), skipped with the reason only when the tools are absent."""
    marks = [pytest.mark.qemu, pytest.mark.slow,
             pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm or arm-none-eabi-gcc is not installed")]
    for mark in marks:
        function = mark(function)
    return function


# The boards' flags for each QEMU machine (boards/*.yaml), as cmake_build receives them.
BOARDS = {
    "mps2-an385": {"compiler": {"flags": ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]},
                   "qemu": {"machine": "mps2-an385"}},
    "mps2-an386": {"compiler": {"flags": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]},
                   "qemu": {"machine": "mps2-an386"}},
    "mps2-an500": {"compiler": {"flags": ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-d16", "-mfloat-abi=hard"]},
                   "qemu": {"machine": "mps2-an500"}},
    "mps3-an547": {"compiler": {"flags": ["-mcpu=cortex-m55", "-mthumb", "-mfloat-abi=hard"]},
                   "qemu": {"machine": "mps3-an547"}},
}


# ---- the stand-in model in Python (engine_c/testmodel/model.h) ---------------------------------------------------
def _sat8(value: int) -> int:
    return max(-128, min(127, value))


def reference_layers(sample: bytes, requant_mode: str) -> list[bytes]:
    """Every layer's int8 output for one input sample, as the C stand-in model computes it."""
    x = [value - 256 if value > 127 else value for value in sample]
    layer0 = [_sat8(x[index] + WEIGHTS[index]) for index in range(INPUT_BYTES)]
    layer1 = []
    for index in range(OUTPUT_BYTES):
        acc = sum(layer0[4 * index:4 * index + 4])
        if requant_mode == "float":
            value = round(Fraction(acc) * Fraction(3, 8))  # float32 product is exact; round() is half-to-even
        else:
            value = (acc * 3 + 4) >> 3
        layer1.append(_sat8(value))
    output = [_sat8(layer1[index] - (layer1[(index + 5) % OUTPUT_BYTES] >> 1) + index)
              for index in range(OUTPUT_BYTES)]
    return [bytes(v & 0xFF for v in layer) for layer in (layer0, layer1, output)]


def reference_outputs(inputs: bytes, requant_mode: str) -> bytes:
    samples = [inputs[start:start + INPUT_BYTES] for start in range(0, len(inputs), INPUT_BYTES)]
    return b"".join(reference_layers(sample, requant_mode)[-1] for sample in samples)


def test_reference_rounds_half_to_even():
    # acc = 4 -> 1.5 -> 2 (even); acc = 12 -> 4.5 -> 4. Fixed mode rounds half up: 2 and 5.
    sample = bytes((value - WEIGHTS[index]) & 0xFF for index, value in enumerate([1, 1, 1, 1] + [0] * 60))
    assert reference_layers(sample, "float")[1][0] == 2
    assert reference_layers(sample, "fixed")[1][0] == 2
    sample = bytes((value - WEIGHTS[index]) & 0xFF for index, value in enumerate([3, 3, 3, 3] + [0] * 60))
    assert reference_layers(sample, "float")[1][0] == 4
    assert reference_layers(sample, "fixed")[1][0] == 5


# ---- fixtures ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("toolchain")


@pytest.fixture(scope="module")
def inputs(workdir) -> Path:
    """NUM_SAMPLES random samples, plus edge values; never the invoke-failure pattern (four leading -128)."""
    rng = random.Random(1234)
    data = bytearray(rng.randrange(256) for _ in range(INPUT_BYTES * (NUM_SAMPLES - 2)))
    data += bytes([0x7F] * INPUT_BYTES) + bytes([0x80] * 3 + [0] * (INPUT_BYTES - 3))
    path = workdir / "inputs.bin"
    path.write_bytes(bytes(data))
    return path


@pytest.fixture(scope="module")
def builds(workdir):
    """Builds on first use, keyed by (board name or "host", requant mode, layer dump, sanitize)."""
    cache: dict[tuple, Path] = {}

    def get(target: str, requant_mode: str = "float", layer_dump: bool = False, sanitize: bool = False) -> Path:
        key = (target, requant_mode, layer_dump, sanitize)
        if key not in cache:
            build_dir = workdir / "build" / "_".join(str(part) for part in key)
            board = None if target == "host" else BOARDS[target]
            cache[key] = toolchain.cmake_build(TESTMODEL_DIR, build_dir, board=board, requant_mode=requant_mode,
                                               layer_dump=layer_dump, sanitize=sanitize)
        return cache[key]

    return get


@pytest.fixture(scope="module")
def host_outputs(builds, inputs, workdir) -> Path:
    """Outputs and layer dumps of the host runner (float requant), built with ASan/UBSan and MF_LAYER_DUMP."""
    exe = builds("host", layer_dump=True, sanitize=True)
    outputs = workdir / "host" / "outputs.bin"
    toolchain.run_host(exe, inputs, outputs, layer_dir=workdir / "host" / "layers")
    return outputs


# ---- host -------------------------------------------------------------------------------------------------------
def test_host_outputs_match_reference(host_outputs, inputs):
    assert host_outputs.read_bytes() == reference_outputs(inputs.read_bytes(), "float")


def test_host_layer_dumps_match_reference(host_outputs, inputs):
    layer_dir = host_outputs.parent / "layers"
    data = inputs.read_bytes()
    samples = [data[start:start + INPUT_BYTES] for start in range(0, len(data), INPUT_BYTES)]
    assert sorted(path.name for path in layer_dir.iterdir()) == [f"layer_{i:03d}.bin" for i in range(NUM_LAYERS)]
    for layer in range(NUM_LAYERS):
        expected = b"".join(reference_layers(sample, "float")[layer] for sample in samples)
        assert (layer_dir / f"layer_{layer:03d}.bin").read_bytes() == expected, f"layer {layer}"


def test_layer_dumps_are_truncated_on_a_new_run(builds, inputs, workdir):
    exe = builds("host", layer_dump=True, sanitize=True)
    layer_dir = workdir / "rerun_layers"
    for _ in range(2):
        toolchain.run_host(exe, inputs, workdir / "rerun.bin", layer_dir=layer_dir)
    assert (layer_dir / "layer_000.bin").stat().st_size == NUM_SAMPLES * INPUT_BYTES


def test_host_fixed_requant_matches_reference(builds, inputs, workdir):
    outputs = workdir / "host_fixed.bin"
    toolchain.run_host(builds("host", requant_mode="fixed"), inputs, outputs)
    assert outputs.read_bytes() == reference_outputs(inputs.read_bytes(), "fixed")
    assert outputs.read_bytes() != reference_outputs(inputs.read_bytes(), "float")  # the modes really differ


def test_runner_rejects_input_size_not_multiple_of_sample(builds, workdir):
    bad = workdir / "bad_size.bin"
    bad.write_bytes(bytes(INPUT_BYTES + 1))
    with pytest.raises(ToolchainError, match=r"exit code 4[\s\S]*65 bytes, not a positive multiple"):
        toolchain.run_host(builds("host"), bad, workdir / "unused.bin")


def test_runner_refuses_a_directory_and_outputs_over_its_inputs(builds, workdir):
    """The runner itself (not only run_host's checks): a directory is not read as LONG_MAX bytes, and an outputs path
    naming the inputs file (here through a symbolic link) is refused before "wb" truncates it (files over 4 KB)."""
    import hashlib
    import subprocess

    exe = builds("host")
    folder = subprocess.run([exe, workdir, workdir / "unused.bin"], capture_output=True, text=True, timeout=60)
    assert folder.returncode == 3 and f"inputs {workdir} is a directory, not a regular file" in folder.stderr
    big = workdir / "big_inputs.bin"
    big.write_bytes(bytes(range(INPUT_BYTES)) * 200)  # 12,800 B: more than stdio's 4 KB buffer
    alias = workdir / "alias.bin"
    alias.unlink(missing_ok=True)
    alias.symlink_to(big)
    before = hashlib.sha256(big.read_bytes()).hexdigest()
    for outputs in (big, alias):
        same = subprocess.run([exe, big, outputs], capture_output=True, text=True, timeout=60)
        assert same.returncode == 2 and "is the inputs file" in same.stderr, same.stderr
    assert hashlib.sha256(big.read_bytes()).hexdigest() == before
    with pytest.raises(ToolchainError, match="is the inputs file"):
        toolchain.run_host(exe, big, alias)
    with pytest.raises(ToolchainError, match="is a directory"):
        toolchain.run_host(exe, workdir, workdir / "unused.bin")


def test_runner_reports_invoke_failure(builds, workdir):
    failing = workdir / "invoke_fails.bin"
    failing.write_bytes(bytes([0x80] * 4 + [0] * (INPUT_BYTES - 4)))
    with pytest.raises(ToolchainError, match=r"exit code 5[\s\S]*mf_model_invoke failed with status -1 on sample 0"):
        toolchain.run_host(builds("host"), failing, workdir / "unused.bin")


def test_runner_reports_missing_files(builds, inputs, workdir):
    with pytest.raises(ToolchainError, match="inputs file .*missing.bin does not exist"):
        toolchain.run_host(builds("host"), workdir / "missing.bin", workdir / "unused.bin")
    # The runner itself (called directly): exit code 3 and the file named.
    completed = subprocess.run([str(builds("host")), str(workdir / "missing.bin"), str(workdir / "unused.bin")],
                               capture_output=True, text=True, timeout=30, check=False)
    assert completed.returncode == 3
    assert "cannot open inputs file" in completed.stderr and "missing.bin" in completed.stderr
    usage = subprocess.run([str(builds("host"))], capture_output=True, text=True, timeout=30, check=False)
    assert usage.returncode == 2 and "usage" in usage.stderr


def test_run_host_timeout_is_honoured(workdir, inputs):
    slow = workdir / "slow_runner.sh"
    slow.write_text("#!/bin/sh\nsleep 30\n")
    slow.chmod(slow.stat().st_mode | stat.S_IXUSR)
    started = time.monotonic()
    with pytest.raises(ToolchainError, match=r"timed out after 0.5 s"):
        toolchain.run_host(slow, inputs, workdir / "unused.bin", timeout=0.5)
    assert time.monotonic() - started < 10


def test_cmake_build_reports_compiler_errors(workdir):
    model_dir = workdir / "broken_model"
    shutil.copytree(TESTMODEL_DIR, model_dir)
    with (model_dir / "model.c").open("a") as stream:
        stream.write("\nint mf_broken(void) { return undeclared_name; }\n")
    with pytest.raises(ToolchainError, match=r"CMake build failed with exit code[\s\S]*undeclared_name"):
        toolchain.cmake_build(model_dir, workdir / "build" / "broken")


def test_cmake_build_rejects_bad_arguments(workdir):
    with pytest.raises(ToolchainError, match="has no model.h"):
        toolchain.cmake_build(workdir, workdir / "build" / "no_model")
    with pytest.raises(ToolchainError, match="requant_mode 'int4'"):
        toolchain.cmake_build(TESTMODEL_DIR, workdir / "build" / "x", requant_mode="int4")
    board = {"compiler": {"flags": ["-mcpu=cortex-m4", "-mthumb"]}, "qemu": {"machine": "mps2-an999"}}
    with pytest.raises(ToolchainError, match=r"no linker script for QEMU machine 'mps2-an999'; known: .*mps2-an386"):
        toolchain.cmake_build(TESTMODEL_DIR, workdir / "build" / "x", board=board)


def test_tool_versions():
    versions = toolchain.tool_versions()
    assert set(versions) == {"gcc", "arm-none-eabi-gcc", "cmake", "qemu-system-arm", "espeak-ng"}
    assert versions["gcc"] and versions["gcc"].startswith("gcc")
    assert versions["cmake"] and versions["cmake"].startswith("cmake version ")


# ---- QEMU -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("machine", sorted(BOARDS))
@qemu_test
def test_qemu_outputs_equal_reference_and_host(machine, builds, inputs, host_outputs, workdir):
    outputs = workdir / machine / "outputs.bin"
    result = toolchain.run_qemu(builds(machine), machine, inputs, outputs, timeout=60)
    assert outputs.read_bytes() == reference_outputs(inputs.read_bytes(), "float")
    assert outputs.read_bytes() == host_outputs.read_bytes()
    # stack painting works on every core (tests/test_stack_paint.py checks the figures)
    assert 0 < result.inference_stack_bytes <= result.stack_bytes < result.stack_reserved_bytes


@qemu_test
def test_qemu_fixed_requant_on_m3(builds, inputs, workdir):
    outputs = workdir / "an385_fixed.bin"
    toolchain.run_qemu(builds("mps2-an385", requant_mode="fixed"), "mps2-an385", inputs, outputs, timeout=60)
    assert outputs.read_bytes() == reference_outputs(inputs.read_bytes(), "fixed")


@qemu_test
def test_qemu_layer_dumps_equal_host(builds, inputs, host_outputs, workdir):
    layer_dir = workdir / "an386_layers"
    toolchain.run_qemu(builds("mps2-an386", layer_dump=True), "mps2-an386", inputs, workdir / "an386_dump.bin",
                       layer_dir=layer_dir, timeout=60)
    host_layers = host_outputs.parent / "layers"
    for layer in range(NUM_LAYERS):
        name = f"layer_{layer:03d}.bin"
        assert (layer_dir / name).read_bytes() == (host_layers / name).read_bytes(), name


@qemu_test
def test_qemu_exit_code_and_message_reach_the_caller(builds, workdir):
    bad = workdir / "bad_size_qemu.bin"
    bad.write_bytes(bytes(INPUT_BYTES + 1))
    with pytest.raises(ToolchainError, match=r"QEMU mps2-an386 failed with exit code 4[\s\S]*not a positive multiple"):
        toolchain.run_qemu(builds("mps2-an386"), "mps2-an386", bad, workdir / "unused.bin", timeout=60)


@qemu_test
def test_qemu_cpu_fault_is_reported_not_hung(builds, inputs, workdir):
    # An M4F hard-float ELF on the M3 machine (no FPU) takes a NOCP UsageFault: the fault handler reports and exits.
    with pytest.raises(ToolchainError, match=r"QEMU mps2-an385 failed with exit code 1[\s\S]*CPU fault"):
        toolchain.run_qemu(builds("mps2-an386"), "mps2-an385", inputs, workdir / "unused.bin", timeout=30)


@qemu_test
def test_qemu_timeout_is_honoured(builds, workdir):
    many = workdir / "many_samples.bin"
    many.write_bytes(bytes(INPUT_BYTES * 100_000))  # ~1 s of emulation
    started = time.monotonic()
    with pytest.raises(ToolchainError, match=r"QEMU mps2-an386 timed out after 0.05 s"):
        toolchain.run_qemu(builds("mps2-an386"), "mps2-an386", many, workdir / "unused.bin", timeout=0.05)
    assert time.monotonic() - started < 10


@qemu_test
def test_instruction_counts_are_exact_and_repeatable(builds, inputs, workdir):
    elf = builds("mps2-an386")
    first = toolchain.run_qemu(elf, "mps2-an386", inputs, workdir / "count1.bin", count_instructions=True)
    second = toolchain.run_qemu(elf, "mps2-an386", inputs, workdir / "count2.bin", count_instructions=True)
    assert first.instructions == second.instructions
    assert first.total_instructions == second.total_instructions
    assert len(first.instructions) == NUM_SAMPLES
    # ~100 int8 elements through three small loops: hundreds to a few thousand instructions each.
    assert all(500 < count < 20000 for count in first.instructions), first.instructions
    assert first.total_instructions > sum(first.instructions)  # startup and file I/O are outside the regions
    assert first.instructions_per_inference == round(sum(first.instructions) / NUM_SAMPLES)
    # Counting does not change the results.
    assert (workdir / "count1.bin").read_bytes() == reference_outputs(inputs.read_bytes(), "float")


@qemu_test
def test_layer_dump_elf_is_counted_per_layer(builds, inputs, workdir):
    normal = toolchain.run_qemu(builds("mps2-an386"), "mps2-an386", inputs, workdir / "count_normal.bin",
                                count_instructions=True)
    dump_elf = builds("mps2-an386", layer_dump=True)
    dump = toolchain.run_qemu(dump_elf, "mps2-an386", inputs, workdir / "count_dump.bin",
                              layer_dir=workdir / "count_layers", count_instructions=True)
    assert normal.layer_instructions is None and normal.layer_tail_instructions is None
    assert len(dump.layer_instructions) == NUM_SAMPLES
    assert all(len(layers) == NUM_LAYERS and min(layers) > 0 for layers in dump.layer_instructions)
    for layers, tail, whole, whole_dump in zip(dump.layer_instructions, dump.layer_tail_instructions,
                                               normal.instructions, dump.instructions):
        assert sum(layers) + tail < whole_dump  # the dumps' file I/O is in no layer
        # the dump calls' arguments and the return path from mf_layer_dump: a few instructions per layer
        assert 0 <= sum(layers) + tail - whole <= 20 * NUM_LAYERS, (layers, tail, whole)
    # layer 0 (64 saturating adds) costs more than layer 2 (16 values)
    assert all(layers[0] > layers[2] for layers in dump.layer_instructions)
    # without a layer directory nothing is written, and the layers' counts are the same
    quiet = toolchain.run_qemu(dump_elf, "mps2-an386", inputs, workdir / "count_quiet.bin", count_instructions=True)
    assert quiet.layer_instructions == dump.layer_instructions
    assert quiet.layer_tail_instructions == dump.layer_tail_instructions


@qemu_test
def test_elf_is_reproducible_across_directories(builds, workdir):
    elf = builds("mps2-an386")
    model_copy = workdir / "elsewhere" / "deeper" / "model"
    shutil.copytree(TESTMODEL_DIR, model_copy)
    other = toolchain.cmake_build(model_copy, workdir / "another" / "build_dir", board=BOARDS["mps2-an386"])
    assert other.read_bytes() == elf.read_bytes()


@qemu_test
def test_elf_size_and_stack_usage(builds):
    elf = builds("mps2-an386")
    sizes = toolchain.elf_size(elf)
    assert sizes["flash"] == sizes["text"] + sizes["data"]
    assert sizes["ram"] == sizes["data"] + sizes["bss"]
    assert sizes["bss"] >= 256 * 1024  # the stand-in model's arena
    assert 0 < sizes["text"] < 256 * 1024
    usage = toolchain.stack_usage(elf.parent)
    assert {"main", "mf_model_invoke", "Reset_Handler"} <= set(usage)
    assert all(isinstance(value, int) and value >= 0 for value in usage.values())


@qemu_test
def test_elf_symbols_and_call_graph(builds, workdir):
    elf = builds("mps2-an386")
    symbols = toolchain.symbols(elf)
    assert symbols["mf_arena"] == ("b", 256 * 1024)  # static, in .bss, the stand-in model's arena
    assert symbols["mf_model_invoke"][0] == "T" and symbols["mf_model_invoke"][1] > 0
    assert toolchain.symbols(workdir / "missing.elf") is None
    calls = toolchain.call_graph(elf)
    assert any("mf_model_invoke" in callees for callees in calls.values())
    assert calls["main"] and all(isinstance(callees, set) for callees in calls.values())
    not_an_elf = workdir / "not_an_elf"
    not_an_elf.write_text("not an ELF\n")
    with pytest.raises(ToolchainError, match=r"arm-none-eabi-nm -S failed with exit code 1: .*not_an_elf"):
        toolchain.symbols(not_an_elf)


def test_missing_tool_is_named(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(ToolchainError, match=r"arm-none-eabi-objdump not found on PATH \(needed to measure the stack"):
        toolchain.call_graph(tmp_path / "any.elf")
    assert toolchain.tool_versions() == {"gcc": None, "arm-none-eabi-gcc": None, "cmake": None,
                                         "qemu-system-arm": None, "espeak-ng": None}
