"""The latency cost model (mcuforge/ml/latency.py): the fit recovers known coefficients, a prediction is the hand sum
of its terms, the search refuses candidates over search.constraints.latency_ms with a clear error when nothing fits,
and (slow) the prediction for a small real model is close to the instructions counted under QEMU."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from helpers import have_cross_tools
from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Graph, Op, Tensor
from mcuforge.ml import archgraph, latency, search
from schemas.loader import load_pipeline
from schemas.search import Constraints


def _space() -> dict:
    return load_pipeline("digits_nas").pipeline.model_dump(mode="json")["search"]["space"]


def _limits(latency_ms: float) -> dict:
    return {"sram_bytes": 12000, "flash_bytes": 56000, "macs": 0, "latency_ms": latency_ms, "core_family": "dsp",
            "clock_mhz": 216.0}


def test_fit_recovers_known_coefficients():
    terms = latency.TERMS["conv"]  # macs, taps, outputs, pixels, layer
    known = [2.5, 4.0, 30.0, 120.0, 900.0]
    rng = np.random.default_rng(0)
    samples = []
    for _ in range(12):
        pixels = float(rng.integers(4, 2000))
        outputs = pixels * rng.integers(8, 96)
        taps = outputs * rng.choice([9, 25, 49])
        row = {"macs": taps * rng.integers(2, 64), "taps": taps, "outputs": outputs, "pixels": pixels, "layer": 1.0}
        samples.append((row, sum(c * row[t] for c, t in zip(known, terms))))
    fitted = latency.fit_kind(samples, terms)
    assert fitted == pytest.approx(known, rel=1e-6)
    assert max(latency.relative_errors(samples, terms, fitted)) < 1e-9


def _two_layer_graph() -> Graph:
    # input 4x4x8 -> conv1x1 -> 4x4x16 -> global average pool -> 1x1x16
    tensors = {"x": Tensor("x", (4, 4, 8), 1.0, 0), "y": Tensor("y", (4, 4, 16), 1.0, 0),
               "z": Tensor("z", (1, 1, 16), 1.0, 0)}
    ops = [Op("conv1x1", "pw", "conv1x1", ["x"], "y", {}, {"weight": np.zeros((16, 1, 1, 8), np.int8)}),
           Op("global_avgpool", "gap", "global_avgpool", ["y"], "z")]
    return Graph(tensors, ops, "x", "z", "input", "logits")


def test_prediction_is_the_hand_sum_of_the_terms():
    model = {"families": {"dsp": {"constant": 1000, "kinds": {
        "conv1x1": {"terms": ["macs", "outputs", "pixels", "layer"], "coefficients": [2.0, 40.0, 20.0, 300.0]},
        "global_avgpool": {"terms": ["inputs", "outputs", "layer"], "coefficients": [6.0, 31.0, 70.0]}}}}}
    # conv1x1: 4*4*16 = 256 outputs x 8 MACs = 2048 MACs, 16 pixels: 2*2048 + 40*256 + 20*16 + 300 = 14,956
    # global average pool: 256 inputs, 16 outputs: 6*256 + 31*16 + 70 = 2,102
    assert latency.predict_instructions(_two_layer_graph(), "dsp", model) == 1000 + 14956 + 2102
    # at 216 MHz: 18,058 instructions / 216,000 per ms
    assert latency.predict_ms(_two_layer_graph(), "cortex-m7", 216.0, model) == pytest.approx(18058 / 216000)


def test_committed_model_has_both_families_and_the_search_kinds():
    model = latency.load()
    for family in ("dsp", "plain"):
        fitted = model["families"][family]
        assert fitted["constant"] > 0
        assert {"conv_window", "conv1x1", "depthwise", "depthwise_3x3", "add", "global_avgpool", "fc"} \
            <= set(fitted["kinds"])
    assert latency.family("cortex-m4") == "dsp" and latency.family("cortex-m0plus") == "plain"
    assert latency.unmodelled(_two_layer_graph()) == []


def test_constraint_is_a_non_negative_float_defaulting_to_none():
    assert Constraints().latency_ms == 0.0
    with pytest.raises(ValueError):
        Constraints(latency_ms=-1.0)


def test_search_refuses_candidates_over_the_latency_budget():
    space = _space()
    probe: list = []
    search.optimise_space(space, 1, _limits(0.0), 20, seed=0, log=probe, progress=False)
    budget = float(np.median([e["predicted_latency_ms"] for e in probe]))
    log: list = []
    search.optimise_space(space, 1, _limits(budget), 20, seed=0, log=log, progress=False)
    for entry in log:
        within = entry["peak_sram_bytes"] <= 12000 and entry["flash_bytes"] <= 56000
        assert entry["fits"] == (within and entry["predicted_instructions"] <= budget * 216e3)
        assert entry["predicted_latency_ms"] == pytest.approx(entry["predicted_instructions"] / 216e3, abs=1e-3)
    assert any(not e["fits"] and e["peak_sram_bytes"] <= 12000 and e["flash_bytes"] <= 56000 for e in log)

    evo = {"population": 4, "parents": 2, "mutation_prob": 0.3, "crossover_share": 0.5, "iterations": 2}
    evolved: list = []
    search.evolve(space, 1, 16, 0.5, _limits(budget), evo, 0, lambda specs: [0.5] * len(specs), evolved,
                  progress=False)
    assert evolved and all(e["fits"] and e["predicted_latency_ms"] <= budget for e in evolved)


def test_impossible_latency_budget_names_the_need():
    with pytest.raises(McuforgeError, match=r"predicted latency 0\.001 ms at 216 MHz \(dsp cost model\).*"
                                            r"the smallest predicted latency [0-9.]+ ms"):
        search.optimise_space(_space(), 1, _limits(0.001), 5, 0, [], progress=False)


def test_search_budgets_carry_the_board_and_the_constraint():
    cfg = {"search": {"constraints": {"sram_bytes": 0, "flash_bytes": 0, "macs": 0, "latency_ms": 100.0}},
           "resolved": {"sram_budget_bytes": 1000, "flash_budget_bytes": 2000},
           "board": {"core": "cortex-m3", "clock_mhz": 96.0}}
    assert search.budgets(cfg) == {"sram_bytes": 1000, "flash_bytes": 2000, "macs": 0, "latency_ms": 100.0,
                                   "core_family": "plain", "clock_mhz": 96.0}


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_prediction_is_within_25_percent_of_qemu_for_the_digits_model(tmp_path: Path):
    # Tolerance 25 %: the model is fitted per layer on other shapes (benchmarks/fit_latency.py reports up to ~15 %
    # on a single general convolution), and the pipeline's schedule fuses inverted bottlenecks and runs depthwise
    # layers in place, kernel paths the per-layer model does not see; the errors of a whole model partly cancel.
    from benchmarks import kernel_bench
    from benchmarks.planner_bench import from_spec
    from mcuforge import frontends, toolchain
    from schemas.arch import ArchSpec
    from schemas.loader import load_board

    spec = ArchSpec.model_validate(load_pipeline("digits").pipeline.search.model.model_dump(mode="json"))
    int8 = from_spec(spec, tmp_path)
    prepared, _ = kernel_bench.prepare("digits", int8, True, tmp_path, 1)
    board = load_board("stm32f746").model_dump(mode="json")
    elf = toolchain.cmake_build(prepared.codegen_dir, tmp_path / "build", board, "float")
    run = toolchain.run_qemu(elf, board["qemu"]["machine"], prepared.inputs, tmp_path / "outputs.bin",
                             count_instructions=True)
    predicted = latency.predict_instructions(frontends.load(int8), "dsp")
    assert predicted == pytest.approx(run.instructions_per_inference, rel=0.25)
    assert archgraph.cost(spec).instructions == pytest.approx(predicted, rel=0.05)  # the search's graph agrees
