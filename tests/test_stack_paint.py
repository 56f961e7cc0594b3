"""The measured stack: stack painting under QEMU (engine_c/platform/startup.c, runner/main.c), its parsing in
mcuforge/toolchain/qemu.py and the SRAM budget re-checked with it (mcuforge/toolchain/budget.py, verify, review).

The QEMU tests build two small programs: the stand-in model (engine_c/testmodel) and a model written here whose
invoke calls, depending on the first input byte, nothing, a function with a 4 KiB local buffer, or one with an
80 KiB buffer (more than the 64 KiB stack reservation). Every byte of each buffer is written, so painting sees it.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from mcuforge.toolchain import budget
from mcuforge.report import sizes
from mcuforge import toolchain
from mcuforge.core.errors import McuforgeError
from mcuforge.toolchain import RunResult, ToolchainError

HAVE_QEMU = shutil.which("qemu-system-arm") is not None and shutil.which("arm-none-eabi-gcc") is not None
MACHINE = "mps2-an386"
BOARD = {"compiler": {"flags": ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]},
         "qemu": {"machine": MACHINE}}
RESERVED = 64 * 1024  # __stack_size in engine_c/platform/mf_sections.ld
SMALL_HOG = 4096
BIG_HOG = 80 * 1024
HOG_INPUT_BYTES = 16

HOG_MODEL_H = f"""\
#ifndef MF_HOG_MODEL_H
#define MF_HOG_MODEL_H
#include <stddef.h>
#include <stdint.h>
#define MF_MODEL_INPUT_BYTES {HOG_INPUT_BYTES}
#define MF_MODEL_OUTPUT_BYTES 4
#define MF_MODEL_ARENA_BYTES 32
#define MF_MODEL_NUM_LAYERS 1
int8_t *mf_model_input(void);
const int8_t *mf_model_output(void);
int mf_model_invoke(void);
#ifdef MF_LAYER_DUMP
void mf_layer_dump(int layer_index, const int8_t *data, size_t bytes);
#endif
#endif
"""

HOG_MODEL_C = f"""\
/* Test program: input[0] == 1 -> a {SMALL_HOG}-byte local buffer, 2 -> a {BIG_HOG}-byte one, else none. */
#include "model.h"

static int8_t mf_arena[MF_MODEL_ARENA_BYTES];

int8_t *mf_model_input(void)
{{
    return mf_arena;
}}

const int8_t *mf_model_output(void)
{{
    return &mf_arena[MF_MODEL_INPUT_BYTES];
}}

__attribute__((noinline)) int32_t mf_hog_small(const int8_t *input)
{{
    volatile int8_t buffer[{SMALL_HOG}];
    int32_t sum = 0;
    int index;

    for (index = 0; index < {SMALL_HOG}; ++index) {{
        buffer[index] = input[index % MF_MODEL_INPUT_BYTES];
    }}
    for (index = 0; index < {SMALL_HOG}; index += 64) {{
        sum += buffer[index];
    }}
    return sum;
}}

__attribute__((noinline)) int32_t mf_hog_big(const int8_t *input)
{{
    volatile int8_t buffer[{BIG_HOG}];
    int32_t sum = 0;
    int index;

    for (index = 0; index < {BIG_HOG}; ++index) {{
        buffer[index] = input[index % MF_MODEL_INPUT_BYTES];
    }}
    for (index = 0; index < {BIG_HOG}; index += 64) {{
        sum += buffer[index];
    }}
    return sum;
}}

int mf_model_invoke(void)
{{
    const int8_t *input = mf_arena;
    int8_t *output = &mf_arena[MF_MODEL_INPUT_BYTES];
    int32_t sum = 0;

    if (input[0] == 1) {{
        sum = mf_hog_small(input);
    }} else if (input[0] == 2) {{
        sum = mf_hog_big(input);
    }}
    output[0] = (int8_t)sum;
    output[1] = (int8_t)(sum >> 8);
    output[2] = input[1];
    output[3] = input[2];
    return 0;
}}
"""


def qemu_test(function):
    for mark in (pytest.mark.qemu, pytest.mark.slow,
                 pytest.mark.skipif(not HAVE_QEMU, reason="qemu-system-arm or arm-none-eabi-gcc is not installed")):
        function = mark(function)
    return function


# ---- parsing the runner's report (no QEMU) -----------------------------------------------------------------------
def _result(stderr: str, stdout: str = "") -> RunResult:
    return RunResult(command=["qemu-system-arm"], returncode=0, stdout=stdout, stderr=stderr, seconds=0.0)


def test_measured_stack_parses_the_runner_line():
    line = "mf_stack: used 384 B, inference 332 B, reserved 65536 B\n"
    assert toolchain.measured_stack(_result("some output\n" + line)) == {
        "stack_bytes": 384, "inference_stack_bytes": 332, "stack_reserved_bytes": 65536}
    assert toolchain.measured_stack(_result("", stdout=line))["stack_bytes"] == 384
    assert toolchain.measured_stack(_result("no report here\n")) == {}


def test_measured_stack_overflow_is_an_error():
    with pytest.raises(ToolchainError, match=r"used all 65,536 B of its stack reservation"):
        toolchain.measured_stack(_result("mf_stack: used overflow, inference overflow, reserved 65536 B\n"))


# ---- the SRAM budget with the measured stack (no QEMU) ------------------------------------------------------------
NUMBERS = {"arena_bytes": 2048, "other_static_ram_bytes": 1000, "io_buffers_bytes": 0, "stack_bytes": 300,
           "stack_chain": ["Reset_Handler", "main"], "uncounted_library_functions": ["fopen"],
           "sram_budget_bytes": 3500, "peak_step": 1, "peak_layer": "b"}


def test_with_measured_stack_counts_the_larger():
    more = budget.with_measured_stack(NUMBERS, measured=420, inference_measured=332)
    assert (more["stack_bytes"], more["sram_bytes"], more["sram_fits"]) == (420, 2048 + 1000 + 420, True)
    assert more["stack_source"].startswith("measured") and more["stack_static_bytes"] == 300
    less = budget.with_measured_stack(NUMBERS, measured=200)
    assert (less["stack_bytes"], less["sram_bytes"]) == (300, 3348)
    assert less["stack_source"].startswith("static bound")
    assert budget.measured_problems(NUMBERS, more, "tinyboard") == []


def test_measured_stack_over_budget_names_budget_need_and_layer(tmp_path):
    (tmp_path / "budget.json").write_text(json.dumps(NUMBERS))
    paths = SimpleNamespace(size_json=tmp_path / "size.json")
    report = {"qemu": {"stack_measured_bytes": 600, "inference_stack_measured_bytes": 400}}
    problems = budget.check_measured({"board": {"name": "tinyboard"}}, paths, report)
    assert report["sram_measured"]["sram_bytes"] == 3648 and not report["sram_measured"]["sram_fits"]
    assert len(problems) == 1
    for fragment in ("SRAM budget exceeded on board 'tinyboard'", "measured under QEMU", "3,648 B", "3,500 B",
                     "stack 600 B", "static bound 300 B", "layer 1 ('b')"):
        assert fragment in problems[0], problems[0]
    # no measurement (host-only verify) or no budget.json: nothing to re-check
    assert budget.check_measured({"board": {"name": "tinyboard"}}, paths, {"host": {}}) == []
    (tmp_path / "budget.json").unlink()
    assert budget.check_measured({"board": {"name": "tinyboard"}}, paths, {"qemu": report["qemu"]}) == []


def test_static_bound_without_objdump_is_a_stage_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(McuforgeError, match=r"stack bound: arm-none-eabi-objdump not found on PATH"):
        budget.measure(tmp_path / "model.elf", tmp_path)


def test_review_counts_measured_stack_in_the_sram_total(tmp_path):
    (tmp_path / "budget.json").write_text(json.dumps(NUMBERS))
    verify = tmp_path / "report.json"
    paths = SimpleNamespace(size_json=tmp_path / "size.json", verify_report=verify)
    static = sizes.stack_figures({}, paths)
    assert (static["bytes"], static["label"]) == (300, "stack (static bound)")
    verify.write_text(json.dumps({"qemu": {"stack_measured_bytes": 384, "inference_stack_measured_bytes": 332}}))
    measured = sizes.stack_figures({}, paths)
    assert (measured["bytes"], measured["static_bytes"], measured["measured_bytes"]) == (384, 300, 384)
    assert measured["label"] == "stack (measured, QEMU)"
    verify.write_text(json.dumps({"qemu": {"stack_measured_bytes": 250, "inference_stack_measured_bytes": 250}}))
    assert sizes.stack_figures({}, paths)["bytes"] == 300


# ---- under QEMU ---------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("stack_paint")


@pytest.fixture(scope="module")
def testmodel_elf(workdir) -> Path:
    return toolchain.cmake_build(toolchain.ENGINE_DIR / "testmodel", workdir / "testmodel", board=BOARD)


@pytest.fixture(scope="module")
def hog_elf(workdir) -> Path:
    model = workdir / "hog_model"
    model.mkdir()
    (model / "model.h").write_text(HOG_MODEL_H)
    (model / "model.c").write_text(HOG_MODEL_C)
    return toolchain.cmake_build(model, workdir / "hog", board=BOARD)


def _run_hog(elf: Path, workdir: Path, first_byte: int) -> RunResult:
    inputs = workdir / f"hog_in_{first_byte}.bin"
    inputs.write_bytes(bytes([first_byte] + list(range(3, 3 + HOG_INPUT_BYTES - 1))) * 2)
    return toolchain.run_qemu(elf, MACHINE, inputs, workdir / f"hog_out_{first_byte}.bin")


@qemu_test
def test_measured_stack_is_plausible_and_covers_the_static_frames(testmodel_elf, workdir):
    inputs = workdir / "inputs.bin"
    inputs.write_bytes(bytes(range(64)) * 3)
    result = toolchain.run_qemu(testmodel_elf, MACHINE, inputs, workdir / "outputs.bin")
    assert result.stack_reserved_bytes == RESERVED
    assert 0 < result.inference_stack_bytes <= result.stack_bytes <= RESERVED
    # the static bound counts newlib's frames (from the disassembly) and one exception frame: it covers the
    # measured whole run (startup, file I/O, inferences)
    static = budget.measure(testmodel_elf, testmodel_elf.parent)
    assert static["stack_chain"][0] == "Reset_Handler" and static["exception_frame_bytes"] == 32
    assert static["stack_bytes"] >= result.stack_bytes
    # the inference's depth is at least the frames of the chain Reset_Handler -> main -> mf_model_invoke -> ...
    # (without the exception frame, which no interrupt pushed), and at most the bound of that chain
    frames = toolchain.stack_usage(testmodel_elf.parent)
    callers = frames["Reset_Handler"] + frames["main"]
    assert result.inference_stack_bytes >= callers + static["inference_stack_bytes"] - static["exception_frame_bytes"]
    assert callers + static["inference_stack_bytes"] >= result.inference_stack_bytes
    # instruction counting (the verify task's mode) reports the same figures: painting is outside the markers
    counted = toolchain.run_qemu(testmodel_elf, MACHINE, inputs, workdir / "outputs2.bin", count_instructions=True)
    assert (counted.stack_bytes, counted.inference_stack_bytes) == (result.stack_bytes, result.inference_stack_bytes)


@qemu_test
def test_a_bigger_local_buffer_measures_more(hog_elf, workdir):
    plain = _run_hog(hog_elf, workdir, 0)
    small = _run_hog(hog_elf, workdir, 1)
    frames = toolchain.stack_usage(hog_elf.parent)
    assert SMALL_HOG <= frames["mf_hog_small"] <= SMALL_HOG + 64
    # an inference shallower than the painting call reads as the painting call's depth (Reset_Handler, main and
    # mf_stack_paint's frames): the floor of the inference figure
    assert plain.inference_stack_bytes == frames["Reset_Handler"] + frames["main"] + frames["mf_stack_paint"]
    assert small.inference_stack_bytes - plain.inference_stack_bytes >= SMALL_HOG - frames["mf_stack_paint"]
    assert small.stack_bytes >= small.inference_stack_bytes
    # the static frames of the path taken cover every byte written (the buffer is written whole): equal here
    taken = sum(frames[name] for name in ("Reset_Handler", "main", "mf_model_invoke", "mf_hog_small"))
    assert taken <= small.inference_stack_bytes <= taken + 16, (taken, small.inference_stack_bytes)


@qemu_test
def test_a_stack_past_its_reservation_is_reported(hog_elf, workdir):
    with pytest.raises(ToolchainError, match=r"used all 65,536 B of its stack reservation"):
        _run_hog(hog_elf, workdir, 2)


def test_static_bound_recursion_is_still_an_error():
    with pytest.raises(McuforgeError, match="recursion"):
        budget.worst_stack({"Reset_Handler": {"main"}, "main": {"main2"}, "main2": {"main"}},
                           {"Reset_Handler": 8, "main": 1, "main2": 1}, "Reset_Handler")


# ---- the static bound follows pointers stored only in initialised data ------------------------------------------
POINTER_TABLE_C = """\
typedef int (*handler)(int);

__attribute__((noinline)) int mf_deep_handler(int x)
{
    volatile char buffer[1536];
    buffer[x] = (char)x;
    return buffer[x & 7];
}

__attribute__((noinline)) int mf_shallow_handler(int x)
{
    return x + 1;
}

handler mf_handlers[2] = {mf_shallow_handler, mf_deep_handler};  /* .data: the only place mf_deep_handler is named */

int main(void)
{
    volatile int which = 1;
    return mf_handlers[which](3);
}

void _start(void)
{
    main();
    for (;;) {
    }
}
"""


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="arm-none-eabi-gcc is not installed")
def test_static_bound_follows_function_pointers_stored_only_in_data(tmp_path):
    import subprocess

    source = tmp_path / "table.c"
    source.write_text(POINTER_TABLE_C)
    elf = tmp_path / "table.elf"
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m4", "-mthumb", "-O2", "-fstack-usage", "-nostdlib",
                    "-Wl,-e,_start", "-o", str(elf), str(source)], cwd=tmp_path, check=True)
    disassembly = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                                 check=True).stdout
    main_body = disassembly.split("<main>:")[1].split("\n\n")[0]
    assert "mf_deep_handler" not in main_body  # main reaches it only through the table in .data
    bound = budget.measure(elf, tmp_path)
    # GCC's own frame of the deep handler (its .su file), independent of the disassembly's reading
    deep_frame = int(next(line.split()[1] for line in (tmp_path.glob("*.su").__next__()).read_text().splitlines()
                          if "mf_deep_handler" in line))
    assert deep_frame >= 1536
    assert "(via pointer) mf_deep_handler" in bound["stack_chain"]
    assert bound["stack_bytes"] >= deep_frame + budget.EXCEPTION_FRAME_BYTES
