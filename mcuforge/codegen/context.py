"""What every emitter shares: the Context of one generation (graph, plan, the C writers, the symbol map of the
constants declared so far) and the small C initializer helpers (dims, padding, scalar requantization)."""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mcuforge.codegen.writer import CWriter, c_array, c_float
from mcuforge.ir import quant as eq
from mcuforge.ir.graph import Graph, Op, Tensor
from mcuforge.schedule.planner import Plan, scratch_name

FLOAT_MODE = "#if MF_REQUANT_MODE == MF_REQUANT_FLOAT"

# What a constant in weights.c is, for the review's flash breakdown (symbol_groups)
WEIGHTS = "weights (int8)"
BIASES = "biases (int32)"
REQUANT = "requant params"
SYMBOL_GROUPS = (WEIGHTS, BIASES, REQUANT)  # in the order the review lists them


@dataclass
class Context:
    graph: Graph
    plan: Plan
    weights: CWriter = field(default_factory=CWriter)  # weights.c
    decls: CWriter = field(default_factory=CWriter)    # weights.h
    body: CWriter = field(default_factory=CWriter)     # inside mf_model_invoke()
    symbols: dict[str, str] = field(default_factory=dict)  # C name of a weights.c constant -> its group

    def io(self, op: Op) -> tuple[Tensor, Tensor]:
        """The op's first input and its output."""
        return self.graph.tensors[op.inputs[0]], self.graph.tensors[op.output]

    def arena(self, tensor: str) -> str:
        return f"mf_arena + {self.plan.offset(tensor)}"

    def scratch(self, op: Op) -> str:
        """The arena address of a compound op's working memory."""
        return self.arena(scratch_name(op))

    def const(self, ctype: str, name: str, values: np.ndarray, align: int = 4, group: str | None = None) -> str:
        """A const array in weights.c, declared in weights.h; group: what it is (WEIGHTS, BIASES, REQUANT)."""
        c_array(self.weights, ctype, name, values, align=align)
        self.weights.line()
        self.decls.line(f"extern const {ctype} {name}[{np.asarray(values).size}];")
        if group is not None:
            self.symbols[name] = group
        return name

    def mode_consts(self, name: str, reals: np.ndarray, float_values: np.ndarray) -> None:
        """Per-channel requantization arrays: `<name>_scale` (float mode) or `<name>_mult`/`<name>_shift` (fixed)."""
        mult, shift = eq.quantize_multipliers(reals)
        self._both_files(FLOAT_MODE)
        self.const("float", f"{name}_scale", float_values, group=REQUANT)
        self._both_files("#else")
        self.const("int32_t", f"{name}_mult", mult, group=REQUANT)
        self.const("int32_t", f"{name}_shift", shift, group=REQUANT)
        self._both_files("#endif")

    def _both_files(self, line: str) -> None:
        for writer in (self.weights, self.decls):
            writer.line(line)


def dims(shape) -> str:
    """An mf_dims initializer {h, w, c}; a vector is 1x1xC."""
    h, w, c = shape if len(shape) == 3 else (1, 1, shape[0])
    return f"{{{h}, {w}, {c}}}"


def padding(pads: list[int]) -> str:
    top, left, bottom, right = pads
    return f"{{{top}, {left}, {bottom}, {right}}}"


def requant_scalar(real: float) -> str:
    """A `mf_requant` initializer {scale, multiplier, shift}."""
    mult, shift = eq.quantize_multiplier(real)
    return f"{{{c_float(real)}, {mult}, {shift}}}"


def describe(graph: Graph, op: Op) -> str:
    """The comment heading an op's block: kind, source node, shapes."""
    shapes = " + ".join("x".join(map(str, graph.tensors[i].shape)) for i in op.inputs)
    out = "x".join(map(str, graph.tensors[op.output].shape))
    return f"{op.kind} ({op.onnx_type} '{op.name}'): {shapes} -> {out}"
