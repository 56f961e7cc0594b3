"""Patch-based inference (mcuforge/schedule/patch.py): box arithmetic worked by hand; a real quantized model
(strided stem, residual inverted bottleneck, max pool, strided conv) run patch by patch for several stages and
grids, on the host and under QEMU, byte for byte equal to the layer-by-layer build and to ONNX Runtime; the arena
it saves; the errors of impossible stages; and a `doit run` of a pipeline with `schedule.patch: auto`."""
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import have_cross_tools, run_doit
from schemas.loader import ConfigError, load_pipeline
from schemas.pipeline import ScheduleConfig
from mcuforge.codegen import generate as codegen
from mcuforge import frontends
from mcuforge.schedule import patch
from mcuforge.schedule import planner
from mcuforge.schedule import rewrite
from mcuforge import toolchain
from mcuforge.verify import check as verify
from mcuforge.core.errors import McuforgeError
from mcuforge.ir.graph import Op
from test_codegen import export_and_quantize

SCHEDULE = {"planner": "best", "inplace_depthwise": True, "reorder": True, "fuse_mbconv": False}


def _schedule(**settings) -> ScheduleConfig:
    """The test's schedule section with `settings` (patch, patch_max_macs_overhead) added."""
    return ScheduleConfig(**SCHEDULE, **settings)


def _conv(k: int, stride: int, pads: list[int]) -> Op:
    return Op("conv", "c", "Conv", ["x"], "y", {"strides": [stride, stride], "pads": pads, "dilations": [1, 1]},
              {"weight": np.zeros((4, k, k, 3), dtype=np.int8)})


def test_boxes_worked_by_hand():
    op = _conv(3, 2, [1, 1, 1, 1])  # 8x8 -> 4x4
    top_left, bottom_right = patch.Box(0, 2, 0, 2), patch.Box(2, 4, 2, 4)
    # output rows 0..1 read input rows -1..3: row -1 is padding, so the box is rows 0..3 with 1 row of top padding
    assert patch.need(op, top_left, (8, 8, 3)) == patch.Box(0, 4, 0, 4)
    assert patch.box_padding(op, top_left, patch.Box(0, 4, 0, 4)) == [1, 1, 0, 0]
    # output rows 2..3 read input rows 3..7: inside the image, no padding (the bottom pad row is never reached)
    assert patch.need(op, bottom_right, (8, 8, 3)) == patch.Box(3, 8, 3, 8)
    assert patch.box_padding(op, bottom_right, patch.Box(3, 8, 3, 8)) == [0, 0, 0, 0]
    five = _conv(5, 1, [2, 2, 2, 2])  # 6x6 -> 6x6, a 2-pixel halo each side
    assert patch.need(five, patch.Box(2, 4, 0, 3), (6, 6, 3)) == patch.Box(0, 6, 0, 5)
    assert patch.box_padding(five, patch.Box(2, 4, 0, 3), patch.Box(0, 6, 0, 5)) == [0, 2, 0, 0]
    assert patch.tiles((10, 7, 4), (3, 2)) == [
        patch.Box(0, 3, 0, 3), patch.Box(0, 3, 3, 7), patch.Box(3, 6, 0, 3), patch.Box(3, 6, 3, 7),
        patch.Box(6, 10, 0, 3), patch.Box(6, 10, 3, 7)]


class Net(nn.Module):
    """3x24x20 -> stem 3x3/2 -> residual inverted bottleneck -> max pool -> 3x3/2 conv -> global pool -> fc."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.expand = nn.Conv2d(8, 24, 1)
        self.dw = nn.Conv2d(24, 24, 3, padding=1, groups=24)
        self.project = nn.Conv2d(24, 8, 1)
        self.pool = nn.MaxPool2d(2)
        self.conv = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        x = torch.clamp(self.stem(x), 0, 6)
        x = x + self.project(torch.clamp(self.dw(torch.clamp(self.expand(x), 0, 6)), 0, 6))
        x = torch.relu(self.conv(self.pool(x)))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    return export_and_quantize(Net(), (3, 24, 20), tmp_path_factory.mktemp("patch_model"))


def _stage_lengths(graph) -> list[int]:
    return [n for n in range(1, len(graph.ops)) if patch.stage_io(graph, graph.ops[:n], graph.ops[n:])]


def test_stages_of_the_model(model: Path):
    graph = frontends.load(model)
    kinds = [op.kind for op in graph.ops]
    assert kinds[:7] == ["conv", "conv1x1", "depthwise", "conv1x1", "add", "maxpool", "conv"], kinds
    # inside the residual block two tensors escape (the add still needs the block input): not a stage end
    assert _stage_lengths(graph)[:4] == [1, 5, 6, 7]


def _build(graph, plan, work: Path, requant: str, board=None) -> dict:
    codegen.write(codegen.generate(graph, plan, "patch"), work / "codegen")
    builds = {"host": toolchain.cmake_build(work / "codegen", work / "host", None, requant),
              "host_dump": toolchain.cmake_build(work / "codegen", work / "host_dump", None, requant,
                                                 layer_dump=True)}
    if board is not None:
        builds["board"] = toolchain.cmake_build(work / "codegen", work / "board", board, requant)
        builds["board_dump"] = toolchain.cmake_build(work / "codegen", work / "board_dump", board, requant,
                                                     layer_dump=True)
    return builds


def _run(model: Path, schedule: ScheduleConfig, work: Path, requant: str, board=None, samples: int = 6):
    graph = frontends.load(model)
    specs = rewrite.choose(graph, schedule)
    plan = planner.plan(graph)
    plan.rewrites = specs
    builds = _build(graph, plan, work, requant, board)
    x = np.random.default_rng(7).integers(0, 256, size=(samples,) + graph.tensors[graph.input].shape, dtype=np.uint8)
    machine = board["qemu"]["machine"] if board else None
    report, _ = verify.run_checks(graph, model, x, None, 2, requant, builds, machine, work / "run")
    outputs = np.fromfile(work / "run" / "host_outputs.bin", dtype=np.int8)
    return graph, plan, specs, report, outputs


@pytest.fixture(scope="module")
def layer_by_layer(model: Path, tmp_path_factory) -> dict:
    out = {}
    for requant in ("float", "fixed"):
        _, plan, specs, report, outputs = _run(model, _schedule(patch="off"),
                                               tmp_path_factory.mktemp(f"lbl_{requant}"), requant)
        assert specs == []
        out[requant] = {"arena": plan.peak_bytes(), "outputs": outputs, "report": report}
    return out


@pytest.mark.parametrize("layers, grid", [(1, [2, 2]), (5, [3, 2]), (6, [2, 5]), (7, [3, 3])])
def test_patches_equal_layer_by_layer_and_onnx_runtime(model, layer_by_layer, tmp_path, layers, grid):
    graph, plan, specs, report, outputs = _run(model, _schedule(patch={"layers": layers, "grid": grid}),
                                               tmp_path, "float")
    assert [s["kind"] for s in specs] == ["patch"] and specs[0]["grid"] == grid
    assert graph.ops[0].kind == "patch_stage" and len(graph.ops[0].attrs["stage"].ops) == layers
    assert np.array_equal(outputs, layer_by_layer["float"]["outputs"])
    assert report["host"]["vs_ort"]["differing"] == 0
    assert verify.judge(report) == []
    first = report["layers"][0]  # the stage's output, and the stage alone (its layers together in ORT)
    assert first["kind"] == "patch_stage" and first["host_vs_ort"]["differing"] == 0
    assert first["host_vs_ort_isolated"]["differing"] == 0
    assert specs[0]["stage_macs"] > specs[0]["stage_layer_macs"] or layers == 1  # halos are computed again


def test_fixed_requant_patches_equal_layer_by_layer(model, layer_by_layer, tmp_path):
    _, _, _, report, outputs = _run(model, _schedule(patch={"layers": 7, "grid": [2, 3]}), tmp_path, "fixed")
    assert np.array_equal(outputs, layer_by_layer["fixed"]["outputs"])
    assert report["layers"][0]["inner_layers"] == 7  # reported; fixed-mode compounds are not bounded per layer
    assert verify.judge(report) == []


def test_auto_lowers_the_arena_within_the_macs_limit(model, layer_by_layer, tmp_path):
    schedule = _schedule(patch="auto", patch_max_macs_overhead=0.5)
    graph, plan, specs, report, outputs = _run(model, schedule, tmp_path, "float")
    assert len(specs) == 1, "auto found no stage that lowers the arena"
    assert plan.peak_bytes() < layer_by_layer["float"]["arena"]
    assert 0 <= specs[0]["macs_overhead"] <= 0.5
    assert np.array_equal(outputs, layer_by_layer["float"]["outputs"])
    # the output overlays the dying input: the step needs less than input + output + working memory
    op = graph.ops[0]
    src, dst = graph.tensors[op.inputs[0]], graph.tensors[op.output]
    assert patch.stage_bytes(graph, op.attrs["stage"]) < src.bytes + dst.bytes + op.compound.scratch_bytes
    plan.check_no_overlap()
    # a zero MACs budget leaves only stages without halos, which cannot lower this model's arena
    strict = frontends.load(model)
    assert rewrite.choose(strict, _schedule(patch="auto", patch_max_macs_overhead=0.0)) == []


def test_recorded_rewrite_is_reapplied(model, tmp_path):
    graph = frontends.load(model)
    specs = rewrite.choose(graph, _schedule(patch={"layers": 6, "grid": [2, 2]}))
    plan = planner.plan(graph)
    plan.rewrites = specs
    (tmp_path / "plan.json").write_text(json.dumps(plan.to_json()))
    again, plan2 = rewrite.planned(model, tmp_path / "plan.json")
    assert [op.name for op in again.ops] == plan.order and plan2.peak_bytes() == plan.peak_bytes()
    assert codegen.generate(again, plan2, "p") == codegen.generate(graph, plan, "p")


@pytest.mark.parametrize("setting, words", [
    ({"layers": 3, "grid": [2, 2]}, ["first 3 layers", "do not read one tensor and hand on one tensor"]),
    ({"layers": 1, "grid": [13, 2]}, ["grid 13x2", "12x10x8"]),
    ({"layers": 9, "grid": [2, 2]}, ["layers of kind", "global_avgpool", "allowed: conv"]),
    ({"layers": 40, "grid": [2, 2]}, ["schedule.patch.layers: 40", "layers"]),
])
def test_impossible_stage_is_a_clear_error(model, setting, words):
    graph = frontends.load(model)
    with pytest.raises(McuforgeError) as err:
        rewrite.choose(graph, _schedule(patch=setting))
    for word in words:
        assert word in str(err.value), str(err.value)


@pytest.mark.parametrize("text, words", [
    ("patch: {layers: 3, grid: [0, 2]}", ["schedule.patch", "grid"]),
    ("patch: sometimes", ["schedule.patch", "off", "auto"]),
    ("patch_max_macs_overhead: -1", ["schedule.patch_max_macs_overhead"]),
])
def test_patch_config_errors(tmp_path, text, words):
    path = tmp_path / "p.yaml"
    path.write_text("name: p\ndeploy:\n  board: stm32f746\n  model: m.onnx\nschedule:\n  " + text + "\n")
    (tmp_path / "m.onnx").write_bytes(b"")
    with pytest.raises(ConfigError) as err:
        load_pipeline(path)
    for word in words + ["p.yaml:6"]:
        assert word in str(err.value), str(err.value)


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
@pytest.mark.parametrize("board", ["stm32f746", "lpc1768"])
def test_doit_run_with_patches_under_qemu(model, tmp_path, board):
    """A pipeline with a ready ONNX model and `schedule.patch: auto`: plan, C, host and Cortex-M builds (M7 with
    float requantization, M3 without FPU in fixed mode), QEMU equal to the host, per layer too; in float mode also
    equal to ONNX Runtime; the review names the rewrite."""
    pipeline = tmp_path / "p.yaml"
    pipeline.write_text(f"name: patched\ndeploy:\n  board: {board}\n  model: {model}\n  verify_samples: 10\n"
                        "schedule:\n  patch: auto\n  patch_max_macs_overhead: 0.5\n  fuse_mbconv: false\n")
    build = tmp_path / "build"
    result = run_doit("run", f"pipeline={pipeline}", f"build={build}")  # the default tasks, review included
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    plan = json.loads((build / "schedule" / "plan.json").read_text())
    assert [r["kind"] for r in plan["rewrites"]] == ["patch"]
    assert plan["arena_bytes"] < plan["arena_layer_by_layer"]
    report = json.loads((build / "verify" / "report.json").read_text())
    assert report["passed"] and report["qemu"]["vs_host"]["differing"] == 0
    assert report["requant"] == ("float" if board == "stm32f746" else "fixed")
    if report["requant"] == "float":
        assert report["host"]["vs_ort"]["differing"] == 0 and report["qemu"]["vs_ort"]["differing"] == 0
    assert report["layers"][0]["kind"] == "patch_stage"
    assert all(layer["qemu_vs_host"]["differing"] == 0 for layer in report["layers"])
    assert "patch (" in (build / "review" / "report.md").read_text()
