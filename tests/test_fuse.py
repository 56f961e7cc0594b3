"""Fused inverted bottlenecks (mcuforge/schedule/fuse.py, engine kernel mf_mbconv_fused_s8): the kernel
byte-identical to the three separate kernels in both requant modes over random shapes; the rewrite chosen only
where it lowers the arena; a MobileNetV2-like model whose fused build equals ONNX Runtime and the unfused build
byte for byte."""
import ctypes as C
import dataclasses
import json
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent / "engine"))

from helpers import MLPERF, have_cross_tools  # noqa: E402
from mf_engine import (MF_OK, SANITIZE_ENV, SANITIZE_FLAGS, Conv, ConvParams, Dims, Engine, Padding,  # noqa: E402
                       QuantParams, Tile, build_engine)

from schemas.pipeline import ScheduleConfig
from mcuforge.codegen.layout import pack_depthwise  # noqa: E402
from mcuforge.schedule import fuse  # noqa: E402
from mcuforge.schedule import planner
from mcuforge.schedule import rewrite

MF_ARG_ERROR, MF_UNSUPPORTED = -1, -2


class ConvStage(C.Structure):
    _fields_ = [("params", ConvParams), ("quant", QuantParams), ("filter_dims", Dims),
                ("filter", C.POINTER(C.c_int8)), ("bias", C.POINTER(C.c_int32))]


class MbconvParams(C.Structure):
    _fields_ = [("expand", ConvStage), ("depthwise", ConvStage), ("project", ConvStage)]


@pytest.fixture(scope="module")
def engines(tmp_path_factory):
    """Both requant modes; with MF_ENGINE_SANITIZE=1 (and libasan preloaded) built with ASan and UBSan."""
    import os

    out = tmp_path_factory.mktemp("mf_engine_fuse")
    extra = SANITIZE_FLAGS if os.environ.get(SANITIZE_ENV) == "1" else ()
    return {mode: Engine(build_engine(mode, out, extra), mode) for mode in ("float", "fixed")}


@dataclasses.dataclass
class Block:
    """Random constants of one inverted bottleneck; zero points z[0..3] of input, expanded, depthwise out, output."""

    x: np.ndarray
    weights: list  # expand [C_mid, 1, 1, C_in], depthwise [K_h, K_w, C_mid], project [C_out, 1, 1, C_mid]
    biases: list   # int32 arrays or None
    scales: list   # float32 requant scales per stage
    zps: list
    clamps: list
    conv: Conv     # the depthwise's stride, dilation, pads

    def stage_conv(self, stage: int) -> Conv:
        return self.conv if stage == 1 else Conv()


def random_block(rng: np.random.Generator) -> Block:
    while True:
        h, w = int(rng.integers(1, 10)), int(rng.integers(1, 10))
        kh, kw = int(rng.choice([1, 2, 3, 5, 7])), int(rng.choice([1, 3, 5]))
        stride = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        dilation = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pads = tuple(int(rng.integers(0, k)) if k > 1 else 0 for k in (kh, kw, kh, kw))
        out_h = (h + pads[0] + pads[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
        out_w = (w + pads[1] + pads[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
        if out_h >= 1 and out_w >= 1:
            break
    cin, mid, cout = int(rng.integers(1, 7)), int(rng.integers(1, 13)), int(rng.integers(1, 7))
    weights = [rng.integers(-127, 128, size=(mid, 1, 1, cin)), rng.integers(-127, 128, size=(kh, kw, mid)),
               rng.integers(-127, 128, size=(cout, 1, 1, mid))]
    biases = [None if rng.random() < 0.2 else rng.integers(-20000, 20000, size=n).astype(np.int32)
              for n in (mid, mid, cout)]
    fan_in = [cin, kh * kw, mid]
    # |acc| is typically 7000 * sqrt(fan in): these scales spread the outputs over the int8 range
    scales = [(2.0 ** rng.uniform(-2, 1, size=n) / (60 * np.sqrt(f))).astype(np.float32)
              for n, f in zip((mid, mid, cout), fan_in)]
    zps = [int(v) for v in rng.integers(-128, 128, size=4)]
    clamps = []
    for _ in range(3):
        lo = int(rng.integers(-128, 0)) if rng.random() < 0.5 else -128
        clamps.append((lo, int(rng.integers(lo, 128)) if rng.random() < 0.5 else 127))
    x = rng.integers(-128, 128, size=(h, w, cin)).astype(np.int8)
    return Block(x, [np.ascontiguousarray(wt, dtype=np.int8) for wt in weights], biases, scales, zps, clamps,
                 Conv(stride, dilation, pads))


def separate(engine: Engine, b: Block) -> np.ndarray:
    value = b.x
    for stage, kind in enumerate(("1x1", "depthwise", "1x1")):
        value = engine.conv2d(value, b.weights[stage], b.biases[stage], b.scales[stage], b.zps[stage],
                              b.zps[stage + 1], b.stage_conv(stage), b.clamps[stage], kind)
    return value


def fused(engine: Engine, b: Block, out_shape, scratch_delta: int = 0, expand_stride: int = 1):
    """(status, output, get_buffer_size) of mf_mbconv_fused_s8."""
    keep = []

    def ptr(array, ctype):
        keep.append(array)
        return array.ctypes.data_as(C.POINTER(ctype))

    stages = []
    for stage in range(3):
        conv = b.stage_conv(stage)
        if stage == 0:
            conv = Conv((expand_stride, expand_stride))
        weight = b.weights[stage]
        dims = Dims(*weight.shape) if stage == 1 else Dims(1, 1, weight.shape[3])
        if stage == 1:
            weight = pack_depthwise(weight)  # the engine's packed layout (codegen writes it)
        quant, kept = engine.quant(b.scales[stage])
        keep.append(kept)
        params = ConvParams(b.zps[stage], b.zps[stage + 1], Tile(*conv.stride), Tile(*conv.dilation),
                            Padding(*conv.pads), *b.clamps[stage])
        bias = None if b.biases[stage] is None else ptr(np.ascontiguousarray(b.biases[stage]), C.c_int32)
        stages.append(ConvStage(params, quant, dims, ptr(weight, C.c_int8), bias))
    params = MbconvParams(*stages)
    in_dims, out_dims = Dims(*b.x.shape), Dims(*out_shape)
    lib = engine.lib
    lib.mf_mbconv_fused_s8_get_buffer_size.restype = C.c_int32
    lib.mf_mbconv_fused_s8.restype = C.c_int
    size = lib.mf_mbconv_fused_s8_get_buffer_size(C.byref(params), C.byref(in_dims), C.byref(out_dims))
    scratch = np.full(max(size + scratch_delta, 1), 0x55, dtype=np.int8)
    out = np.zeros(out_shape, dtype=np.int8)
    x = np.ascontiguousarray(b.x)
    status = lib.mf_mbconv_fused_s8(C.byref(params), C.byref(in_dims), ptr(x, C.c_int8), C.byref(out_dims),
                                    ptr(out, C.c_int8), ptr(scratch, C.c_int8), size + scratch_delta)
    return status, out, size


@pytest.mark.parametrize("mode", ["float", "fixed"])
def test_kernel_identical_to_separate_kernels(engines, mode):
    engine = engines[mode]
    rng = np.random.default_rng(5 if mode == "float" else 6)
    varied = 0
    for case in range(60):
        b = random_block(rng)
        want = separate(engine, b)
        status, got, size = fused(engine, b, want.shape)
        assert status == MF_OK, (case, b.conv)
        assert np.array_equal(got, want), (case, b.conv, b.x.shape)
        mid = b.weights[1].shape[2]
        assert size == fuse.scratch_bytes(b.x.shape, want.shape, mid, b.weights[1].shape[0], b.conv.dilation[0])
        varied += len(np.unique(want)) > 2
    assert varied > 30  # the cases are not saturated to a constant


def test_kernel_refuses_small_scratch_and_strided_1x1(engines):
    engine = engines["float"]
    b = random_block(np.random.default_rng(1))
    want = separate(engine, b)
    assert fused(engine, b, want.shape, scratch_delta=-1)[0] == MF_ARG_ERROR
    assert fused(engine, b, want.shape, expand_stride=2)[0] == MF_UNSUPPORTED
    assert fused(engine, b, (want.shape[0] + 1, want.shape[1], want.shape[2]))[0] == MF_ARG_ERROR


def test_expanded_rows_hand_cases():
    assert fuse.expanded_rows(8, 8, 3, 1, 1, 1) == 8       # 3x3 stride 1 pad 1: every row once
    assert fuse.expanded_rows(8, 4, 3, 2, 1, 1) == 8       # stride 2: windows overlap by one row
    assert fuse.expanded_rows(10, 4, 3, 2, 1, 0) == 9      # pad 0: the last row no window reads
    assert fuse.expanded_rows(8, 4, 1, 2, 1, 0) == 4       # 1x1 depthwise stride 2: every other row
    # ring of min(H, dilation * (K - 1) + 1) rows plus one depthwise row
    assert fuse.scratch_bytes((8, 6, 3), (8, 6, 24), 24, 3, 1) == (3 * 6 + 6) * 24
    assert fuse.scratch_bytes((2, 6, 3), (2, 6, 24), 24, 5, 1) == (2 * 6 + 6) * 24


# ---- choosing blocks on hand-made chains (MobileNetV1 style: consecutive chains share their middle 1x1) ---------
def _chain(channels: list[int], hw: int = 16):
    """t0 -> 1x1 -> t1 -> 3x3 depthwise -> t2 -> 1x1 -> t3 -> ...; tensor t_i has channels[i] channels."""
    from mcuforge.ir.graph import Graph, Op, Tensor

    tensors = {f"t{i}": Tensor(f"t{i}", (hw, hw, c), 1.0, 0) for i, c in enumerate(channels)}
    ops = []
    for i, (cin, cout) in enumerate(zip(channels, channels[1:])):
        pointwise = i % 2 == 0
        attrs = {"strides": [1, 1], "pads": [0, 0, 0, 0] if pointwise else [1, 1, 1, 1], "dilations": [1, 1],
                 "clamp": (-128, 127)}
        weight = np.ones((cout, 1, 1, cin) if pointwise else (3, 3, cin), np.int8)
        ops.append(Op("conv1x1" if pointwise else "depthwise", f"{'pw' if pointwise else 'dw'}{i}", "Conv",
                      [f"t{i}"], f"t{i + 1}", attrs, {"weight": weight, "w_scale": np.ones(cout, np.float32)}))
    return Graph(tensors, ops, "t0", f"t{len(channels) - 1}", "in", "out")


SCHEDULE_DEFAULTS = ScheduleConfig()  # the schema's defaults, the only ones


def test_choose_overlapping_chains_hand_cases():
    # 16x16 tensors, 256 B per channel. Two inverted bottlenecks 8 -> 48 -> 48 -> 8 joined by an 8 -> 8 depthwise:
    # unfused, an expansion step holds 8 + 48 channels = 14,336 B (the depthwise runs in place with 2 rows of
    # scratch). Fusing both outer blocks leaves in + out + scratch = 2 x 2,048 + (3 x 16 + 16) x 48 = 7,168 B; the
    # middle chain (8 -> 8 -> 8 -> 48) shares a 1x1 with each of them and is not fused.
    graph = _chain([8, 48, 48, 8, 8, 48, 48, 8])
    blocks = fuse.candidates(graph)
    assert blocks == [["pw0", "dw1", "pw2"], ["pw2", "dw3", "pw4"], ["pw4", "dw5", "pw6"]]
    assert planner.plan(_chain([8, 48, 48, 8, 8, 48, 48, 8])).peak_bytes() == 14336
    specs = fuse.choose(graph, SCHEDULE_DEFAULTS)
    assert specs[0]["blocks"] == [blocks[0], blocks[2]]
    assert planner.plan(graph).peak_bytes() == 7168
    # 8 -> 8 -> 8 -> 48 -> 48 -> 8 -> 8 -> 8: the outer chains are not inverted (fusing one keeps its 48-channel
    # end live beside its input: 14,848 B > 14,336 B); the middle one is: the first-come pick is swapped for it
    graph = _chain([8, 8, 8, 48, 48, 8, 8, 8])
    specs = fuse.choose(graph, SCHEDULE_DEFAULTS)
    assert specs[0]["blocks"] == [blocks[1]] and planner.plan(graph).peak_bytes() == 7168
    # a graph whose only chain raises the arena: nothing fused
    assert fuse.choose(_chain([48, 8, 8, 48]), SCHEDULE_DEFAULTS) == []
    with pytest.raises(Exception, match="shares an op"):
        fuse.apply(_chain([8, 48, 48, 8, 8, 48, 48, 8]), {"kind": "fuse_mbconv", "blocks": blocks[:2]})


# ---- the rewrite on a MobileNetV2-like model: chosen where it lowers the arena, outputs unchanged ---------------
SPEC = {
    "input": {"resolution": 32, "channels": 3}, "num_classes": 4, "width_multiplier": 0.5,
    "activation": "relu6", "stem": {"channels": 16, "kernel": 3, "stride": 2},
    "stages": [{"channels": 16, "depth": 1, "stride": 1, "expansion": 1},
               {"channels": 24, "depth": 2, "stride": 2, "expansion": 6, "kernel": [3, 5]},
               {"channels": 32, "depth": 2, "stride": 2, "expansion": 4}],
    "head": {"channels": 0},
}
SCHEDULE = ScheduleConfig(planner="best", inplace_depthwise=True, reorder=True, fuse_mbconv=True)
UNFUSED = ScheduleConfig(planner="best", inplace_depthwise=True, reorder=True, fuse_mbconv=False)


@pytest.fixture(scope="module")
def mbv2_model(tmp_path_factory) -> Path:
    from schemas.arch import ArchSpec
    from mcuforge.ml import model as model_mod
    from test_codegen import export_and_quantize

    net = model_mod.fold_batchnorm(model_mod.build(ArchSpec.model_validate(SPEC)).eval())
    return export_and_quantize(net, (3, 32, 32), tmp_path_factory.mktemp("mbv2"))


def test_rewrite_registered_after_patch():
    assert list(rewrite.REWRITERS) == ["patch", "fuse_mbconv"]
    assert rewrite.REWRITERS["fuse_mbconv"] is fuse


def test_choose_keeps_only_blocks_the_arena_needs(mbv2_model: Path):
    from mcuforge import frontends

    graph = frontends.load(mbv2_model)
    blocks = fuse.candidates(graph)
    assert len(blocks) == 4  # every expansion-6/4 block; the expansion-1 block has no 1x1 expansion
    assert fuse.choose(frontends.load(mbv2_model), UNFUSED) == []
    unfused = planner.plan(frontends.load(mbv2_model)).peak_bytes()
    specs = fuse.choose(graph, SCHEDULE)
    assert json.loads(json.dumps(specs)) == specs and len(specs) == 1
    kept = specs[0]["blocks"]
    assert 1 <= len(kept) < len(blocks) and all(block in blocks for block in kept)
    assert specs == fuse.choose(frontends.load(mbv2_model), SCHEDULE)  # deterministic
    fused_ops = [op for op in graph.ops if op.kind == "mbconv_fused"]
    assert [op.name for op in fused_ops] == [block[0] + "+fused" for block in kept]
    fused_arena = planner.plan(graph).peak_bytes()
    assert fused_arena < unfused
    for block in kept:  # each kept block is needed: without it the arena grows
        trial = frontends.load(mbv2_model)
        fuse.apply(trial, {"kind": "fuse_mbconv", "blocks": [b for b in kept if b != block]})
        assert planner.plan(trial).peak_bytes() > fused_arena
    layers = frontends.load(mbv2_model)
    op = fused_ops[0]
    inner = {o.name: o for o in layers.ops if o.name in kept[0]}
    assert op.macs(graph.tensors) == sum(o.macs(layers.tensors) for o in inner.values())  # no recomputation
    assert op.nodes == [node for name in kept[0] for node in inner[name].nodes]
    assert op.compound.scratch_bytes < layers.tensors[inner[kept[0][0]].output].bytes


def _build(int8: Path, work: Path, schedule: ScheduleConfig, board: str | None = None, requant: str = "float"
           ) -> tuple[dict, planner.Plan]:
    """schedule -> plan.json -> (re-applied rewrites) codegen -> host (and board) builds -> verify against ONNX
    Runtime."""
    from schemas.loader import load_board
    from mcuforge.codegen import generate as codegen
    from mcuforge import frontends
    from mcuforge import toolchain
    from mcuforge.verify import check as verify
    from mcuforge.core.io import write_json

    graph = frontends.load(int8)
    specs = fuse.choose(graph, schedule)
    plan = planner.plan(graph)
    plan.rewrites = specs
    write_json(work / "plan.json", plan.to_json())
    graph, plan = rewrite.planned(int8, work / "plan.json")  # as codegen and verify see it
    codegen.write(codegen.generate(graph, plan, "mbv2"), work / "codegen")
    builds = {"host": toolchain.cmake_build(work / "codegen", work / "host", None, requant),
              "host_dump": toolchain.cmake_build(work / "codegen", work / "host_dump", None, requant, layer_dump=True)}
    machine = None
    if board is not None:
        spec = load_board(board).model_dump(mode="json")
        machine = spec["qemu"]["machine"]
        builds["board"] = toolchain.cmake_build(work / "codegen", work / "board", spec, requant)
    x = verify.model_inputs(graph, 6, seed=3)
    report, _ = verify.run_checks(graph, int8, x, None, 2, requant, builds, machine, work / "run")
    report["problems"] = verify.judge(report)
    return report, plan


def test_fused_build_identical_to_unfused_and_ort(mbv2_model: Path, tmp_path: Path):
    on, plan_on = _build(mbv2_model, tmp_path / "on", SCHEDULE)
    off, plan_off = _build(mbv2_model, tmp_path / "off", UNFUSED)
    assert plan_on.rewrites and not plan_off.rewrites
    assert plan_on.peak_bytes() < plan_off.peak_bytes()
    for report in (on, off):
        assert report["problems"] == [] and report["host"]["vs_ort"]["differing"] == 0
        for layer in report["layers"]:
            assert layer["host_vs_ort"]["differing"] == 0, layer
    fused_layers = [layer for layer in on["layers"] if layer["kind"] == "mbconv_fused"]
    assert fused_layers and all(layer["host_vs_ort_isolated"]["differing"] == 0 for layer in fused_layers)
    assert (tmp_path / "on" / "run" / "host_outputs.bin").read_bytes() == \
        (tmp_path / "off" / "run" / "host_outputs.bin").read_bytes()
    assert "mf_mbconv_fused_s8(" in (tmp_path / "on" / "codegen" / "model.c").read_text()


@pytest.mark.slow
@pytest.mark.skipif(not have_cross_tools(), reason="needs arm-none-eabi-gcc and qemu")
def test_fused_build_under_qemu(mbv2_model: Path, tmp_path: Path):
    report, plan = _build(mbv2_model, tmp_path, SCHEDULE, "stm32l4r5")
    assert plan.rewrites and report["problems"] == []
    assert report["qemu"]["vs_host"]["differing"] == 0 and report["qemu"]["vs_ort"]["differing"] == 0


def test_apply_refuses_a_block_that_does_not_qualify(mbv2_model: Path):
    from mcuforge import frontends
    from mcuforge.core.errors import McuforgeError

    graph = frontends.load(mbv2_model)
    expand, dw, project = fuse.candidates(graph)[0]
    with pytest.raises(McuforgeError, match="not a fusable inverted bottleneck"):
        fuse.apply(graph, {"kind": "fuse_mbconv", "blocks": [[expand, dw, dw]]})


@pytest.mark.slow
@pytest.mark.skipif(not (MLPERF / "vww_96_int8.tflite").is_file(), reason="MLPerf Tiny reference models not found")
def test_mlperf_vww_fused_exact_vs_tflite_micro(tmp_path: Path):
    """MobileNetV1-0.25 (pw -> dw -> pw chains overlap): one block fused takes the arena below the published
    layer-by-layer floor (55,296 B), every byte still equal to TFLite Micro's (fixed requantization)."""
    report, plan = _build(MLPERF / "vww_96_int8.tflite", tmp_path, SCHEDULE, requant="fixed")
    assert plan.rewrites and report["reference"] == "tflite-micro"
    assert plan.peak_bytes() == 46080 < 55296
    assert report["problems"] == [] and report["host"]["vs_ort"]["differing"] == 0
    assert all(layer["host_vs_ort"]["differing"] == 0 for layer in report["layers"])
