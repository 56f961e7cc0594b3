"""The arena planner: hand-worked cases with exact offsets, invariants on a real model, the lower bound."""
import numpy as np
import pytest

from mcuforge.ir.graph import Graph, Op, Tensor
from mcuforge.schedule.planner import Buffer, Plan, greedy_by_size, lifetimes, plan, plan_for
from schemas.pipeline import ScheduleConfig


def _buffers(specs):
    return {name: Buffer(name, size, first, last) for name, size, first, last in specs}


def test_greedy_by_size_hand_case():
    # a(100)[0,1]  b(50)[1,2]  c(100)[2,3]  d(30)[3,3]
    # largest first: a@0, c@0? a and c do not overlap in time -> c@0; b overlaps a and c -> b@100; d overlaps c -> 100
    buffers = _buffers([("a", 100, 0, 1), ("b", 50, 1, 2), ("c", 100, 2, 3), ("d", 30, 3, 3)])
    greedy_by_size(buffers)
    assert {n: b.offset for n, b in buffers.items()} == {"a": 0, "c": 0, "b": 100, "d": 100}
    result = Plan("greedy_by_size", [], buffers)
    assert result.peak_bytes() == 150
    assert result.lower_bound() == 150
    result.check_no_overlap()


def test_touching_lifetimes_overlap():
    # equal end/start steps overlap (inclusive lifetimes): b must not reuse a's bytes
    buffers = _buffers([("a", 64, 0, 2), ("b", 64, 2, 4)])
    greedy_by_size(buffers)
    assert buffers["b"].offset == 64


def test_first_fit_uses_a_gap():
    buffers = _buffers([("big", 200, 0, 0), ("x", 100, 0, 5), ("y", 150, 1, 5), ("small", 40, 2, 3)])
    greedy_by_size(buffers)
    # order big(200), y(150), x(100), small(40). big@0; y does not meet big in time -> y@0; x meets both -> 200;
    # small meets y [0,150) and x [200,300) but not big -> the 50-byte gap at 150 fits it
    assert {n: b.offset for n, b in buffers.items()} == {"big": 0, "y": 0, "x": 200, "small": 152}  # 4-aligned
    result = Plan("greedy_by_size", [], buffers)
    assert result.peak_bytes() == 300
    assert result.lower_bound() == 300


def test_check_no_overlap_detects_collision():
    buffers = _buffers([("a", 10, 0, 3), ("b", 10, 2, 5)])
    buffers["a"].offset = 0
    buffers["b"].offset = 5
    with pytest.raises(Exception, match="overlap while both live"):
        Plan("manual", [], buffers).check_no_overlap()


def _chain_graph(sizes):
    """A linear graph of ops whose i-th output has sizes[i+1] bytes."""
    tensors = {f"t{i}": Tensor(f"t{i}", (s,), 1.0, 0) for i, s in enumerate(sizes)}
    ops = [Op("view", f"op{i}", "Identity", [f"t{i}"], f"t{i + 1}") for i in range(len(sizes) - 1)]
    for op in ops:
        op.kind = "softmax"  # any non-view kind: every tensor is its own buffer
    return Graph(tensors, ops, "t0", f"t{len(sizes) - 1}", "in", "out")


def test_linear_chain_is_optimal():
    # peak of a chain = max over ops of input + output (the lecture's M_peak)
    sizes = [300, 1000, 200, 800, 50]
    result = plan(_chain_graph(sizes))
    expected = max(a + b for a, b in zip(sizes, sizes[1:]))
    assert result.lower_bound() == expected
    assert result.peak_bytes() == expected
    result.check_no_overlap()
    text = result.dump()
    assert "arena 1300 B" in text and "lower bound 1300 B" in text  # 300 + 1000


def test_lifetimes_inclusive_and_input_output():
    graph = _chain_graph([10, 20, 30])
    buffers, aliases, inplace = lifetimes(graph)
    assert (buffers["t0"].first_use, buffers["t0"].last_use) == (0, 0)
    assert (buffers["t1"].first_use, buffers["t1"].last_use) == (0, 1)
    assert (buffers["t2"].first_use, buffers["t2"].last_use) == (1, 1)
    assert aliases == {} and inplace == {}


@pytest.mark.parametrize("schedule", [ScheduleConfig(), ScheduleConfig.model_validate({"planner": "best"}),
                                      ScheduleConfig(planner="greedy_by_size")])
def test_plan_for_names_the_planner_as_plain_text(schedule):
    # the schema's unset default is the Planner enum member, a validated value its name: plan.json and plan.txt
    # carry the name either way
    result = plan_for(_chain_graph([10, 20, 30]), schedule)
    name = result.to_json()["planner"]
    assert type(name) is str and name in ("best", "greedy_by_size")
    assert result.dump().startswith(f"planner {name}: arena ")


@pytest.mark.parametrize("seed", range(20))
def test_random_interval_sets_never_overlap(seed):
    rng = np.random.default_rng(seed)
    specs = []
    for i in range(30):
        first = int(rng.integers(0, 20))
        specs.append((f"b{i}", int(rng.integers(1, 500)), first, first + int(rng.integers(0, 6))))
    buffers = _buffers(specs)
    greedy_by_size(buffers)
    result = Plan("greedy_by_size", [], buffers)
    result.check_no_overlap()
    assert result.peak_bytes() >= result.lower_bound()
    assert all(b.offset % 4 == 0 for b in buffers.values())
