"""Cost of an architecture spec without training it: the engine graph it becomes (shapes only), its peak SRAM from
the real arena planner, MACs, parameters, flash and the latency cost model's predicted instructions (ml/latency.py).
The search evaluates thousands of candidates this way."""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from schemas.arch import ArchSpec

from mcuforge.ir.graph import Graph, Op, Tensor
from mcuforge.ml import latency
from mcuforge.schedule import planner

# Flash the deployed binary needs besides the model's constants (engine kernels, startup, runner, newlib), measured
# from the Cortex-M7 ELF of the digits pipeline (size.json flash minus weights, biases and scales). A test checks the
# estimate against a real build.
RUNTIME_FLASH_BYTES = 42 * 1024
# Static RAM besides the arena (newlib, runner state) and the stack the engine needs, measured likewise.
RUNTIME_SRAM_BYTES = 6 * 1024


@dataclass(frozen=True)
class Cost:
    macs: int
    params: int
    arena_bytes: int       # from the arena planner over the engine graph
    peak_sram_bytes: int   # arena + runtime static RAM + stack
    flash_bytes: int       # int8 weights + int32 biases + per-channel scales + runtime code
    weight_bytes: int
    instructions: int      # predicted by the latency cost model for the core family (an estimate)

    def latency_ms(self, clock_mhz: float) -> float:
        """Predicted latency at the board's clock, one instruction per cycle (an estimate)."""
        return self.instructions / (clock_mhz * 1e3)


def engine_graph(spec: ArchSpec) -> tuple[Graph, int, int, int]:
    """The op sequence the engine will run for `spec` (conv, depthwise, conv1x1, add, global_avgpool, view, fc),
    with tensor shapes; plus (MACs, parameters, bytes of constants in flash)."""
    tensors: dict[str, Tensor] = {}
    ops: list[Op] = []
    counters = {"macs": 0, "params": 0, "const": 0}

    def tensor(shape: tuple[int, ...]) -> str:
        name = f"t{len(tensors)}"
        tensors[name] = Tensor(name, shape, 1.0, 0)
        return name

    def conv(kind: str, src: str, cout: int, kernel: int, stride: int) -> str:
        h, w, cin = tensors[src].shape
        out_hw = (-(-h // stride), -(-w // stride))
        dst = tensor(out_hw + (cout,))
        per_out = kernel * kernel * (1 if kind == "depthwise" else cin)
        counters["macs"] += out_hw[0] * out_hw[1] * cout * per_out
        counters["params"] += cout * per_out + cout
        counters["const"] += cout * per_out + 4 * cout + 4 * cout  # int8 weights, int32 bias, float32 scale
        pad = kernel // 2
        weight_shape = (kernel, kernel, cout) if kind == "depthwise" else (cout, kernel, kernel, cin)
        attrs = {"strides": [stride, stride], "pads": [pad, pad, pad, pad], "dilations": [1, 1], "clamp": (-128, 127)}
        ops.append(Op(kind, f"op{len(ops)}", kind, [src], dst, attrs, {"weight": np.empty(weight_shape, np.int8)}))
        return dst

    x = tensor((spec.input.resolution, spec.input.resolution, spec.input.channels))
    first = x
    x = conv("conv", x, spec.scaled(spec.stem.channels), spec.stem.kernel, spec.stem.stride)
    for stage in spec.stages:
        out = spec.scaled(stage.channels)
        for index, (kernel, expansion) in enumerate(zip(stage.block_kernels(), stage.block_expansions())):
            stride = stage.stride if index == 0 else 1
            cin = tensors[x].shape[2]
            y = conv("conv1x1", x, cin * expansion, 1, 1) if expansion != 1 else x
            y = conv("depthwise", y, cin * expansion, kernel, stride)
            y = conv("conv1x1", y, out, 1, 1)
            if stride == 1 and cin == out:
                dst = tensor(tensors[y].shape)
                ops.append(Op("add", f"op{len(ops)}", "add", [x, y], dst))
                y = dst
            x = y
    if spec.head.channels:
        x = conv("conv1x1", x, spec.scaled(spec.head.channels), 1, 1)
    channels = tensors[x].shape[2]
    pooled = tensor((1, 1, channels))
    ops.append(Op("global_avgpool", f"op{len(ops)}", "global_avgpool", [x], pooled))
    flat = tensor((channels,))
    ops.append(Op("view", f"op{len(ops)}", "view", [pooled], flat))
    logits = tensor((spec.num_classes,))
    ops.append(Op("fc", f"op{len(ops)}", "fc", [flat], logits, {},
                  {"weight": np.empty((spec.num_classes, channels), np.int8)}))
    counters["macs"] += channels * spec.num_classes
    counters["params"] += channels * spec.num_classes + spec.num_classes
    counters["const"] += channels * spec.num_classes + 8 * spec.num_classes
    graph = Graph(tensors, ops, first, logits, "input", "logits")
    return graph, counters["macs"], counters["params"], counters["const"]


def cost(spec: ArchSpec, planner_name: str = "greedy_by_size", core_family: str = "dsp") -> Cost:
    """The default planner is TFLite Micro's greedy one (fast enough for thousands of samples); the `schedule` task's
    `best` planner never needs more, so a candidate that fits here fits after scheduling. `core_family`: the latency
    model's family of the board's core (latency.family)."""
    graph, macs, params, const = engine_graph(spec)
    arena = planner.plan(graph, planner_name).peak_bytes()
    return Cost(macs=macs, params=params, arena_bytes=arena, peak_sram_bytes=arena + RUNTIME_SRAM_BYTES,
                flash_bytes=const + RUNTIME_FLASH_BYTES, weight_bytes=const,
                instructions=latency.predict_instructions(graph, core_family))


def fits(c: Cost, sram: int, flash: int, macs: int = 0, instructions: float = 0) -> bool:
    """Within every budget; a budget of 0 MACs or 0 instructions is none."""
    return (c.peak_sram_bytes <= sram and c.flash_bytes <= flash and (not macs or c.macs <= macs)
            and (not instructions or c.instructions <= instructions))


def mean_macs(costs: list[Cost]) -> float:
    return float(np.mean([c.macs for c in costs])) if costs else 0.0
