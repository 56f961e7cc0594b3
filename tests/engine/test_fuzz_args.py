"""Fuzzing the kernels' argument checks: random shapes and parameters, valid and invalid, through a C harness
(fuzz_args.c) built with AddressSanitizer and UndefinedBehaviorSanitizer, in both requantization modes.

Every call must return a status (MF_OK, MF_ARG_ERROR or MF_UNSUPPORTED), never crash, read or write out of bounds
or hit undefined behaviour; a NULL buffer or a non-positive dimension must be MF_ARG_ERROR (the header's contract,
engine_c/include/mcuforge.h). Each hypothesis example is a batch of calls run by one harness process."""
from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mf_engine import MODE_MACRO, REPO, SANITIZE_FLAGS, engine_sources

HARNESS = Path(__file__).resolve().parent / "fuzz_args.c"
OK, ARG_ERROR, UNSUPPORTED = 0, -1, -2
BATCH = 40
EXAMPLES = 6
SLOW_AND_LARGE = [HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]


@pytest.fixture(scope="module", params=sorted(MODE_MACRO))
def harness(request, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("fuzz") / f"fuzz_args_{request.param}"
    cmd = ["gcc", "-O1", "-std=c11", "-Wall", "-Wextra", "-Werror", *SANITIZE_FLAGS,
           f"-DMF_REQUANT_MODE={MODE_MACRO[request.param]}", f"-I{REPO / 'engine_c' / 'include'}",
           *map(str, engine_sources()), str(HARNESS), "-o", str(out), "-lm"]
    subprocess.run(cmd, check=True, capture_output=True, text=True)
    return out


def run_batch(harness: Path, lines: list[str]) -> list[str]:
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=1:abort_on_error=0",
               UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1")
    proc = subprocess.run([str(harness)], input="\n".join(lines) + "\n", capture_output=True, text=True, env=env,
                          timeout=120)
    assert proc.returncode == 0 and "Sanitizer" not in proc.stderr and "runtime error" not in proc.stderr, (
        f"harness crashed (exit {proc.returncode}) on one of:\n" + "\n".join(lines) + "\n" + proc.stderr[-3000:])
    statuses = proc.stdout.split()
    assert len(statuses) == len(lines)
    return statuses


# mostly small valid values, sometimes zero, negative or huge
dim = st.one_of(st.integers(1, 9), st.integers(1, 9), st.integers(1, 9), st.sampled_from([0, -1, -7, 2**31 - 1]))
small = st.integers(0, 3)
zero_point = st.one_of(st.integers(-128, 127), st.sampled_from([-129, 128, 2**31 - 1]))
activation = st.one_of(st.just((-128, 127)), st.tuples(st.integers(-130, 130), st.integers(-130, 130)))
nulls = st.one_of(st.just(0), st.just(0), st.sampled_from([1, 2, 4, 8, 16]))


@st.composite
def conv_case(draw):
    kernel = draw(st.sampled_from(["conv", "conv1x1", "dwconv", "dwinplace"]))
    ih, iw, ic = draw(dim), draw(dim), draw(dim)
    kh, kw = (1, 1) if kernel == "conv1x1" and draw(st.booleans()) else (draw(dim), draw(dim))
    sh, sw = draw(st.one_of(st.integers(1, 3), st.sampled_from([0, -1]))), draw(st.integers(1, 3))
    dh, dw = draw(st.one_of(st.just(1), st.integers(1, 3), st.just(0))), 1
    pads = [draw(st.one_of(small, st.just(-1))) for _ in range(4)]
    oc = ic if kernel.startswith("dw") and draw(st.booleans()) else draw(dim)
    kc = ic if draw(st.booleans()) else draw(dim)
    if draw(st.booleans()) and min(ih, iw, kh, kw, sh, sw, dh) > 0:  # the consistent output shape, often
        oh = (ih + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
        ow = (iw + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    else:
        oh, ow = draw(dim), draw(dim)
    lo, hi = draw(activation)
    values = [ih, iw, ic, kh, kw, kc, oh, ow, oc, sh, sw, dh, dw, *pads, draw(zero_point), draw(zero_point), lo, hi]
    if kernel == "dwinplace":
        values.append(draw(st.one_of(st.integers(0, 4096), st.just(-1))))
    return kernel, draw(nulls), values, [ih, iw, ic, kh, kw, oc]


@st.composite
def mbconv_case(draw):
    """The fused inverted bottleneck: expansion 1x1, depthwise, projection 1x1, often with a consistent output shape
    and the scratch mf_mbconv_fused_s8_get_buffer_size asks for (ring of expanded rows + one depthwise row)."""
    ih, iw, ic, mid = draw(dim), draw(dim), draw(dim), draw(dim)
    kh, kw = draw(st.sampled_from([1, 3, 5])), draw(st.one_of(st.sampled_from([1, 3, 5]), dim))
    sh, sw = draw(st.one_of(st.integers(1, 2), st.sampled_from([0, -1]))), draw(st.integers(1, 2))
    dh, dw = draw(st.one_of(st.just(1), st.integers(1, 2), st.just(0))), 1
    pads = [draw(st.one_of(small, st.just(-1))) for _ in range(4)]
    if draw(st.booleans()) and min(ih, iw, kh, kw, sh, sw, dh) > 0:
        oh = (ih + pads[0] + pads[2] - dh * (kh - 1) - 1) // sh + 1
        ow = (iw + pads[1] + pads[3] - dw * (kw - 1) - 1) // sw + 1
    else:
        oh, ow = draw(dim), draw(dim)
    oc = draw(dim)
    lo, hi = draw(activation)
    expand_stride = draw(st.sampled_from([1, 1, 1, 2]))  # a 1x1 stage with a stride is MF_UNSUPPORTED
    if draw(st.booleans()) and min(ih, iw, mid, kh, oh, ow) > 0:
        ring = min(ih, dh * (kh - 1) + 1)
        scratch = (ring * iw + ow) * mid - draw(st.sampled_from([0, 0, 0, 1]))
    else:
        scratch = draw(st.one_of(st.integers(0, 4096), st.just(-1)))
    values = [ih, iw, ic, mid, kh, kw, oh, ow, oc, sh, sw, dh, dw, *pads, draw(zero_point), draw(zero_point), lo, hi,
              expand_stride, scratch]
    return "mbconv", draw(nulls), values, [ih, iw, ic, mid, kh, kw, oc]


@st.composite
def other_case(draw):
    kernel = draw(st.sampled_from(["fc", "add", "avgpool", "maxpool", "avgpool_tflm", "gavgpool", "softmax",
                                   "softmax_tflm", "argmax", "copy_rows", "pad", "mean", "concat", "anomaly"]))
    lo, hi = draw(activation)
    if kernel == "fc":
        batches, features, outs = draw(dim), draw(dim), draw(dim)
        values = [batches, 1, features, outs, 1, draw(st.one_of(st.just(features), dim)), batches, 1, outs,
                  draw(zero_point), draw(zero_point), lo, hi]
        positive = [batches, features, outs]
    elif kernel == "add":
        size = draw(st.one_of(st.integers(1, 300), st.sampled_from([0, -1])))
        values = [size, draw(zero_point), draw(zero_point), draw(zero_point), draw(st.integers(-1, 24)), lo, hi]
        positive = [size + 1]  # an empty add is a valid no-op
    elif kernel in ("avgpool", "maxpool", "avgpool_tflm", "gavgpool"):
        ih, iw, c = draw(dim), draw(dim), draw(dim)
        kh, kw = draw(dim), draw(dim)
        sh, sw = draw(st.one_of(st.integers(1, 3), st.just(0))), draw(st.integers(1, 3))
        pads = [draw(st.one_of(small, st.just(-1))) for _ in range(4)]
        if draw(st.booleans()) and min(ih, iw, kh, kw, sh) > 0:
            oh, ow = (ih + pads[0] + pads[2] - kh) // sh + 1, (iw + pads[1] + pads[3] - kw) // sw + 1
        else:
            oh, ow = draw(dim), draw(dim)
        values = [ih, iw, c, oh, ow, c, kh, kw, sh, sw, *pads, draw(st.integers(0, 1)), draw(zero_point),
                  draw(zero_point), lo, hi]
        positive = [ih, iw, c] if kernel == "gavgpool" else [ih, iw, c, kh, kw]
    elif kernel.startswith("softmax"):
        h, w, c = draw(dim), draw(dim), draw(dim)
        values = [h, w, c, draw(zero_point), draw(st.integers(2**30, 2**31 - 1)), draw(st.integers(0, 31)),
                  draw(st.integers(-(2**31), 0))]
        positive = [h, w, c]
    elif kernel == "argmax":
        values = [draw(st.one_of(st.integers(1, 500), st.sampled_from([0, -1])))]
        positive = values[:]
    elif kernel == "copy_rows":
        rows, width = draw(st.one_of(dim, st.just(0))), draw(dim)
        values = [width + draw(small), width + draw(small), rows, draw(st.one_of(st.just(width), dim))]
        positive = [rows + 1]  # copying no rows is a valid no-op
    elif kernel == "pad":
        ih, iw, ic = draw(dim), draw(dim), draw(dim)
        pads = [draw(st.one_of(small, st.just(-1))) for _ in range(4)]
        before, after = draw(small), draw(small)
        consistent = draw(st.booleans())
        oh, ow, oc = ((ih + pads[0] + pads[2], iw + pads[1] + pads[3], ic + before + after) if consistent
                      else (draw(dim), draw(dim), draw(dim)))
        values = [ih, iw, ic, oh, ow, oc, *pads, before, after, draw(zero_point)]
        positive = [ih, iw, ic]
    elif kernel == "mean":
        ih, iw, ic = draw(dim), draw(dim), draw(dim)
        values = [ih, iw, ic, draw(st.integers(0, 1)), draw(st.integers(0, 1)), draw(st.integers(0, 1)),
                  draw(zero_point), draw(zero_point), draw(st.integers(0, 2**31 - 1)), draw(st.integers(-31, 30))]
        positive = [ih, iw, ic]
    elif kernel == "anomaly":
        size = draw(st.one_of(st.integers(0, 2000), st.sampled_from([-1, 2**19, 2**19 + 1])))
        multiplier = st.one_of(st.integers(1, 4096), st.sampled_from([0, -1, 4097]))
        acc = draw(st.one_of(st.just(0), st.integers(0, 2**40), st.sampled_from([-1, 2**63 - 1, 2**63 - 2**40])))
        values = [size, draw(zero_point), draw(zero_point), draw(multiplier), draw(multiplier), acc]
        positive = [size + 1, acc + 1]  # an empty accumulation is a valid no-op; a negative accumulator is refused
    else:  # concat
        h, w = draw(dim), draw(dim)
        channels = [draw(dim) for _ in range(3)]
        num = draw(st.one_of(st.integers(1, 3), st.sampled_from([0, -1])))
        total = sum(channels[:max(num, 0)]) if draw(st.booleans()) else draw(dim)
        values = [h, w, total, num, *channels, draw(zero_point), draw(zero_point), draw(zero_point),
                  draw(zero_point)]
        positive = [h, w, num]
    return kernel, draw(nulls), values, positive


def _must_refuse(kernel: str, mask: int) -> bool:
    """A NULL params struct, input, output, filter or second input (the harness's mask bits 1, 2, 4, 8)."""
    return bool((mask & 1 and kernel not in ("argmax", "copy_rows")) or mask & 2
                or (mask & 4 and kernel != "dwinplace")  # dwinplace: bit 4 is its scratch
                or (mask & 8 and kernel in ("conv", "conv1x1", "dwconv", "dwinplace", "fc", "add", "concat", "mbconv", "anomaly")))


def _check(harness: Path, cases) -> None:
    lines = [" ".join(map(str, [kernel, mask, *values])) for kernel, mask, values, _ in cases]
    for (kernel, mask, values, positive), line, status in zip(cases, lines, run_batch(harness, lines)):
        if status == "skip":
            continue
        assert status in {str(OK), str(ARG_ERROR), str(UNSUPPORTED)}, (line, status)
        if _must_refuse(kernel, mask) or min(positive) <= 0:
            assert status == str(ARG_ERROR), f"{line}: a NULL pointer or a non-positive size gave {status}"


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=SLOW_AND_LARGE)
@given(cases=st.lists(conv_case(), min_size=BATCH, max_size=BATCH))
def test_convolution_argument_checks_never_crash(harness: Path, cases):
    _check(harness, cases)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=SLOW_AND_LARGE)
@given(cases=st.lists(mbconv_case(), min_size=BATCH, max_size=BATCH))
def test_fused_mbconv_argument_checks_never_crash(harness: Path, cases):
    _check(harness, cases)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=SLOW_AND_LARGE)
@given(cases=st.lists(other_case(), min_size=BATCH, max_size=BATCH))
def test_other_kernels_argument_checks_never_crash(harness: Path, cases):
    _check(harness, cases)


def test_fused_mbconv_hand_cases(harness: Path):
    """6x6x4 -> expand 8 -> dw 3x3 pad 1 (stride 1: 6x6, stride 2: 3x3) -> 5: the scratch is (3 rows x 6 + W_out) x 8."""
    def line(stride: int, out: int, expand_stride: int, scratch: int) -> str:
        return (f"mbconv 0 6 6 4 8 3 3 {out} {out} 5 {stride} {stride} 1 1 1 1 1 1 0 0 -128 127 "
                f"{expand_stride} {scratch}")
    lines = [line(1, 6, 1, (3 * 6 + 6) * 8), line(2, 3, 1, (3 * 6 + 3) * 8), line(1, 6, 2, 400),
             line(1, 6, 1, (3 * 6 + 6) * 8 - 1), line(1, 5, 1, 400)]
    assert run_batch(harness, lines) == [str(OK), str(OK), str(UNSUPPORTED), str(ARG_ERROR), str(ARG_ERROR)]
