"""Per-layer instruction counts under QEMU (mcuforge/verify/check.py layer_instruction_summary, the icount plugin's
mark/resume, the runner's mf_layer_dump / mf_layer_dump_done): a small real model built for a Cortex-M7 board,
its layer-dump ELF counted layer by layer and checked against the normal ELF's whole-inference count."""
from pathlib import Path

import pytest
from torch import nn

from helpers import have_cross_tools
from mcuforge import frontends
from mcuforge.verify import check as verify

# Per layer the dump build adds the dump call's argument setup and the return path from mf_layer_dump (about ten
# instructions on a Cortex-M); the bound leaves room for the compiler scheduling invoke's code a little differently.
MAX_OVERHEAD_PER_LAYER = 40


class HeavyLight(nn.Module):
    """A 3x3 convolution with ~55 k MACs next to a 1x1 convolution with ~1 k and a small fully connected layer."""

    def __init__(self):
        super().__init__()
        self.heavy = nn.Conv2d(3, 16, 3, padding=1)
        self.light = nn.Conv2d(16, 4, 1, stride=2)
        self.fc = nn.Linear(4 * 4 * 4, 3)

    def forward(self, x):  # 3x8x8
        x = self.light(self.heavy(x).relu()).relu()  # 16x8x8 -> 4x4x4
        return self.fc(x.flatten(1))


@pytest.fixture(scope="module")
def report_and_graph(tmp_path_factory):
    from test_codegen import build_and_verify, export_and_quantize

    work = tmp_path_factory.mktemp("layer_instructions")
    int8 = export_and_quantize(HeavyLight(), (3, 8, 8), work)
    report = build_and_verify(int8, work, "float", "stm32f746", samples=4)
    return report, frontends.load(int8)  # the graph build_and_verify generates code for


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_every_layer_is_counted_and_the_sum_matches_the_whole_inference(report_and_graph):
    report, graph = report_and_graph
    assert report["problems"] == []
    layers = report["layers"]
    assert len(layers) == len(graph.ops)
    for layer in layers:
        assert isinstance(layer["instructions"], int), layer
        if layer["kind"] != "view":
            assert layer["instructions"] > 100, layer  # a kernel call, not just the dump's return path
    summary = report["layer_instructions"]
    assert summary["samples"] == 2 and summary["statistic"] == "mean over the layer samples"
    assert summary["layers_sum"] == pytest.approx(sum(layer["instructions"] for layer in layers), abs=len(layers))
    # the normal build's own count of the same samples, not the figure over all verify samples
    assert summary["whole_inference"] > 0
    overhead = summary["layers_sum"] + summary["tail"] - summary["whole_inference"]
    assert overhead == pytest.approx(summary["difference"], abs=1)
    assert 0 <= summary["difference"] <= MAX_OVERHEAD_PER_LAYER * len(layers), summary
    assert abs(summary["difference"]) < 0.01 * summary["whole_inference"], summary


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_a_heavier_layer_gets_more_instructions(report_and_graph):
    report, graph = report_and_graph
    macs = {op.name: op.macs(graph.tensors) for op in graph.ops}
    convs = [layer for layer in report["layers"] if layer["kind"] in ("conv", "conv1x1")]
    heavy = max(convs, key=lambda layer: macs[layer["name"]])
    light = min(convs, key=lambda layer: macs[layer["name"]])
    assert macs[heavy["name"]] > 10 * macs[light["name"]]
    assert heavy["instructions"] > 5 * light["instructions"], (heavy, light)
    # at least one instruction per MAC, and not absurdly many: the count is the kernel's
    assert macs[heavy["name"]] < heavy["instructions"] < 50 * macs[heavy["name"]]


def test_summary_of_hand_counts():
    layers = [[100, 20, 7], [104, 20, 7]]
    summary = verify.layer_instruction_summary(layers, [5, 5], [120, 126])
    assert summary["per_layer"] == [102, 20, 7]
    assert summary["layers_sum"] == 129 and summary["tail"] == 5 and summary["whole_inference"] == 123
    assert summary["difference"] == 11 and summary["difference_per_layer"] == pytest.approx(11 / 3, abs=0.01)
    assert verify.layer_instruction_summary(layers, [5, 5], None)["difference"] is None
