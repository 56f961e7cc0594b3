"""Depthwise kernels on a Cortex-M4F under QEMU (the real DSP instructions and their inline assembly, which the host
tests cannot run): a chain of depthwise layers of every specialised window width (3, 5, 7, and 3x5 through the
general tap loop), strides 1 and 2, dilation 2, a channel count with a tail (13 = 3 groups of 4 + 1), compared layer
by layer with ONNX Runtime and with the host build, in both requantization modes. The packed filter layout
(mcuforge/codegen/layout.py) against a hand-worked case."""
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from helpers import have_cross_tools
from mcuforge.codegen.layout import depthwise_packed_size, pack_depthwise
from test_codegen import build_and_verify, export_and_quantize


def test_packed_depthwise_layout_hand_case():
    # K_h = 1, K_w = 2, C = 5: taps t0, t1; weight of tap t, channel c = 10 * t + c + 1
    weight = np.array([[[1, 2, 3, 4, 5], [11, 12, 13, 14, 15]]], dtype=np.int8)
    packed = pack_depthwise(weight)
    # group 0 (channels 0..3), lanes {c0, c2, c1, c3} per tap; group 1 (channel 4, then three zero channels)
    assert packed.tolist() == [1, 3, 2, 4, 11, 13, 12, 14,
                               5, 0, 0, 0, 15, 0, 0, 0]
    assert packed.dtype == np.int16 and packed.size == depthwise_packed_size(1, 2, 5) == 16
    assert pack_depthwise(np.full((3, 3, 8), -127, np.int8)).tolist() == [-127] * 72  # sign kept in int16


class Depthwise(nn.Module):
    def __init__(self):
        super().__init__()
        self.expand = nn.Conv2d(3, 13, 1)
        self.dw3 = nn.Conv2d(13, 13, 3, padding=1, groups=13)
        self.dw3_s2 = nn.Conv2d(13, 13, 3, stride=2, padding=1, groups=13)
        self.widen = nn.Conv2d(13, 16, 1)
        self.dw5 = nn.Conv2d(16, 16, 5, padding=2, groups=16)
        self.dw3_d2 = nn.Conv2d(16, 16, 3, padding=2, dilation=2, groups=16)
        self.dw3x5 = nn.Conv2d(16, 16, (3, 5), padding=(1, 1), groups=16)
        self.dw7_s2 = nn.Conv2d(16, 16, 7, stride=2, padding=3, groups=16)
        self.fc = nn.Linear(16 * 5 * 4, 4)

    def forward(self, x):  # 3x18x20
        x = torch.relu(self.dw3(torch.relu(self.expand(x))))
        x = self.widen(torch.relu(self.dw3_s2(x)))  # 16x9x10
        x = torch.relu(self.dw3_d2(torch.relu(self.dw5(x))))
        x = torch.relu(self.dw7_s2(torch.clamp(self.dw3x5(x), -2.0, 2.0)))  # 16x9x8 -> 16x5x4
        return self.fc(torch.flatten(x, 1))


@pytest.fixture(scope="module")
def depthwise_model(tmp_path_factory) -> Path:
    return export_and_quantize(Depthwise(), (3, 18, 20), tmp_path_factory.mktemp("depthwise"), seed=3)


@pytest.mark.slow
@pytest.mark.qemu
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
@pytest.mark.parametrize("requant", ["float", "fixed"])
def test_depthwise_chain_under_qemu_on_m4(depthwise_model: Path, tmp_path: Path, requant: str):
    report = build_and_verify(depthwise_model, tmp_path, requant, "stm32l4r5", samples=3)
    assert report["problems"] == []
    assert len([layer for layer in report["layers"] if layer["kind"] == "depthwise"]) == 6
    assert report["qemu"]["vs_host"]["differing"] == 0  # the DSP instructions give the plain path's bytes
    for layer in report["layers"]:
        assert layer["qemu_vs_host"]["differing"] == 0, layer
        if requant == "float":  # ONNX Runtime's bytes
            assert layer["host_vs_ort"]["differing"] == 0, layer
        elif layer["kind"] != "view":  # TFLite's integer arithmetic: within 1 LSB of ORT, the op alone
            assert layer["host_vs_ort_isolated"]["max_abs_diff"] <= 1, layer
