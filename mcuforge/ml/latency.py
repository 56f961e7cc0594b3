"""Latency cost model: the predicted executed instructions of one inference of an engine graph, per core family.

An estimate, not a measurement: each cost kind (an op kind, split where the engine has a separate kernel path: the
general convolution's small windows, the 3x3 depthwise) has a small linear model in its shape terms (instructions =
a * MACs + b * output values + c * output pixels + d, or the terms of the kind in TERMS), fitted by non-negative
least squares to the instructions the engine's kernels execute under QEMU (`benchmarks/fit_latency.py`, which writes
the coefficients to `latency_model.json` beside this module), plus a per-inference constant (the runner's entry,
input and output copies). Latency = instructions / clock, taking one instruction per cycle (instructions ~ cycles: Cortex-M cores
issue about one instruction per cycle; loads, multiply-accumulates and branches that take more are the error).

Families: `dsp` (cores with the DSP extension: Cortex-M4, M7, M33, M55; fitted on the M7 board stm32f746 in float
requantization, the default pipeline's) and `plain` (Cortex-M0+, M3: the portable C kernels; fitted on lpc1768, fixed
requantization). Ops of kinds the model has no terms for (views, compound ops) count 0 and are named by
`unmodelled`; the search's graphs (archgraph.engine_graph) and the frontends' graphs have only modelled kinds.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import optimize

from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op, OpKind, Tensor

MODEL_FILE = Path(__file__).with_name("latency_model.json")
DSP_CORES = ("cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55")
PLAIN_CORES = ("cortex-m0plus", "cortex-m3")

# The general convolution runs windows of at most this many values (kh x kw x C_in: the stems) through their own
# path (engine_c/src/kernels/mf_conv2d_window_s8.c); the depthwise kernel has its own 3x3 path.
CONV_WINDOW_VALUES = 64
_CONV_TERMS = ("macs", "outputs", "pixels", "layer")
TERMS: dict[str, tuple[str, ...]] = {
    "conv": ("macs", "taps", "outputs", "pixels", "layer"),
    "conv_window": _CONV_TERMS,
    OpKind.conv1x1: _CONV_TERMS,
    OpKind.depthwise: _CONV_TERMS,
    "depthwise_3x3": _CONV_TERMS,
    OpKind.fc: ("macs", "outputs", "layer"),
    OpKind.add: ("outputs", "layer"),
    OpKind.global_avgpool: ("inputs", "outputs", "layer"),
    OpKind.avgpool: ("window", "outputs", "layer"),
    OpKind.maxpool: ("window", "outputs", "layer"),
    OpKind.softmax: ("outputs", "layer"),
}
FREE_KINDS = (OpKind.view,)  # the same bytes under another shape: no instructions


def family(core: str) -> str:
    """`dsp` or `plain` for a board's core (schemas/board.py:Core value)."""
    if core in DSP_CORES:
        return "dsp"
    if core in PLAIN_CORES:
        return "plain"
    raise McuforgeError(f"latency model: no core family for core {core!r} (known: {DSP_CORES + PLAIN_CORES})")


def cost_kind(op: Op) -> str:
    """The op's kind, or the kernel path it takes where the engine has several: `conv_window` (a general convolution
    of at most CONV_WINDOW_VALUES window values), `depthwise_3x3`."""
    if op.kind == OpKind.conv and int(np.prod(op.consts["weight"].shape[1:])) <= CONV_WINDOW_VALUES:
        return "conv_window"
    if op.kind == OpKind.depthwise and tuple(op.consts["weight"].shape[:2]) == (3, 3):
        return "depthwise_3x3"
    return str(op.kind)


def shape_terms(op: Op, tensors: dict[str, Tensor]) -> dict[str, float]:
    """The terms of the op's cost kind: MACs, kernel taps (output values x kernel area: the general convolution's
    inner loops), output values, output pixels (H x W), input values, pooling window reads (output values x kernel
    area) and 1 per layer."""
    out = tensors[op.output]
    outputs = out.bytes
    kernel = op.attrs.get("kernel", [1, 1])
    weight = op.consts.get("weight")
    taps = outputs * int(np.prod(weight.shape[1:3])) if op.kind == OpKind.conv else 0
    every = {"macs": op.macs(tensors), "taps": taps, "outputs": outputs,
             "pixels": outputs // out.shape[-1] if len(out.shape) == 3 else 1,
             "inputs": tensors[op.inputs[0]].bytes, "window": outputs * int(np.prod(kernel)), "layer": 1}
    return {name: float(every[name]) for name in TERMS[cost_kind(op)]}


def fit_kind(samples: list[tuple[dict[str, float], float]], terms: tuple[str, ...]) -> list[float]:
    """Non-negative least-squares coefficients of `terms` (in that order) from (terms, measured instructions)
    samples (no term takes instructions away, so small layers outside the fitted shapes stay positive); the fit
    minimises relative error (each row is divided by its measurement), so small layers count as much as large."""
    matrix = np.array([[row[name] for name in terms] for row, _ in samples], dtype=np.float64)
    measured = np.array([count for _, count in samples], dtype=np.float64)
    weights = 1.0 / np.maximum(measured, 1.0)
    coefficients, _ = optimize.nnls(matrix * weights[:, None], measured * weights)
    return [float(c) for c in coefficients]


def relative_errors(samples: list[tuple[dict[str, float], float]], terms: tuple[str, ...],
                    coefficients: list[float]) -> list[float]:
    return [abs(sum(c * row[name] for c, name in zip(coefficients, terms)) - count) / count
            for row, count in samples]


@lru_cache(maxsize=4)
def _read(path: str) -> dict:
    try:
        return json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise McuforgeError(f"latency model: {path} not found (run benchmarks/fit_latency.py)") from None


def load(path: Path = MODEL_FILE) -> dict:
    """The fitted model: {"families": {family: {"constant", "kinds": {kind: {"terms", "coefficients", ...}}}}}."""
    return _read(str(path))


def layer_instructions(op: Op, tensors: dict[str, Tensor], fitted: dict) -> float:
    """Predicted instructions of one op for a family's fitted model (0 for views and unmodelled kinds)."""
    kind = fitted["kinds"].get(cost_kind(op))
    if kind is None or cost_kind(op) not in TERMS:
        return 0.0
    row = shape_terms(op, tensors)
    return sum(c * row[name] for c, name in zip(kind["coefficients"], kind["terms"]))


def unmodelled(graph: Graph, model: dict | None = None) -> list[str]:
    """Cost kinds of the graph's ops that the model has no coefficients for (counted as 0)."""
    kinds = set((model or load())["families"]["dsp"]["kinds"])
    return sorted({cost_kind(op) for op in graph.ops if op.kind not in FREE_KINDS and cost_kind(op) not in kinds})


def predict_instructions(graph: Graph, core_family: str, model: dict | None = None) -> int:
    """Predicted instructions of one inference of `graph` on a core of `core_family` (an estimate)."""
    families = (model or load())["families"]
    if core_family not in families:
        raise McuforgeError(f"latency model: no family {core_family!r} (fitted: {sorted(families)})")
    fitted = families[core_family]
    return int(round(fitted["constant"] + sum(layer_instructions(op, graph.tensors, fitted) for op in graph.ops)))


def predict_ms(graph: Graph, core: str, clock_mhz: float, model: dict | None = None) -> float:
    """Predicted latency (ms) of one inference at the board's clock, one instruction per cycle (an estimate)."""
    return predict_instructions(graph, family(core), model) / (clock_mhz * 1e3)
