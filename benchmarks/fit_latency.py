"""Fit the latency cost model (mcuforge/ml/latency.py) to instruction counts under QEMU (issue 15, point 8).

A few small chain models (torch, seeded random weights -> ONNX -> int8, as kernel_bench.py builds its shapes) hold
layers of every modelled kind at varied shapes: channels 8-96, resolutions 6-48, kernels 3/5/7, strides 1/2. Each is
scheduled with the pipeline's defaults without fused blocks (layers stay separate, as the search's engine graph has
them), built as a layer-dump ELF and run once under qemu-system-arm with the icount plugin: one run gives every
layer's count (`layer_instructions`) and the whole inference's; the difference is the per-inference constant.
Families: `dsp` on stm32f746 (Cortex-M7, mps2-an500, float requantization: the default pipeline's board) and
`plain` on lpc1768 (Cortex-M3, mps2-an385, fixed requantization).

Writes the coefficients to mcuforge/ml/latency_model.json (atomically) and the raw counts to
benchmarks/results/latency_fit.json; prints each kind's fit error (max and mean relative error over its layers).
`--refit` fits again from the saved counts without running QEMU. A few minutes on 2 cores.

    .venv/bin/python benchmarks/fit_latency.py [--families dsp plain] [--refit] [--work DIR]
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks.kernel_bench import SEED, prepare  # noqa: E402
from benchmarks.planner_bench import export  # noqa: E402
from mcuforge import toolchain  # noqa: E402
from mcuforge.core.io import read_json, write_json  # noqa: E402
from mcuforge.ml import latency  # noqa: E402
from schemas.loader import load_board  # noqa: E402

FAMILIES = {"dsp": ("stm32f746", "float"), "plain": ("lpc1768", "fixed")}  # board, requantization
RAW_OUT = ROOT / "benchmarks" / "results" / "latency_fit.json"

# Chain models: (input channels, resolution, layers). A layer: ("conv", cout, kernel, stride), ("dw", kernel,
# stride), ("pw", cout), ("res",) (a 1x1 conv and the residual add), ("maxpool"|"avgpool", kernel, stride), ("gap",)
# (global average pool and flatten), ("fc", outputs), ("softmax",).
CHAINS = {
    "chain_a": (3, 48, [("conv", 8, 3, 2), ("dw", 3, 1), ("pw", 16), ("dw", 3, 2), ("pw", 32), ("res",), ("gap",),
                        ("fc", 10), ("softmax",)]),
    "chain_b": (8, 32, [("conv", 16, 5, 1), ("maxpool", 2, 2), ("dw", 5, 1), ("pw", 48), ("dw", 7, 2), ("pw", 24),
                        ("res",), ("avgpool", 2, 2), ("gap",), ("fc", 20)]),
    "chain_c": (16, 24, [("conv", 32, 3, 2), ("dw", 3, 1), ("pw", 64), ("res",), ("dw", 5, 2), ("pw", 96),
                         ("dw", 3, 1), ("res",), ("gap",), ("fc", 40), ("softmax",)]),
    "chain_d": (24, 16, [("conv", 24, 7, 1), ("dw", 7, 1), ("pw", 72), ("dw", 3, 2), ("pw", 24), ("conv", 40, 3, 1),
                         ("maxpool", 3, 2), ("gap",), ("fc", 64)]),
    "chain_e": (12, 40, [("conv", 12, 3, 1), ("dw", 3, 2), ("pw", 24), ("res",), ("dw", 5, 1), ("conv", 32, 5, 2),
                         ("pw", 16), ("avgpool", 3, 1), ("gap",), ("fc", 96)]),
    "chain_g": (1, 28, [("conv", 16, 3, 1), ("dw", 3, 2), ("pw", 24), ("dw", 5, 1), ("res",), ("gap",), ("fc", 10),
                        ("softmax",)]),
    "chain_h": (2, 20, [("conv", 12, 5, 1), ("conv", 24, 3, 2), ("dw", 7, 1), ("pw", 40), ("gap",), ("fc", 12)]),
    "chain_i": (3, 40, [("conv", 16, 3, 2), ("dw", 3, 1), ("pw", 8), ("conv", 16, 7, 2), ("dw", 5, 2), ("gap",),
                        ("fc", 16)]),
    "chain_j": (1, 32, [("conv", 8, 5, 2), ("conv", 16, 3, 1), ("dw", 3, 1), ("gap",), ("fc", 10)]),
    "chain_k": (4, 16, [("conv", 16, 3, 1), ("conv", 32, 5, 2), ("gap",), ("fc", 10), ("softmax",)]),
    "chain_l": (2, 24, [("conv", 8, 5, 1), ("conv", 6, 3, 2), ("conv", 24, 3, 1), ("gap",), ("fc", 10)]),
    "chain_m": (3, 36, [("conv", 24, 3, 1), ("dw", 5, 2), ("conv", 64, 3, 2), ("gap",), ("fc", 10)]),
    "chain_f": (32, 12, [("pw", 96), ("dw", 3, 1), ("pw", 8), ("conv", 8, 3, 1), ("dw", 7, 1), ("res",),
                         ("conv", 48, 3, 2), ("gap",), ("fc", 8)]),
}


class Residual(nn.Module):
    """`x + conv1x1(x)`: a 1x1 convolution and a two-input add."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 1)

    def forward(self, x):
        return x + self.conv(x)


def build_chain(channels: int, layers: list[tuple]) -> nn.Module:
    modules: list[nn.Module] = []
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, cout, kernel, stride = layer
            modules.append(nn.Conv2d(channels, cout, kernel, stride, kernel // 2))
            channels = cout
        elif kind == "dw":
            _, kernel, stride = layer
            modules.append(nn.Conv2d(channels, channels, kernel, stride, kernel // 2, groups=channels))
        elif kind == "pw":
            modules.append(nn.Conv2d(channels, layer[1], 1))
            channels = layer[1]
        elif kind == "res":
            modules.append(Residual(channels))
        elif kind in ("maxpool", "avgpool"):
            pool = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            modules.append(pool(layer[1], layer[2]))
        elif kind == "gap":
            modules += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        elif kind == "softmax":
            modules.append(nn.Softmax(dim=1))
        elif kind == "fc":
            modules.append(nn.Linear(channels, layer[1]))
            channels = layer[1]
        if kind in ("conv", "dw", "pw"):
            modules.append(nn.ReLU())
    return nn.Sequential(*modules)


def measure_chain(name: str, work: Path, families: list[str]) -> dict:
    """Every layer's terms and instructions, and the whole inference's, per family."""
    channels, resolution, layers = CHAINS[name]
    folder = work / name
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(SEED)
    int8 = export(build_chain(channels, layers), (channels, resolution, resolution), folder)
    prepared, _ = prepare(name, int8, False, folder, 1)
    graph = prepared.graph
    result = {"layers": [{"name": op.name, "kind": latency.cost_kind(op),
                          "terms": latency.shape_terms(op, graph.tensors)}
                         for op in graph.ops if latency.cost_kind(op) in latency.TERMS], "runs": {}}
    for family in families:
        board_name, requant = FAMILIES[family]
        print(f"  {name}: {family} ({board_name}, {requant})", file=sys.stderr, flush=True)
        board = load_board(board_name).model_dump(mode="json")
        build_dir = folder / f"build_{family}"
        elf = toolchain.cmake_build(prepared.codegen_dir, build_dir, board, requant, layer_dump=True)
        (build_dir / "layers").mkdir(exist_ok=True)
        run = toolchain.run_qemu(elf, board["qemu"]["machine"], prepared.inputs, build_dir / "outputs.bin",
                                 build_dir / "layers", count_instructions=True)
        per_layer = run.layer_instructions[0]
        counts = {op.name: count for op, count in zip(graph.ops, per_layer)}
        result["runs"][family] = {"whole": run.instructions_per_inference, "layer_sum": sum(per_layer),
                                  "layers": {layer["name"]: counts[layer["name"]] for layer in result["layers"]}}
    return result


def fit(raw: dict, families: list[str]) -> dict:
    """Per family: per-inference constant (mean of whole - sum of layers) and per-kind coefficients with errors."""
    model = {"about": "Latency cost model of mcuforge/ml/latency.py, written by benchmarks/fit_latency.py: "
                      "predicted instructions = constant + sum over ops of coefficients . terms (an estimate).",
             "families": {}}
    for family in families:
        board_name, requant = FAMILIES[family]
        board = load_board(board_name)
        samples: dict[str, list] = {}
        constants = []
        for chain in raw["chains"].values():
            run = chain["runs"][family]
            constants.append(run["whole"] - run["layer_sum"])
            for layer in chain["layers"]:
                samples.setdefault(layer["kind"], []).append((layer["terms"], run["layers"][layer["name"]]))
        kinds = {}
        for kind, rows in sorted(samples.items()):
            terms = latency.TERMS[kind]
            coefficients = latency.fit_kind(rows, terms)
            errors = latency.relative_errors(rows, terms, coefficients)
            kinds[kind] = {"terms": list(terms), "coefficients": [round(c, 6) for c in coefficients],
                           "layers": len(rows), "max_rel_error": round(max(errors), 4),
                           "mean_rel_error": round(float(np.mean(errors)), 4)}
        model["families"][family] = {"board": board_name, "core": str(board.core), "requant": requant,
                                     "constant": round(float(np.mean(constants))), "kinds": kinds}
    return model


def report(model: dict) -> str:
    lines = ["| family | kind | layers | coefficients (terms) | max rel. error | mean rel. error |",
             "|---|---|---|---|---|---|"]
    for family, fitted in model["families"].items():
        for kind, entry in fitted["kinds"].items():
            terms = ", ".join(f"{c:.4g} {t}" for c, t in zip(entry["coefficients"], entry["terms"]))
            lines.append(f"| {family} | {kind} | {entry['layers']} | {terms} | {entry['max_rel_error']:.1%} | "
                         f"{entry['mean_rel_error']:.1%} |")
        lines.append(f"| {family} | per inference | — | {fitted['constant']:,} | — | — |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", choices=list(FAMILIES), default=list(FAMILIES))
    parser.add_argument("--refit", action="store_true", help="fit from the saved counts (--raw) without QEMU")
    parser.add_argument("--raw", type=Path, default=RAW_OUT, help="the raw counts (written, or read by --refit)")
    parser.add_argument("--out", type=Path, default=latency.MODEL_FILE)
    parser.add_argument("--work", type=Path, default=None, help="keep the models and builds here")
    args = parser.parse_args(argv)
    if args.refit:
        raw = read_json(args.raw)
    else:
        work = args.work or Path(tempfile.mkdtemp(prefix="mf_fit_latency_"))
        raw = {"families": {f: dict(zip(("board", "requant"), FAMILIES[f])) for f in args.families},
               "chains": {name: measure_chain(name, work, args.families) for name in CHAINS}}
        write_json(args.raw, raw)
    model = fit(raw, args.families)
    write_json(args.out, model)
    print(report(model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
