"""Code generation from real quantized ONNX models (exported from torch, quantized by ONNX Runtime) that use the
ops the MBConv pipelines do not: max/average pooling, concat with different scales, dilated 5x5 conv, flattening a
spatial tensor into a fully connected layer, softmax. Compared with ONNX Runtime on the host (also under ASan and
UBSan) and under QEMU on a Cortex-M4F (float) and a Cortex-M3 (fixed). Unsupported models give clear errors."""
import re
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import have_cross_tools
from schemas.loader import load_board
from mcuforge.codegen import generate as codegen
from mcuforge.codegen import symbol_groups
from mcuforge import frontends
from mcuforge.schedule import fuse, planner, rewrite
from mcuforge import toolchain
from mcuforge.verify import check as verify
from mcuforge.core.errors import McuforgeError
from mcuforge.ml.quantize import quantize


class Mixed(nn.Module):
    def __init__(self, softmax: bool = False):
        super().__init__()
        self.conv_a = nn.Conv2d(3, 8, 3, padding=1)
        self.conv_b = nn.Conv2d(3, 6, 5, padding=4, dilation=2)
        self.pool_max = nn.MaxPool2d(2)
        self.pool_avg = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.conv_d = nn.Conv2d(14, 12, 3, stride=2, padding=(1, 0))
        self.fc = nn.Linear(12 * 2 * 1, 5)
        self.softmax = softmax

    def forward(self, x):  # 3x16x12
        c = torch.cat([torch.relu(self.conv_a(x)), torch.relu(self.conv_b(x))], 1)  # 14x16x12
        c = self.pool_avg(self.pool_max(c))  # 14x8x6 -> 14x4x3
        c = torch.relu(self.conv_d(c))  # 12x2x1
        out = self.fc(torch.flatten(c, 1))
        return torch.softmax(out, 1) if self.softmax else out


class Unsupported(nn.Module):
    def __init__(self, kind: str):
        super().__init__()
        self.kind = kind
        self.conv = nn.Conv2d(4, 8, 3, padding=1, groups=2 if kind == "grouped" else 1)

    def forward(self, x):
        y = self.conv(x)
        return torch.sigmoid(y) if self.kind == "sigmoid" else y


def export_and_quantize(net: nn.Module, shape: tuple, out: Path, seed: int = 0, fmt: str = "qoperator") -> Path:
    torch.manual_seed(seed)
    fp32 = out / "fp32.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, *shape),), str(fp32), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    rng = np.random.default_rng(seed)
    calib = rng.integers(0, 256, size=(32, shape[1], shape[2], shape[0]), dtype=np.uint8)
    int8 = out / "int8.onnx"
    quantize(fp32, int8, calib, "per_channel", fmt)
    return int8


def build_and_verify(int8: Path, work: Path, requant: str, board: str | None, samples: int = 8,
                     sanitize: bool = False) -> dict:
    graph = frontends.load(int8)
    plan = planner.plan(graph)
    codegen.write(codegen.generate(graph, plan, "mixed"), work / "codegen")
    builds = {"host": toolchain.cmake_build(work / "codegen", work / "host", None, requant, sanitize=sanitize),
              "host_dump": toolchain.cmake_build(work / "codegen", work / "host_dump", None, requant, layer_dump=True,
                                                 sanitize=sanitize)}
    machine = None
    if board is not None:
        spec = load_board(board).model_dump(mode="json")
        machine = spec["qemu"]["machine"]
        builds["board"] = toolchain.cmake_build(work / "codegen", work / "board", spec, requant)
        builds["board_dump"] = toolchain.cmake_build(work / "codegen", work / "board_dump", spec, requant,
                                                     layer_dump=True)
    h, w, c = graph.tensors[graph.input].shape
    rng = np.random.default_rng(1)
    x = rng.integers(0, 256, size=(samples, h, w, c), dtype=np.uint8)
    y = np.zeros(samples, dtype=np.int64)
    report, _ = verify.run_checks(graph, int8, x, y, 2, requant, builds, machine, work / "run")
    report["problems"] = verify.judge(report)
    report["kinds"] = sorted({op.kind for op in graph.ops})
    return report


@pytest.fixture(scope="module")
def mixed_model(tmp_path_factory) -> Path:
    return export_and_quantize(Mixed(), (3, 16, 12), tmp_path_factory.mktemp("mixed"))


@pytest.fixture(scope="module")
def mixed_model_qdq(tmp_path_factory) -> Path:
    return export_and_quantize(Mixed(), (3, 16, 12), tmp_path_factory.mktemp("mixed_qdq"), fmt="qdq")


def test_graph_of_mixed_model(mixed_model: Path):
    graph = frontends.load(mixed_model)
    kinds = [op.kind for op in graph.ops]
    for kind in ("conv", "concat", "maxpool", "avgpool", "view", "fc"):
        assert kind in kinds, kinds
    assert graph.tensors[graph.output].shape == (5,)
    assert graph.tensors[graph.input].shape == (16, 12, 3)  # NHWC


def _assert_layers_exact(report: dict) -> None:
    for layer in report["layers"]:
        assert layer["host_vs_ort"]["differing"] == 0, layer
        if "host_vs_ort_isolated" in layer:
            assert layer["host_vs_ort_isolated"]["differing"] == 0, layer


def test_mixed_model_host_exact_and_sanitized(mixed_model: Path, tmp_path: Path):
    report = build_and_verify(mixed_model, tmp_path, "float", None, sanitize=True)
    _assert_layers_exact(report)
    assert report["problems"] == []
    assert report["host"]["vs_ort"]["differing"] == 0


def test_qdq_model_layers_exact(mixed_model_qdq: Path, tmp_path: Path):
    """The QDQ form of the same model: every layer equals ORT's; end to end ORT itself runs some patterns unfused in
    float (DequantizeLinear -> Conv -> QuantizeLinear), so its final bytes may differ by 1 LSB in rare values."""
    report = build_and_verify(mixed_model_qdq, tmp_path, "float", None)
    assert frontends.load(mixed_model_qdq).format == "qdq"
    _assert_layers_exact(report)
    assert report["host"]["vs_ort"]["max_abs_diff"] <= 1


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
@pytest.mark.parametrize("requant, board", [("float", "stm32l4r5"), ("fixed", "lpc1768")])
def test_mixed_model_under_qemu(mixed_model: Path, tmp_path: Path, requant: str, board: str):
    report = build_and_verify(mixed_model, tmp_path, requant, board)
    assert report["qemu"]["vs_host"]["differing"] == 0
    for layer in report["layers"]:
        assert layer["qemu_vs_host"]["differing"] == 0, layer
    if requant == "float":
        _assert_layers_exact(report)
        assert report["problems"] == [] and report["qemu"]["vs_ort"]["differing"] == 0
    else:
        for layer in report["layers"]:
            if "host_vs_ort_isolated" in layer:
                assert layer["host_vs_ort_isolated"]["max_abs_diff"] <= 1, layer
        assert report["qemu"]["vs_ort"]["max_abs_diff"] <= 3  # compounded through 6 layers


def test_softmax_output_within_one_lsb(tmp_path: Path):
    int8 = export_and_quantize(Mixed(softmax=True), (3, 16, 12), tmp_path)
    report = build_and_verify(int8, tmp_path, "float", None)
    assert "softmax" in report["kinds"]
    # ONNX Runtime's QLinearSoftmax picks a CPU-specific kernel; the engine's is portable: +-1 LSB at most
    softmax = [layer for layer in report["layers"] if layer["kind"] == "softmax"][0]
    assert softmax["host_vs_ort_isolated"]["max_abs_diff"] <= 1
    for layer in report["layers"]:
        if layer["kind"] != "softmax":
            assert layer["host_vs_ort"]["differing"] == 0, layer


@pytest.mark.parametrize("kind, expected", [
    ("sigmoid", ["Sigmoid", "/Sigmoid", "op type not supported", "Supported ops: Conv"]),
    ("grouped", ["QLinearConv node '/conv/Conv_quant'", "grouped convolution (group=2"]),
])
def test_unsupported_model_names_op_and_node(tmp_path: Path, kind: str, expected: list[str]):
    int8 = export_and_quantize(Unsupported(kind), (4, 8, 8), tmp_path)
    with pytest.raises(McuforgeError) as info:
        frontends.load(int8)
    for fragment in expected:
        assert fragment in str(info.value), str(info.value)


def test_per_tensor_quantization_runs_exactly(tmp_path: Path):
    torch.manual_seed(0)
    net = Mixed()
    fp32 = tmp_path / "fp32.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, 3, 16, 12),), str(fp32), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    int8 = tmp_path / "int8.onnx"
    calib = np.random.default_rng(0).integers(0, 256, size=(16, 16, 12, 3), dtype=np.uint8)
    quantize(fp32, int8, calib, "per_tensor")  # QOperator
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(int8))
    conv_weight_scales = [n.input[4] for n in model.graph.node if n.op_type == "QLinearConv"]
    inits = {i.name: i for i in model.graph.initializer}
    scales = [numpy_helper.to_array(inits[name]) for name in conv_weight_scales]
    assert scales and all(s.size == 1 for s in scales)
    report = build_and_verify(int8, tmp_path, "float", None)
    _assert_layers_exact(report)
    assert report["problems"] == [] and report["host"]["vs_ort"]["differing"] == 0


class Blocks(nn.Module):
    """3x16x16 -> stem 3x3/2 -> residual inverted bottleneck -> max pool -> inverted bottleneck -> global pool -> fc
    -> softmax: patched, fused and plain layers in one model."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.block1 = nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU6(), nn.Conv2d(16, 16, 3, padding=1, groups=16),
                                    nn.ReLU6(), nn.Conv2d(16, 8, 1))
        self.pool = nn.MaxPool2d(2)
        self.block2 = nn.Sequential(nn.Conv2d(8, 24, 1), nn.ReLU6(), nn.Conv2d(24, 24, 3, padding=1, groups=24),
                                    nn.ReLU6(), nn.Conv2d(24, 12, 1))
        self.fc = nn.Linear(12, 5)

    def forward(self, x):
        x = torch.relu(self.stem(x))
        x = self.pool(x + self.block1(x))
        x = self.block2(x)
        return torch.softmax(self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)), 1)


# mcuforge/report/review.py's groups of ELF symbols before codegen said what its constants are
OLD_SYMBOL_PATTERNS = {
    "weights (int8)": r"^l\d+(?:[edp]|_\d+)?_weight$",
    "biases (int32)": r"^l\d+(?:[edp]|_\d+)?_bias$",
    "requant params": r"^l\d+(?:[edp]|_\d+)?_(scale|mult|shift)$",
}


def test_symbol_groups_are_what_the_review_regexes_matched(tmp_path: Path):
    graph = frontends.load(export_and_quantize(Blocks(), (3, 16, 16), tmp_path))
    stem_to_pool = [op.name for op in graph.ops[:[op.kind for op in graph.ops].index("maxpool") + 1]]
    rewrite.apply(graph, [{"kind": "patch", "layers": stem_to_pool, "grid": [2, 2]}])
    rewrite.apply(graph, [{"kind": "fuse_mbconv", "blocks": fuse.candidates(graph)}])
    plan = planner.plan(graph)
    kinds = {op.kind for op in graph.ops}
    assert {"patch_stage", "mbconv_fused", "fc", "softmax"} <= kinds, kinds
    sources = codegen.generate(graph, plan, "blocks")
    # every symbol the generated model puts in an ELF is an identifier of its sources
    names = set(re.findall(r"[A-Za-z_]\w*", sources["weights.c"] + sources["model.c"]))
    expected = {name: label for name in names for label, pattern in OLD_SYMBOL_PATTERNS.items()
                if re.match(pattern, name)}
    groups = symbol_groups(graph, plan)
    assert groups == expected
    assert any(re.match(r"l\d+_\d+_weight$", name) for name in groups)  # a patch stage's layer
    assert any(re.match(r"l\d+e_weight$", name) for name in groups)  # a fused block's expansion
    assert any(name.endswith("_exp_table") for name in names)  # softmax's table: in no group
