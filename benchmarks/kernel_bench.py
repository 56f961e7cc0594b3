"""Kernel benchmark (issue 15, point 7): exact executed-instruction counts of the engine's kernels under QEMU.

Single-layer models of the shapes of issue 15's table (plus ADD, global average pool and softmax), built as the
tests build models (torch with seeded random weights -> ONNX -> mcuforge/ml/quantize.py, QOperator, random
calibration), scheduled with the pipeline's defaults (schedule.fuse_mbconv on or off per row), generated, built for
each core and engine variant and run under qemu-system-arm with the icount plugin (engine_c/tools/), which counts
the instructions from mf_bench_start to mf_bench_stop: exact and deterministic. A row whose model needs a helper
layer (a quantized input for pooling, fully connected and softmax: `x + x` first) is counted per layer from a
layer-dump build (the plugin's mark/resume: only the measured layer's kernel call).

Variants, side by side in one run: `dsp` (the default build) and `plain` (built with -DMF_NO_DSP: the portable C
path on DSP cores). M4 (boards/stm32l4r5.yaml, mps2-an386), M7 (stm32f746, mps2-an500), M3 (lpc1768, mps2-an385,
no DSP: `plain` only). Both variants must give the same output bytes (checked: a difference fails the run).

The CMSIS-NN column is issue 15's measurement (instructions per MAC, Cortex-M4, -O3, fixed requantization; see
../shared/DESIGN.md section 7); for ADD, pooling and softmax (no measurement) an estimate counted from CMSIS-NN's
sources, marked "(est.)", its derivation in the JSON (`cmsis_nn_source`). `--before DIR` adds the variant `before`:
the default build of another checkout's engine (DIR/engine_c), on the same models in the same run. `--models` adds the MLPerf Tiny VWW and KWS models (read in place from
../shared/models/mlperf-tiny) and the default pipeline's fashion model when it has been built.

    .venv/bin/python benchmarks/kernel_bench.py [--cores m4 m7 m3] [--shapes conv1x1 dw_s1 ...] [--quick]
        [--requant fixed|float] [--models [--mlperf DIR] [--fashion INT8.onnx]]
        [--before OTHER_CHECKOUT] [--out benchmarks/results/kernel_bench.json] [--work DIR]

A Markdown table on stdout, progress on stderr, the figures as JSON (--out).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.planner_bench import export  # noqa: E402
from mcuforge import frontends, toolchain  # noqa: E402
from mcuforge.toolchain import cmake as cmake_module  # noqa: E402
from mcuforge.codegen import generate as codegen  # noqa: E402
from mcuforge.core.io import write_json  # noqa: E402
from mcuforge.ir.graph import Graph, OpKind  # noqa: E402
from mcuforge.schedule import planner, rewrite  # noqa: E402
from mcuforge.verify.check import write_vectors  # noqa: E402
from schemas.loader import load_board  # noqa: E402
from schemas.pipeline import ScheduleConfig  # noqa: E402

CORES = {"m4": "stm32l4r5", "m7": "stm32f746", "m3": "lpc1768"}  # boards/<name>.yaml
DSP_CORES = ("m4", "m7")
VARIANTS = {"dsp": (), "plain": ("MF_NO_DSP",)}  # extra C defines of each engine variant
# --before DIR: the variant "before", the default build (DSP path where the core has it) of DIR/engine_c, another
# checkout's engine (e.g. main's), so that before and after are counted in the same run on the same models
BEFORE_ENGINE: list[Path] = []
# compiler flag sets (issue 15, point 6), appended to the board's compiler.flags (after the engine's -O2, so an -O
# flag replaces it; the flags reach the compile and the link, so -flto is link-time optimization)
OPTS = {"O2": (), "O3": ("-O3",), "Os": ("-Os",), "O2-lto": ("-flto",), "O3-lto": ("-O3", "-flto"),
        "Os-lto": ("-Os", "-flto")}
DEFAULT_OPT = "O2"
SEED = 0
SAMPLES = 3
MODEL_SAMPLES = 2
MLPERF_DIR = ROOT.parent / "shared" / "models" / "mlperf-tiny"
FASHION_INT8 = ROOT / "build" / "fashion" / "quantize" / "model_int8.onnx"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "kernel_bench.json"


class Add(nn.Module):
    """`x + x`: a QLinearAdd reading two inputs (the same tensor) element by element."""

    def forward(self, x):
        return x + x


class AfterAdd(nn.Module):
    """`layer(x + x)`: the ADD gives the measured layer a quantized input (ONNX Runtime leaves a pooling, flatten or
    softmax that reads the graph input in float)."""

    def __init__(self, layer: Callable, flatten: bool = False):
        super().__init__()
        self.layer = layer
        self.flatten = flatten

    def forward(self, x):
        y = x + x
        return self.layer(y.flatten(1) if self.flatten else y)


def mbconv(channels: int, expansion: int) -> nn.Module:
    """An inverted bottleneck without residual (1x1 expansion, ReLU6, depthwise 3x3, ReLU6, 1x1 projection): the three
    layers of CMSIS-NN's figure."""
    hidden = channels * expansion
    return nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU6(), nn.Conv2d(hidden, hidden, 3, padding=1,
                                                                               groups=hidden),
                         nn.ReLU6(), nn.Conv2d(hidden, channels, 1))


class ResidualBlock(nn.Module):
    """Two 3x3 convolutions (BatchNorm folded away at export: eval mode, default statistics) and a shortcut, 1x1
    with the stride when the shape changes, then ADD and ReLU: a block of MLPerf Tiny's CIFAR-10 ResNet-8."""

    def __init__(self, c_in: int, c_out: int, stride: int):
        super().__init__()
        self.conv1 = nn.Sequential(nn.Conv2d(c_in, c_out, 3, stride, 1), nn.BatchNorm2d(c_out), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(c_out, c_out, 3, 1, 1), nn.BatchNorm2d(c_out))
        self.shortcut = nn.Identity() if stride == 1 and c_in == c_out else nn.Conv2d(c_in, c_out, 1, stride)

    def forward(self, x):
        return torch.relu(self.conv2(self.conv1(x)) + self.shortcut(x))


def resnet8() -> nn.Module:
    """The architecture of MLPerf Tiny's image classification model (CIFAR-10 ResNet-8, 32x32x3): a 3x3 stem of 16,
    residual stacks of 16, 32 (stride 2) and 64 (stride 2), global average pooling, FC 10, softmax; 12.5 MMAC.
    Seeded random weights: the instruction counts do not depend on the values (no data-dependent kernel path)."""
    return nn.Sequential(nn.Conv2d(3, 16, 3, 1, 1), nn.BatchNorm2d(16), nn.ReLU(), ResidualBlock(16, 16, 1),
                         ResidualBlock(16, 32, 2), ResidualBlock(32, 64, 2), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10), nn.Softmax(dim=1))


@dataclass(frozen=True)
class Shape:
    key: str
    title: str
    make: Callable[[], nn.Module]
    input_chw: tuple[int, int, int]
    measured: tuple[str, ...]  # op kinds whose instructions are counted
    unit: str = "MAC"  # "MAC", or "element" (of the output for ADD and softmax, of the input for pooling)
    cmsis_nn: float | None = None  # CMSIS-NN instructions per MAC, issue 15 (M4, -O3, fixed requantization)
    fuse_mbconv: bool = True
    cmsis_source: str = "measured"  # "measured" (issue 15's QEMU count) or how the figure was estimated


# CMSIS-NN per element where issue 15 has no measurement: counted from its sources (ARM-software/CMSIS-NN,
# Source/BasicMathFunctions/arm_elementwise_add_s8.c, Source/PoolingFunctions/arm_avgpool_s8.c,
# Source/NNSupportFunctions/arm_nn_softmax_common_s8.c with arm_nnsupportfunctions.h), the DSP (non-MVE) path, as
# instructions of its inner loop per element; not run here (no CMSIS-NN build on this machine), so estimates.
CMSIS_ADD_ESTIMATE = ("~55 per element, counted: 3 arm_nn_requantize per element (each: the left-shift multiply, "
                      "SMLAL with its two constant moves and the 64-bit >> 31 (5), arm_nn_divide_by_power_of_two (~7)), "
                      "2 lane extractions and shifts per input, the sum, offset, MAX/MIN; per 4 elements 2 word loads, "
                      "4 SXTB16, 4 SADD16, the PACK_S8x4 and its store")
CMSIS_AVGPOOL_ESTIMATE = ("~5 per input element, counted (a lower bound): the DSP path adds each pixel's channels into "
                          "an int32 scratch buffer, buffer[i] = QADD(start[i], buffer[i]): LDRSB, LDR, QADD, STR and "
                          "the loop step, then one division per channel (arm_avgpool_s8, window = the whole input)")
CMSIS_SOFTMAX_ESTIMATE = ("~200 per element, a lower bound counted from arm_nn_softmax_common_s8: two "
                          "arm_nn_exp_on_negative_values per element (sum pass and output pass), each 12 "
                          "arm_nn_doubling_high_mult (SMLAL, sign-dependent rounding, 64-bit division by 2^31, "
                          "saturation check: >= 8 instructions each), plus 3 more MUL_SAT and 2 DIV_POW2")


SHAPES = [
    Shape("conv1x1", "1x1 conv 24x24x32 -> 64", lambda: nn.Conv2d(32, 64, 1), (32, 24, 24), ("conv1x1",),
          cmsis_nn=2.69),
    Shape("dw_s1", "depthwise 3x3 s1 p1 48x48x32", lambda: nn.Conv2d(32, 32, 3, 1, 1, groups=32), (32, 48, 48),
          ("depthwise",), cmsis_nn=8.96),
    Shape("dw_s2", "depthwise 3x3 s2 p1 48x48x32", lambda: nn.Conv2d(32, 32, 3, 2, 1, groups=32), (32, 48, 48),
          ("depthwise",), cmsis_nn=8.97),
    Shape("dw5_s1", "depthwise 5x5 s1 p2 48x48x32", lambda: nn.Conv2d(32, 32, 5, 1, 2, groups=32), (32, 48, 48),
          ("depthwise",)),
    Shape("dw7_s2", "depthwise 7x7 s2 p3 48x48x32", lambda: nn.Conv2d(32, 32, 7, 2, 3, groups=32), (32, 48, 48),
          ("depthwise",)),
    Shape("stem", "stem conv 3x3 s2 p1 96x96x3 -> 8", lambda: nn.Conv2d(3, 8, 3, 2, 1), (3, 96, 96), ("conv",),
          cmsis_nn=6.15),
    Shape("conv3x3", "conv 3x3 s1 p1 24x24x16 -> 16", lambda: nn.Conv2d(16, 16, 3, 1, 1), (16, 24, 24), ("conv",),
          cmsis_nn=2.33),
    Shape("fc", "fully connected 256 -> 10", lambda: AfterAdd(nn.Linear(256, 10), flatten=True), (256, 1, 1),
          ("fc",), cmsis_nn=2.12),
    Shape("mbconv_fused", "MBConv 24x24x16, expand 6, DW 3x3, -> 16 (fused)", lambda: mbconv(16, 6), (16, 24, 24),
          ("mbconv_fused",), cmsis_nn=4.17),
    Shape("mbconv_layers", "MBConv 24x24x16, expand 6, DW 3x3, -> 16 (3 layers)", lambda: mbconv(16, 6),
          (16, 24, 24), ("conv1x1", "depthwise"), cmsis_nn=4.17, fuse_mbconv=False),
    Shape("add", "ADD 16x16x32 (two inputs)", Add, (32, 16, 16), ("add",), unit="element", cmsis_nn=55.0,
          cmsis_source=CMSIS_ADD_ESTIMATE),
    Shape("avgpool", "avg pool (global, 8x8x64)", lambda: AfterAdd(nn.AdaptiveAvgPool2d(1)), (64, 8, 8),
          ("global_avgpool",), unit="element", cmsis_nn=5.0, cmsis_source=CMSIS_AVGPOOL_ESTIMATE),
    Shape("softmax", "softmax 10", lambda: AfterAdd(nn.Softmax(dim=1), flatten=True), (10, 1, 1), ("softmax",),
          unit="element", cmsis_nn=200.0, cmsis_source=CMSIS_SOFTMAX_ESTIMATE),
]
QUICK_SHAPES = ("conv1x1", "dw_s1", "dw_s2")


@dataclass
class Prepared:
    """A model scheduled and generated: the C sources in `codegen_dir`, the ops counted, their work units."""
    name: str
    graph: Graph
    codegen_dir: Path
    inputs: Path
    measured: list[int]  # indices into graph.ops (the plan's order) of the counted layers; [] = whole inference
    units: int  # MACs, or elements
    scratch_bytes: int
    arena_bytes: int
    fused: list[str] = field(default_factory=list)


def work_units(shape: Shape, graph: Graph, ops: list) -> int:
    if shape.unit == "MAC":
        return sum(op.macs(graph.tensors) for op in ops)
    tensor = ops[0].inputs[0] if ops[0].kind == OpKind.global_avgpool else ops[0].output
    return int(np.prod(graph.tensors[tensor].shape))


def prepare(name: str, int8: Path, fuse_mbconv: bool, work: Path, samples: int,
            measured_kinds: tuple[str, ...] = ()) -> tuple[Prepared, list]:
    """Schedule (the pipeline's defaults, fuse_mbconv as given), generate the C sources and write random int8
    inputs; with measured_kinds, the layers counted are those of these kinds (all layers: the whole inference)."""
    graph = frontends.load(int8)
    schedule = ScheduleConfig(fuse_mbconv=fuse_mbconv)
    rewrite.choose(graph, schedule)
    plan = planner.plan_for(graph, schedule)  # graph.ops now in the plan's order, the order the engine runs
    codegen.write(codegen.generate(graph, plan, name), work / "codegen")
    shape = (samples,) + tuple(graph.tensors[graph.input].shape)
    write_vectors({"inputs.bin": np.random.default_rng(SEED).integers(-128, 128, size=shape, dtype=np.int8)}, work)
    computing = [i for i, op in enumerate(graph.ops) if op.kind != OpKind.view]
    measured = [i for i in computing if graph.ops[i].kind in measured_kinds]
    if measured_kinds and not measured:
        raise SystemExit(f"{name}: no layer of kind {measured_kinds} in {[op.kind for op in graph.ops]}")
    scratch = sum(buffer.size for buffer_name, buffer in plan.buffers.items() if buffer_name not in graph.tensors)
    prepared = Prepared(name, graph, work / "codegen", work / "inputs.bin",
                        [] if measured == computing else measured, 0, scratch, plan.peak_bytes(),
                        [op.name for op in graph.ops if op.kind == OpKind.mbconv_fused])
    return prepared, [graph.ops[i] for i in (measured or computing)]


def run_variant(prepared: Prepared, core: str, variant: str, requant: str, work: Path, opt: str = DEFAULT_OPT) -> dict:
    """Build the engine for the core's board with the variant's defines and the flag set `opt`, run it under QEMU
    counting instructions."""
    board = load_board(CORES[core]).model_dump(mode="json")
    board["compiler"]["flags"] = list(board["compiler"]["flags"]) + list(OPTS[opt])
    layer_dump = bool(prepared.measured)
    build_dir = work / (f"build_{core}_{variant}" if opt == DEFAULT_OPT else f"build_{core}_{variant}_{opt}")
    engine_dir = cmake_module.ENGINE_DIR
    if variant == "before":
        cmake_module.ENGINE_DIR = BEFORE_ENGINE[0] / "engine_c"
    try:
        elf = toolchain.cmake_build(prepared.codegen_dir, build_dir, board, requant, layer_dump=layer_dump,
                                    defines=VARIANTS.get(variant, ()))
    finally:
        cmake_module.ENGINE_DIR = engine_dir
    outputs = build_dir / "outputs.bin"
    layer_dir = build_dir / "layers" if layer_dump else None
    if layer_dir is not None:
        layer_dir.mkdir(exist_ok=True)
    result = toolchain.run_qemu(elf, board["qemu"]["machine"], prepared.inputs, outputs, layer_dir,
                                count_instructions=True)
    if layer_dump:
        per_sample = [sum(sample[i] for i in prepared.measured) for sample in result.layer_instructions]
        instructions = round(sum(per_sample) / len(per_sample))
    else:
        instructions = result.instructions_per_inference
    return {"instructions": instructions, "flash_bytes": toolchain.elf_size(elf)["flash"],
            "outputs_sha256": hashlib.sha256(outputs.read_bytes()).hexdigest()}


SELECTED_VARIANTS = list(VARIANTS)  # --variants


def variants_of(core: str) -> list[str]:
    variants = [variant for variant in SELECTED_VARIANTS if core in DSP_CORES or variant == "plain"]
    return variants + (["before"] if BEFORE_ENGINE else [])


def run_key(core: str, variant: str, opt: str = DEFAULT_OPT) -> str:
    return f"{core}/{variant}" if opt == DEFAULT_OPT else f"{core}/{variant}/{opt}"


def measure(prepared: Prepared, cores: list[str], requant: str, work: Path,
            opts: tuple[str, ...] = (DEFAULT_OPT,)) -> dict:
    """Every core x variant x flag set of one prepared model; checks that all of them wrote the same output bytes."""
    runs = {}
    for core in cores:
        for variant in variants_of(core):
            for opt in opts:
                print(f"  {prepared.name}: {core} {variant} {opt}", file=sys.stderr, flush=True)
                runs[run_key(core, variant, opt)] = run_variant(prepared, core, variant, requant, work, opt)
    digests = {run["outputs_sha256"] for run in runs.values()}
    return {"runs": runs, "outputs_identical": len(digests) == 1}


def bench_shape(shape: Shape, cores: list[str], requant: str, work: Path,
                opts: tuple[str, ...] = (DEFAULT_OPT,)) -> dict:
    folder = work / shape.key
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    int8 = export(shape.make(), shape.input_chw, folder)
    prepared, ops = prepare(shape.key, int8, shape.fuse_mbconv, folder, SAMPLES, shape.measured)
    prepared.units = work_units(shape, prepared.graph, ops)
    if "mbconv_fused" in shape.measured and not prepared.fused:
        raise SystemExit(f"{shape.key}: the schedule did not fuse the block")
    row = {"key": shape.key, "title": shape.title, "unit": shape.unit, "units": prepared.units,
           "cmsis_nn_per_mac": shape.cmsis_nn, "cmsis_nn_source": shape.cmsis_source,
           "scratch_bytes": prepared.scratch_bytes,
           "arena_bytes": prepared.arena_bytes, "counted": "layers" if prepared.measured else "whole inference"}
    row.update(measure(prepared, cores, requant, folder, opts))
    for run in row["runs"].values():
        run["per_unit"] = round(run["instructions"] / prepared.units, 3)
        if shape.cmsis_nn is not None:
            run["vs_cmsis_nn"] = round(run["per_unit"] / shape.cmsis_nn, 3)
    return row


def whole_models(mlperf_dir: Path, fashion: Path | None, work: Path) -> list[tuple[str, Path]]:
    """(row name, model file): MLPerf Tiny VWW and KWS, a ResNet-8 of MLPerf Tiny's image classification architecture
    (exported and quantized here: that model is not among ../shared/models), and the fashion model named by its
    build directory."""
    folder = work / "resnet8_model"
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    models = [("mlperf_vww", mlperf_dir / "vww_96_int8.tflite"), ("mlperf_kws", mlperf_dir / "kws_ref_model.tflite"),
              ("resnet8", export(resnet8(), (3, 32, 32), folder))]
    if fashion is not None and fashion.is_file():
        in_build = fashion.resolve().parent.name == "quantize"  # build/<pipeline>/quantize/model_int8.onnx
        models.append((fashion.resolve().parent.parent.name if in_build else fashion.stem, fashion))
    missing = [str(path) for _, path in models if not path.is_file()]
    if missing:
        raise SystemExit(f"model files not found: {', '.join(missing)}")
    return models


def bench_model(name: str, path: Path, cores: list[str], requant: str, work: Path,
                opts: tuple[str, ...] = (DEFAULT_OPT,)) -> dict:
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    prepared, ops = prepare(name, path, True, folder, MODEL_SAMPLES)
    macs = sum(op.macs(prepared.graph.tensors) for op in ops)
    row = {"key": name, "model": os.path.relpath(path.absolute(), ROOT), "macs": macs, "arena_bytes": prepared.arena_bytes,
           "fused_blocks": len(prepared.fused)}
    row.update(measure(prepared, cores, requant, folder, opts))
    for run in row["runs"].values():
        run["per_mac"] = round(run["instructions"] / macs, 3)
    return row


def _cell(run: dict | None, key: str, fmt: str) -> str:
    return "—" if run is None or run.get(key) is None else format(run[key], fmt)


def _variant(variant: str, opt: str) -> str:
    return variant if opt == DEFAULT_OPT else f"{variant} {opt}"


def markdown(results: dict) -> str:
    opts = results.get("opts", [DEFAULT_OPT])
    columns = [(core, variant, opt) for core in results["cores"] for variant in variants_of(core) for opt in opts]
    lines = [f"Instructions per MAC (per element for ADD, pool, softmax) under QEMU, requantization "
             f"{results['requant']}; ratio = ours / CMSIS-NN (issue 15, M4 -O3).", "",
             "| shape | core | variant | MACs / elements | instructions | per MAC / element | CMSIS-NN | ratio | "
             "scratch B |", "|---|---|---|---|---|---|---|---|---|"]
    for row in results["shapes"]:
        for core, variant, opt in columns:
            run = row["runs"][run_key(core, variant, opt)]
            cmsis = "—" if row["cmsis_nn_per_mac"] is None else f"{row['cmsis_nn_per_mac']:.2f}"
            if row.get("cmsis_nn_source", "measured") != "measured":
                cmsis += " (est.)"
            lines.append(f"| {row['title']} | {core.upper()} | {_variant(variant, opt)} | "
                         f"{row['units']:,} {row['unit']}s | "
                         f"{run['instructions']:,} | {run['per_unit']:.2f} | {cmsis} | "
                         f"{_cell(run, 'vs_cmsis_nn', '.2f')} | {row['scratch_bytes']:,} |")
    if results["models"]:
        lines += ["", "| model | core | variant | MACs | instructions / inference | per MAC | flash B | arena B |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in results["models"]:
            for core, variant, opt in columns:
                run = row["runs"][run_key(core, variant, opt)]
                lines.append(f"| {row['key']} | {core.upper()} | {_variant(variant, opt)} | {row['macs']:,} | "
                             f"{run['instructions']:,} | {run['per_mac']:.2f} | {run['flash_bytes']:,} | "
                             f"{row['arena_bytes']:,} |")
    return "\n".join(lines)


def parse_arguments(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", nargs="+", choices=list(CORES), default=list(CORES))
    parser.add_argument("--shapes", nargs="+", choices=[shape.key for shape in SHAPES], default=None)
    parser.add_argument("--requant", choices=["fixed", "float"], default="fixed")
    parser.add_argument("--models", action="store_true", help="also whole models: MLPerf Tiny VWW and KWS, fashion")
    parser.add_argument("--fashion", type=Path, default=FASHION_INT8, help="a fashion pipeline's int8 .onnx "
                        "(default: the default pipeline's build, when it exists)")
    parser.add_argument("--mlperf", type=Path, default=MLPERF_DIR, help="folder of the MLPerf Tiny .tflite models")
    parser.add_argument("--quick", action="store_true", help="M4 only, fixed, the first shapes")
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="engine variants to build (default: all; the M3 builds plain only)")
    parser.add_argument("--opts", nargs="+", choices=list(OPTS), default=[DEFAULT_OPT],
                        help="compiler flag sets to compare (issue 15, point 6); default: the engine's -O2")
    parser.add_argument("--before", type=Path, default=None, help="also the variant 'before': the default build of "
                        "DIR/engine_c (another checkout, e.g. main), counted in the same run")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=None, help="keep the models and builds here")
    args = parser.parse_args(argv)
    if args.quick:
        args.cores, args.requant = ["m4"], "fixed"
        args.shapes = args.shapes or list(QUICK_SHAPES)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_arguments(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="mf_kernel_bench_"))
    SELECTED_VARIANTS[:] = args.variants
    if args.before is not None:
        if not (args.before / "engine_c" / "CMakeLists.txt").is_file():
            raise SystemExit(f"--before {args.before}: no engine_c/CMakeLists.txt there")
        BEFORE_ENGINE[:] = [args.before.resolve()]
    shapes = [shape for shape in SHAPES if args.shapes is None or shape.key in args.shapes]
    results = {"requant": args.requant, "cores": args.cores, "boards": {core: CORES[core] for core in args.cores},
               "variants": {name: list(VARIANTS[name]) for name in args.variants}, "samples": SAMPLES,
               "before": None if args.before is None else str(args.before),
               "seed": SEED, "opts": args.opts, "opt_flags": {opt: list(OPTS[opt]) for opt in args.opts},
               "shapes": [], "models": []}
    for shape in shapes:
        print(f"{shape.key}: {shape.title}", file=sys.stderr, flush=True)
        results["shapes"].append(bench_shape(shape, args.cores, args.requant, work, tuple(args.opts)))
    if args.models:
        for name, path in whole_models(args.mlperf, args.fashion, work):
            print(f"{name}: {path}", file=sys.stderr, flush=True)
            results["models"].append(bench_model(name, path, args.cores, args.requant, work, tuple(args.opts)))
    write_json(args.out, results)
    print(markdown(results))
    differing = [row["key"] for row in results["shapes"] + results["models"] if not row["outputs_identical"]]
    if differing:
        print(f"ERROR: the variants or cores wrote different output bytes for: {', '.join(differing)}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
