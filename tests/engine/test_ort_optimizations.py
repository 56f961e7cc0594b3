"""ONNX Runtime with all graph optimizations on and off gives the same bytes, and the engine matches both.

A small residual block (conv, depthwise conv, add, average pool, global average pool) is run as one
QOperator graph in ORT; the engine runs the same layers one by one in NHWC.
"""

from __future__ import annotations

import numpy as np
import pytest

from mf_check import check_op
from mf_engine import Conv
from mf_ort import MS_DOMAIN, Graph
from strategies import int8_array
from mcuforge.ir.quant import float_multiplier

C, H, W = 8, 12, 12
SCALES = {"x": 0.031, "y1": 0.047, "y2": 0.052, "y3": 0.066, "y4": 0.061, "y5": 0.043}
ZPS = {"x": -3, "y1": 5, "y2": -7, "y3": 2, "y4": 0, "y5": -11}


def _tensors(seed=11):
    rng = np.random.default_rng(seed)
    return dict(x=int8_array(rng, (1, C, H, W)), w1=int8_array(rng, (C, C, 3, 3), -127, 127),
                w2=int8_array(rng, (C, 1, 3, 3), -127, 127), ws1=(2.0 ** rng.uniform(-9, -6, C)).astype(np.float32),
                ws2=(2.0 ** rng.uniform(-8, -5, C)).astype(np.float32),
                b1=rng.integers(-3000, 3000, C).astype(np.int32), b2=rng.integers(-3000, 3000, C).astype(np.int32))


def _ort_block(t, optimize):
    g = Graph()
    f32, i8 = np.float32, np.int8

    def qp(name):
        return [g.const(f32(SCALES[name]), f32), g.const(i8(ZPS[name]), i8)]

    x = g.input("x", t["x"])
    y1 = g.node("QLinearConv", [x, *qp("x"), g.const(t["w1"], i8), g.const(t["ws1"], f32),
                                g.const(np.zeros(C, i8), i8), *qp("y1"), g.const(t["b1"], np.int32)], "y1",
                pads=[1, 1, 1, 1], kernel_shape=[3, 3])
    y2 = g.node("QLinearConv", [y1, *qp("y1"), g.const(t["w2"], i8), g.const(t["ws2"], f32),
                                g.const(np.zeros(C, i8), i8), *qp("y2"), g.const(t["b2"], np.int32)], "y2",
                pads=[1, 1, 1, 1], kernel_shape=[3, 3], group=C)
    y3 = g.node("QLinearAdd", [y1, *qp("y1"), y2, *qp("y2"), *qp("y3")], "y3", domain=MS_DOMAIN)
    y4 = g.node("QLinearAveragePool", [y3, *qp("y3"), *qp("y4")], "y4", domain=MS_DOMAIN, kernel_shape=[3, 3],
                strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=0)
    y5 = g.node("QLinearGlobalAveragePool", [y4, *qp("y4"), *qp("y5")], "y5", domain=MS_DOMAIN, channels_last=0)
    outs = g.run_many([y1, y2, y3, y4, y5], optimize=optimize)
    return [o[0].transpose(1, 2, 0) for o in outs[:4]] + [outs[4].reshape(-1)]


def _engine_block(engine, t):
    s, z = SCALES, ZPS
    x = t["x"][0].transpose(1, 2, 0)
    y1 = engine.conv2d(x, t["w1"].transpose(0, 2, 3, 1), t["b1"], float_multiplier(s["x"], t["ws1"], s["y1"]),
                       z["x"], z["y1"], Conv(pads=(1, 1, 1, 1)))
    y2 = engine.conv2d(y1, t["w2"][:, 0].transpose(1, 2, 0), t["b2"], float_multiplier(s["y1"], t["ws2"], s["y2"]),
                       z["y1"], z["y2"], Conv(pads=(1, 1, 1, 1)), kind="depthwise")
    y3 = engine.add(y1, y2, s["y1"], z["y1"], s["y2"], z["y2"], s["y3"], z["y3"])
    y4 = engine.avgpool(y3, (3, 3), (2, 2), (1, 1, 1, 1), False, s["y3"], z["y3"], s["y4"], z["y4"])
    return [y1, y2, y3, y4, engine.global_avgpool(y4, s["y4"], z["y4"], s["y5"], z["y5"])]


@pytest.mark.parametrize("seed", [11, 12])
def test_graph_optimizations_do_not_change_results(float_engine, seed):
    t = _tensors(seed)
    optimized = _ort_block(t, optimize=True)
    plain = _ort_block(t, optimize=False)
    ours = _engine_block(float_engine, t)
    for name, opt, raw, mine in zip(["conv", "depthwise", "add", "avgpool", "global avgpool"], optimized, plain, ours):
        assert np.array_equal(opt, raw), f"{name}: ORT differs between optimization levels"
        check_op(f"block {name} (ORT opt on/off)", "float", mine, opt)
