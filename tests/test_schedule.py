"""The `best` planner, op reordering and in-place depthwise: hand-worked graphs with exact offsets, randomized graphs
(hypothesis: no overlap, best <= greedy_by_size, a valid topological order), the in-place kernel byte-identical to
the out-of-place one and to ONNX Runtime (host, and QEMU), and the budget errors."""
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from helpers import have_cross_tools
from mcuforge.toolchain import budget
from mcuforge.schedule import planner
from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op, Tensor
from mcuforge.schedule.planner import Buffer, Plan, inplace_scratch_rows


def _graph(sizes: dict[str, int], ops: list[tuple[str, str, list[str], str]], first: str, last: str) -> Graph:
    tensors = {name: Tensor(name, (size,), 1.0, 0) for name, size in sizes.items()}
    return Graph(tensors, [Op(kind, name, kind, ins, out) for kind, name, ins, out in ops], first, last, "in", "out")


def _residual_graph() -> Graph:
    """Two branches, one cheap to finish early:
    in(100) -> big(400) -> s1(10);  in -> c(300) -> s2(10);  concat(s1, s2) -> out(20).
    ONNX order: big, c, s1, s2, concat keeps big and c live together (400 + 300 + 100 = 800);
    big, s1, c, s2, concat peaks at in + big + s1... = 510."""
    sizes = {"in": 100, "big": 400, "c": 300, "s1": 10, "s2": 10, "out": 20}
    ops = [("conv", "op_big", ["in"], "big"), ("conv", "op_c", ["in"], "c"), ("conv", "op_s1", ["big"], "s1"),
           ("conv", "op_s2", ["c"], "s2"), ("concat", "op_cat", ["s1", "s2"], "out")]
    return _graph(sizes, ops, "in", "out")


def test_reorder_hand_case_exact_offsets():
    graph = _residual_graph()
    base = planner.plan(dataclasses.replace(graph, ops=list(graph.ops)), "greedy_by_size", False, False)
    assert base.order == ["op_big", "op_c", "op_s1", "op_s2", "op_cat"]
    assert base.lower_bound() == 800 and base.peak_bytes() == 800
    best = planner.plan(graph, "best")
    assert best.order == ["op_big", "op_s1", "op_c", "op_s2", "op_cat"]
    assert [op.name for op in graph.ops] == best.order  # the graph follows the plan
    # steps: big [in+big=500], s1 [in+big+s1=510], c [in+s1+c=410], s2 [s1+c+s2=320], cat [s1+s2+out=40]
    assert planner.live_bytes(best) == [500, 510, 410, 320, 40]
    assert best.lower_bound() == best.peak_bytes() == 510
    # largest first: big@0, c@0 (big is dead at step 2), in@400 (meets both), s1@500, s2@300 (above c, below s1),
    # out@0 (only s1 and s2 are live at the last step)
    offsets = {name: b.offset for name, b in best.buffers.items()}
    assert offsets == {"big": 0, "c": 0, "in": 400, "s1": 500, "s2": 300, "out": 0}
    assert best.baseline == {"arena_bytes": 800, "lower_bound_bytes": 800}
    best.check_no_overlap()


def test_best_beats_greedy_on_a_known_bad_case():
    # b2(24)[2,2] b3(20)[2,4] b1(12)[3,5] b0(16)[4,4]. Greedy by size: b2@0, b3@24, b0@0 (b2 is dead by step 4),
    # then b1 needs 12 B but the gap between b0 and b3 is 8 B -> b1@44, arena 56. Optimal: b3@0, b2@20, b1@20,
    # b0@32 -> 48 = the live bytes at step 4 (b3 + b1 + b0), the lower bound.
    specs = [("b0", 16, 4, 4), ("b1", 12, 3, 5), ("b2", 24, 2, 2), ("b3", 20, 2, 4)]
    greedy = {name: Buffer(name, size, first, last) for name, size, first, last in specs}
    planner.greedy_by_size(greedy)
    assert {n: b.offset for n, b in greedy.items()} == {"b0": 0, "b1": 44, "b2": 0, "b3": 24}
    ours = {name: Buffer(name, size, first, last) for name, size, first, last in specs}
    how = planner.best_placement(ours)
    g, o = Plan("greedy_by_size", [], greedy), Plan("best", [], ours)
    g.check_no_overlap()
    o.check_no_overlap()
    assert g.peak_bytes() == 56
    assert o.peak_bytes() == o.lower_bound() == 48
    assert how.startswith(("first_fit/", "exact"))


def test_inplace_scratch_rows_hand_cases():
    # 3x3 stride 1 pad 1: rows y-1.. needed, so row j is written back when row j+2 starts: 2 rows pending
    assert inplace_scratch_rows((8, 8, 4), (8, 8, 4), 1, 1) == 2
    # 5x5 stride 1 pad 2: 3 rows
    assert inplace_scratch_rows((8, 8, 4), (8, 8, 4), 1, 2) == 3
    # stride 2 pad 1: output rows are half as long and move twice as fast: 1 row
    assert inplace_scratch_rows((8, 8, 4), (4, 4, 4), 2, 1) == 1
    # no padding, 3x3 stride 1: output row j lies inside input row j, which row j+1 no longer needs... row j+1
    # reads rows j+1.. so row j is written before row j+1 is computed: 1 row
    assert inplace_scratch_rows((8, 8, 4), (6, 6, 4), 1, 0) == 1


def _dw_chain() -> Graph:
    """in(8x8x4) -conv1x1-> a(8x8x16) -dw3x3 s1-> b(8x8x16) -conv1x1-> out(8x8x4)."""
    tensors = {"in": Tensor("in", (8, 8, 4), 1.0, 0), "a": Tensor("a", (8, 8, 16), 1.0, 0),
               "b": Tensor("b", (8, 8, 16), 1.0, 0), "out": Tensor("out", (8, 8, 4), 1.0, 0)}
    dw_attrs = {"strides": [1, 1], "pads": [1, 1, 1, 1], "dilations": [1, 1], "clamp": (-128, 127)}
    ops = [Op("conv1x1", "expand", "Conv", ["in"], "a"), Op("depthwise", "dw", "Conv", ["a"], "b", dw_attrs),
           Op("conv1x1", "project", "Conv", ["b"], "out")]
    return Graph(tensors, ops, "in", "out", "in", "out")


def test_inplace_depthwise_credit_exact_offsets():
    graph = _dw_chain()
    off = planner.plan(dataclasses.replace(graph, ops=list(graph.ops)), "best", inplace_depthwise=False)
    assert off.lower_bound() == 1024 + 1024 and off.inplace == {}  # a + b at the depthwise step
    on = planner.plan(graph, "best", inplace_depthwise=True)
    scratch = 2 * 8 * 16  # two output rows
    assert on.inplace == {"dw": {"input": "a", "output": "b", "scratch": "dw/scratch", "scratch_bytes": scratch}}
    assert on.offset("b") == on.offset("a")
    assert planner.live_bytes(on) == [256 + 1024, 1024 + scratch, 1024 + 256]
    assert on.lower_bound() == on.peak_bytes() == 1280
    on.check_no_overlap()
    text = on.dump()
    assert "planner best: arena 1280 B, lower bound 1280 B" in text
    assert "in place: dw: b over a, scratch 256 B" in text
    assert "       0     1024     1024  [  0,  2] +++  a" in text  # the in-place profile: a, then b in its bytes
    assert {name: b.offset for name, b in on.buffers.items()} == {"a": 0, "in": 1024, "dw/scratch": 1024,
                                                                  "out": 1024}
    again = planner.from_json(on.to_json())
    assert again.offset("b") == again.offset("a") and again.buffers["a"].segments == on.buffers["a"].segments


def test_arena_over_budget_names_budget_need_and_layer():
    graph = _dw_chain()
    plan = planner.plan(graph, "best")
    with pytest.raises(McuforgeError) as info:
        budget.check_arena(plan, graph, 1000, "tinyboard")
    message = str(info.value)
    for fragment in ("SRAM budget exceeded", "1,280 B", "1,000 B", "tinyboard", "layer 0 (conv1x1 'expand')"):
        assert fragment in message, message


def test_full_budget_check_message():
    numbers = budget.report({"text": 90_000, "data": 100, "bss": 3000}, {"arena_bytes": 2048, "order": ["a", "b"],
                            "peak_step": 1},
                            {"stack_bytes": 300, "stack_chain": ["main"], "inference_stack_bytes": 200,
                             "uncounted_library_functions": []}, 3000, 50_000)
    assert numbers["sram_bytes"] == 3400 and numbers["other_static_ram_bytes"] == 1052
    with pytest.raises(McuforgeError) as info:
        budget.check(numbers, "tinyboard")
    message = str(info.value)
    for fragment in ("SRAM budget exceeded on board 'tinyboard'", "3,400 B", "3,000 B", "stack 300 B",
                     "layer 1 ('b')", "flash budget exceeded", "90,100 B", "50,000 B"):
        assert fragment in message, message


def test_worst_stack_over_call_graph():
    calls = {"main": {"run", "printf"}, "run": {"k1", "k2"}, "k1": {"req"}, "k2": set(), "req": set()}
    frames = {"main": 40, "run": 16, "k1": 100, "k2": 120, "req": 24}
    total, chain, unknown = budget.worst_stack(calls, frames)
    assert (total, chain, unknown) == (40 + 16 + 124 - 0, ["main", "run", "k1", "req"], ["printf"])
    with pytest.raises(McuforgeError, match="recursion"):
        budget.worst_stack({"main": {"f"}, "f": {"main"}}, {"main": 1, "f": 1})


# ---- randomized graphs -------------------------------------------------------------------------------------------
@st.composite
def dag_graphs(draw):
    """Random DAGs of 2..12 ops, 1..2 inputs each (adds/concats), sizes 1..600, one output."""
    n = draw(st.integers(2, 12))
    sizes = {"t0": draw(st.integers(1, 600))}
    ops = []
    for i in range(1, n + 1):
        k = draw(st.integers(1, min(2, i)))
        inputs = sorted(set(draw(st.lists(st.integers(0, i - 1), min_size=k, max_size=k))))
        sizes[f"t{i}"] = draw(st.integers(1, 600))
        ops.append(("add" if len(inputs) > 1 else "conv", f"op{i}", [f"t{j}" for j in inputs], f"t{i}"))
    # tensors nobody reads (other than the last) feed the final op so the graph has one output
    read = {t for _, _, ins, _ in ops for t in ins}
    dangling = [f"t{i}" for i in range(n) if f"t{i}" not in read]
    if dangling:
        sizes[f"t{n + 1}"] = draw(st.integers(1, 600))
        ops.append(("concat", f"op{n + 1}", dangling + [f"t{n}"], f"t{n + 1}"))
        n += 1
    return _graph(sizes, ops, "t0", f"t{n}")


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(dag_graphs())
def test_random_graphs_best_never_worse_than_greedy(graph):
    onnx = list(graph.ops)
    greedy = planner.plan(dataclasses.replace(graph, ops=list(onnx)), "greedy_by_size", False, False)
    best = planner.plan(graph, "best")
    greedy.check_no_overlap()
    best.check_no_overlap()
    assert best.peak_bytes() <= greedy.peak_bytes()
    assert best.peak_bytes() >= best.lower_bound()
    assert best.baseline["arena_bytes"] == greedy.peak_bytes()
    planner.check_order(graph, graph.ops)  # a valid topological order
    assert sorted(best.order) == sorted(op.name for op in onnx)
    assert all(b.offset % 4 == 0 for b in best.buffers.values())


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 300), st.integers(0, 10), st.integers(0, 4)), min_size=1, max_size=9))
def test_random_intervals_exact_placement_is_optimal_or_bounded(specs):
    buffers = {f"b{i}": Buffer(f"b{i}", size, first, first + length) for i, (size, first, length) in enumerate(specs)}
    greedy = {n: dataclasses.replace(b) for n, b in buffers.items()}
    planner.greedy_by_size(greedy)
    planner.best_placement(buffers)
    ours = Plan("best", [], buffers)
    ours.check_no_overlap()
    assert ours.peak_bytes() <= Plan("greedy_by_size", [], greedy).peak_bytes()
    assert ours.peak_bytes() >= ours.lower_bound()


# ---- in-place depthwise on real quantized models: identical to out-of-place and to ONNX Runtime ------------------
class Depthwise(nn.Module):
    """Depthwise convs with stride 1 and 2, kernels 3 and 5, a dilation, each the last reader of its input."""

    def __init__(self):
        super().__init__()
        self.expand = nn.Conv2d(3, 12, 1)
        self.dw1 = nn.Conv2d(12, 12, 3, padding=1, groups=12)
        self.dw2 = nn.Conv2d(12, 12, 5, stride=2, padding=2, groups=12)
        self.dw3 = nn.Conv2d(12, 12, 3, padding=2, dilation=2, groups=12)
        self.dw4 = nn.Conv2d(12, 12, 3, stride=2, padding=(1, 0), groups=12)
        self.head = nn.Conv2d(12, 6, 1)

    def forward(self, x):  # 3x16x14
        x = torch.relu(self.expand(x))
        x = torch.relu(self.dw1(x))
        x = torch.relu(self.dw2(x))
        x = torch.relu(self.dw3(x))
        x = torch.relu(self.dw4(x))
        return self.head(x)


@pytest.fixture(scope="module")
def depthwise_model(tmp_path_factory) -> Path:
    from test_codegen import export_and_quantize

    return export_and_quantize(Depthwise(), (3, 16, 14), tmp_path_factory.mktemp("dw"))


def _build_and_run(int8: Path, work: Path, inplace: bool, board: str | None = None) -> tuple[dict, planner.Plan]:
    from test_codegen import build_and_verify

    original = planner.plan

    def plan_with(graph, name="best", inplace_depthwise=True, reorder=True):
        return original(graph, name, inplace, reorder)

    planner.plan = plan_with
    try:
        report = build_and_verify(int8, work, "float", board, samples=6)
    finally:
        planner.plan = original
    from mcuforge import frontends

    graph = frontends.load(int8)
    return report, original(graph, "best", inplace)


def test_inplace_depthwise_identical_to_out_of_place_and_ort(depthwise_model: Path, tmp_path: Path):
    on, plan_on = _build_and_run(depthwise_model, tmp_path / "on", True)
    off, plan_off = _build_and_run(depthwise_model, tmp_path / "off", False)
    assert len(plan_on.inplace) == 4 and plan_off.inplace == {}
    assert plan_on.lower_bound() < plan_off.lower_bound()
    for report in (on, off):
        assert report["problems"] == [] and report["host"]["vs_ort"]["differing"] == 0
        for layer in report["layers"]:
            assert layer["host_vs_ort"]["differing"] == 0, layer
    on_bytes = (tmp_path / "on" / "run" / "host_outputs.bin").read_bytes()
    assert on_bytes == (tmp_path / "off" / "run" / "host_outputs.bin").read_bytes()
    for index in range(len(plan_on.order)):
        name = f"layer_{index:03d}.bin"
        assert (tmp_path / "on" / "run" / "layers_host" / name).read_bytes() == \
            (tmp_path / "off" / "run" / "layers_host" / name).read_bytes()
    assert "mf_depthwise_conv2d_inplace_s8(" in (tmp_path / "on" / "codegen" / "model.c").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_inplace_depthwise_under_qemu(depthwise_model: Path, tmp_path: Path):
    report, plan = _build_and_run(depthwise_model, tmp_path, True, "stm32l4r5")
    assert plan.inplace
    assert report["problems"] == []
    assert report["qemu"]["vs_host"]["differing"] == 0 and report["qemu"]["vs_ort"]["differing"] == 0


def test_inplace_kernel_rejects_small_scratch(depthwise_model: Path, tmp_path: Path):
    """The generated call passes the planner's scratch size; the kernel's own get_buffer_size must agree."""
    from mcuforge.codegen import generate as codegen
    from mcuforge import frontends
    from mcuforge import toolchain

    graph = frontends.load(depthwise_model)
    plan = planner.plan(graph, "best")
    sources = codegen.generate(graph, plan, "dw")
    info = sorted(plan.inplace.values(), key=lambda i: i["scratch"])[0]
    sources["model.c"] = sources["model.c"].replace(f"{info['scratch_bytes']})", f"{info['scratch_bytes'] - 1})", 1)
    codegen.write(sources, tmp_path / "codegen")
    runner = toolchain.cmake_build(tmp_path / "codegen", tmp_path / "host", None, "float")
    inputs = tmp_path / "in.bin"
    inputs.write_bytes(bytes(int(np.prod(graph.tensors[graph.input].shape))))
    with pytest.raises(toolchain.ToolchainError, match="status"):
        toolchain.run_host(runner, inputs, tmp_path / "out.bin")
