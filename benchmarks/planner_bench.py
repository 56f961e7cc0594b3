"""Arena planners compared on a model set: TFLite Micro's greedy_by_size (ONNX order, no in-place), our `best`
(reordering, in-place depthwise, placement heuristics, exact search on small graphs) and the lower bound of best's
op order (max over steps of the live bytes, in-place credited; no plan of that order can be smaller).

Models are built in torch, exported to ONNX and quantized by the pipeline's own mcuforge/ml/quantize.py (random
calibration: memory does not depend on the weights): the default pipeline's model (build/fashion, when it has been
built; else its fixed-model fallback is skipped), digits, MobileNetV2-0.35 at 96/128/160 px, an MCUNet-like net
(mixed 3/5/7 kernels and expansions, residual blocks) and a multi-branch Inception-style concat net (also with every
branch's reduction first) and a two-branch MBConv net whose model code expands both branches first.
Fused bottlenecks: `best` after mcuforge/schedule/fuse.py fused the inverted bottlenecks that lower its arena
(blocks fused / blocks that qualify), and the MACs of the fused graph over the layer-by-layer MACs (1.000: nothing
recomputed).

    .venv/bin/python benchmarks/planner_bench.py [--out DIR]

Goal (issue 5): best <= greedy on every model and best <= 1.05 x the lower bound. Prints a Markdown table.
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas.arch import ArchSpec  # noqa: E402
from schemas.pipeline import ScheduleConfig  # noqa: E402
from mcuforge.schedule import fuse  # noqa: E402
from mcuforge import frontends
from mcuforge.ml import model as model_mod  # noqa: E402
from mcuforge.schedule import planner  # noqa: E402
from mcuforge.schedule import rewrite
from mcuforge.ml.quantize import quantize  # noqa: E402


PATCH_MACS_LIMIT = 0.15


def mobilenet_v2(resolution: int, width: float = 0.35) -> ArchSpec:
    return ArchSpec.model_validate({
        "input": {"resolution": resolution, "channels": 3}, "num_classes": 2, "width_multiplier": width,
        "activation": "relu6", "stem": {"channels": 32, "kernel": 3, "stride": 2},
        "stages": [
            {"channels": 16, "depth": 1, "stride": 1, "expansion": 1},
            {"channels": 24, "depth": 2, "stride": 2, "expansion": 6},
            {"channels": 32, "depth": 3, "stride": 2, "expansion": 6},
            {"channels": 64, "depth": 4, "stride": 2, "expansion": 6},
            {"channels": 96, "depth": 3, "stride": 1, "expansion": 6},
            {"channels": 160, "depth": 3, "stride": 2, "expansion": 6},
            {"channels": 320, "depth": 1, "stride": 1, "expansion": 6},
        ],
        "head": {"channels": 1280},
    })


def mcunet_like() -> ArchSpec:
    """After MCUNet's VWW network: 80 px... here 96 px RGB, width 0.5, per-block kernels 3/5/7, expansions 3/4/6."""
    return ArchSpec.model_validate({
        "input": {"resolution": 96, "channels": 3}, "num_classes": 2, "width_multiplier": 0.5,
        "activation": "relu6", "stem": {"channels": 32, "kernel": 3, "stride": 2},
        "stages": [
            {"channels": 16, "depth": 1, "stride": 1, "expansion": 1},
            {"channels": 24, "depth": 3, "stride": 2, "kernel": [7, 3, 5], "expansion": [6, 4, 3]},
            {"channels": 40, "depth": 3, "stride": 2, "kernel": [5, 7, 3], "expansion": [6, 3, 4]},
            {"channels": 80, "depth": 3, "stride": 2, "kernel": [5, 3, 7], "expansion": [4, 6, 3]},
            {"channels": 96, "depth": 2, "stride": 1, "kernel": [5, 3], "expansion": [6, 4]},
            {"channels": 192, "depth": 3, "stride": 2, "kernel": [7, 5, 3], "expansion": [6, 6, 4]},
        ],
        "head": {"channels": 0},
    })


def digits() -> ArchSpec:
    return ArchSpec.model_validate({
        "input": {"resolution": 16, "channels": 1}, "num_classes": 10, "width_multiplier": 0.5,
        "activation": "relu6", "stem": {"channels": 16, "kernel": 3, "stride": 2},
        "stages": [{"channels": 16, "depth": 1, "stride": 1, "expansion": 1},
                   {"channels": 24, "depth": 2, "stride": 2, "expansion": 3}],
        "head": {"channels": 0},
    })


class Inception(nn.Module):
    """Four branches (1x1; 1x1 -> 3x3; 1x1 -> 5x5; 3x3 max pool -> 1x1) concatenated on channels."""

    def __init__(self, cin: int, widths: tuple[int, int, int, int], reduce_first: bool = False):
        super().__init__()
        self.reduce_first = reduce_first
        a, b, c, d = widths
        self.b1 = nn.Conv2d(cin, a, 1)
        self.b2 = nn.Sequential(nn.Conv2d(cin, b, 1), nn.ReLU(), nn.Conv2d(b, b, 3, padding=1))
        self.b3 = nn.Sequential(nn.Conv2d(cin, c, 1), nn.ReLU(), nn.Conv2d(c, c, 5, padding=2))
        self.b4 = nn.Sequential(nn.MaxPool2d(3, 1, 1), nn.Conv2d(cin, d, 1))

    def forward(self, x):
        if self.reduce_first:  # every branch's 1x1 reduction first, as some model code writes it: a poor ONNX order
            r2, r3 = torch.relu(self.b2[0](x)), torch.relu(self.b3[0](x))
            p4 = self.b4[0](x)
            return torch.cat([torch.relu(self.b1(x)), torch.relu(self.b2[2](r2)), torch.relu(self.b3[2](r3)),
                              torch.relu(self.b4[1](p4))], 1)
        return torch.cat([torch.relu(self.b1(x)), torch.relu(self.b2(x)), torch.relu(self.b3(x)),
                          torch.relu(self.b4(x))], 1)


class MultiBranch(nn.Module):
    def __init__(self, reduce_first: bool = False):
        super().__init__()
        self.stem = nn.Conv2d(3, 16, 3, stride=2, padding=1)
        self.i1 = Inception(16, (8, 16, 4, 4), reduce_first)
        self.i2 = Inception(32, (16, 24, 8, 8), reduce_first)
        self.down = nn.MaxPool2d(2)
        self.i3 = Inception(56, (24, 32, 8, 8), reduce_first)
        self.fc = nn.Linear(72, 2)

    def forward(self, x):  # 3x64x64
        x = torch.relu(self.stem(x))
        x = self.down(self.i2(self.i1(x)))
        x = self.i3(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class TwoBranch(nn.Module):
    """Blocks of two inverted-bottleneck branches (kernels 3 and 5) concatenated; the model code runs both
    expansions before either depthwise, so the ONNX order keeps both expanded tensors live: reordering helps."""

    def __init__(self, channels: int = 16, blocks: int = 3, expansion: int = 4):
        super().__init__()
        hidden = channels * expansion
        self.stem = nn.Conv2d(3, channels, 3, stride=2, padding=1)
        self.expand = nn.ModuleList(nn.ModuleList(nn.Conv2d(channels, hidden, 1) for _ in range(2))
                                    for _ in range(blocks))
        self.dw = nn.ModuleList(nn.ModuleList([nn.Conv2d(hidden, hidden, 3, padding=1, groups=hidden),
                                               nn.Conv2d(hidden, hidden, 5, padding=2, groups=hidden)])
                                for _ in range(blocks))
        self.project = nn.ModuleList(nn.ModuleList(nn.Conv2d(hidden, channels // 2, 1) for _ in range(2))
                                     for _ in range(blocks))
        self.fc = nn.Linear(channels, 2)

    def forward(self, x):  # 3x64x64
        x = torch.relu(self.stem(x))
        for expand, dw, project in zip(self.expand, self.dw, self.project):
            wide = [torch.relu(e(x)) for e in expand]
            x = torch.cat([p(torch.relu(d(w))) for p, d, w in zip(project, dw, wide)], 1)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def export(net: nn.Module, shape: tuple[int, int, int], out: Path) -> Path:
    torch.manual_seed(0)
    fp32, int8 = out / "fp32.onnx", out / "int8.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(net.eval(), (torch.zeros(1, *shape),), str(fp32), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    calib = np.random.default_rng(0).integers(0, 256, size=(8, shape[1], shape[2], shape[0]), dtype=np.uint8)
    quantize(fp32, int8, calib, "per_channel")
    return int8


def from_spec(spec: ArchSpec, out: Path) -> Path:
    net = model_mod.fold_batchnorm(model_mod.build(spec).eval())
    return export(net, (spec.input.channels, spec.input.resolution, spec.input.resolution), out)


def models(work: Path):
    default = ROOT / "build" / "fashion" / "quantize" / "model_int8.onnx"
    if default.is_file():
        yield "default pipeline (build/fashion)", lambda d: default
    yield "digits (pipelines/digits.yaml)", lambda d: from_spec(digits(), d)
    for resolution in (96, 128, 160):
        yield f"MobileNetV2-0.35 @{resolution}", lambda d, r=resolution: from_spec(mobilenet_v2(r), d)
    yield "MCUNet-like @96 (residual)", lambda d: from_spec(mcunet_like(), d)
    yield "multi-branch concat @64", lambda d: export(MultiBranch(), (3, 64, 64), d)
    yield "multi-branch concat @64, reductions first", lambda d: export(MultiBranch(True), (3, 64, 64), d)
    yield "two-branch MBConv concat @64", lambda d: export(TwoBranch(), (3, 64, 64), d)


def measure(int8: Path) -> dict:
    graph = frontends.load(int8)
    onnx_graph = dataclasses.replace(graph, ops=list(graph.ops))
    greedy = planner.plan(onnx_graph, "greedy_by_size", inplace_depthwise=False, reorder=False)
    started = time.perf_counter()
    best = planner.plan(graph, "best")
    seconds = time.perf_counter() - started
    noinplace = planner.plan(dataclasses.replace(graph, ops=list(onnx_graph.ops)), "best", inplace_depthwise=False)
    fused_graph = dataclasses.replace(graph, ops=list(onnx_graph.ops))
    blocks = len(fuse.candidates(fused_graph))
    specs = fuse.choose(fused_graph, ScheduleConfig(planner="best", fuse_mbconv=True))
    fused = planner.plan(fused_graph, "best")
    macs = sum(op.macs(graph.tensors) for op in onnx_graph.ops)
    fused_macs = sum(op.macs(graph.tensors) for op in fused_graph.ops)
    patched = {}
    for label, fuse_too in (("patch", False), ("patch+fused", True)):
        trial = dataclasses.replace(graph, ops=list(onnx_graph.ops))
        chosen = rewrite.choose(trial, ScheduleConfig(planner="best", patch="auto", fuse_mbconv=fuse_too,
                                                      patch_max_macs_overhead=PATCH_MACS_LIMIT))
        stage = next((c for c in chosen if c["kind"] == "patch"), None)
        patched[label] = {"arena": planner.plan(trial, "best").peak_bytes(),
                          "macs": sum(op.macs(graph.tensors) for op in trial.ops) / macs if macs else 1.0,
                          "what": f"{len(stage['layers'])} layers, {stage['grid'][0]}x{stage['grid'][1]}" if stage
                          else "none"}
    return {"patched": patched, "fused": fused.peak_bytes(),
            "fused_blocks": f"{sum(len(s['blocks']) for s in specs)}/{blocks}",
            "fused_macs": fused_macs / macs if macs else 1.0,
            "ops": len(graph.ops), "greedy": greedy.peak_bytes(), "greedy_lb": greedy.lower_bound(),
            "best_noinplace": noinplace.peak_bytes(), "best": best.peak_bytes(), "lb": best.lower_bound(),
            "inplace": len(best.inplace), "reordered": best.order != [op.name for op in onnx_graph.ops],
            "seconds": seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep the exported models here")
    args = parser.parse_args()
    work = args.out or Path(tempfile.mkdtemp(prefix="mf_planner_bench_"))
    rows, ok = [], True
    for index, (name, make) in enumerate(models(work)):
        folder = work / f"m{index}"
        folder.mkdir(parents=True, exist_ok=True)
        r = measure(make(folder))
        good = r["best"] <= r["greedy"] and r["best"] <= 1.05 * r["lb"]
        ok &= good
        rows.append((name, r, good))
        print(f"{name}: done", file=sys.stderr)
    print("| model | ops | greedy_by_size B | LB (ONNX order, no in-place) B | best, no in-place B | best B | "
          "lower bound B | best / LB | best / greedy | in-place ops | reordered | plan s | goal | "
          "fused bottlenecks B | fused / best | blocks fused | MACs fused / layer by layer |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r, good in rows:
        print(f"| {name} | {r['ops']} | {r['greedy']:,} | {r['greedy_lb']:,} | {r['best_noinplace']:,} | "
              f"{r['best']:,} | {r['lb']:,} | {r['best'] / r['lb']:.3f} | {r['best'] / r['greedy']:.3f} | "
              f"{r['inplace']} | {'yes' if r['reordered'] else 'no'} | {r['seconds']:.2f} | "
              f"{'ok' if good else 'MISSED'} | {r['fused']:,} | {r['fused'] / r['best']:.3f} | {r['fused_blocks']} | "
              f"{r['fused_macs']:.3f} |")
    print()
    print(f"Patch-based inference (schedule.patch: auto, MACs overhead <= {PATCH_MACS_LIMIT:.0%}); reduction = best "
          "(layer by layer) / arena; goal on MobileNetV2: >= 4x for <= +15% MACs")
    print()
    print("| model | best B | patch: stage | patch B | patch reduction | patch MACs | patch + fused: stage | "
          "patch + fused B | patch + fused reduction | patch + fused MACs | goal |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, r, _ in rows:
        p, pf = r["patched"]["patch"], r["patched"]["patch+fused"]
        goal = "-"
        if name.startswith("MobileNetV2"):
            met = r["best"] / pf["arena"] >= 4 and pf["macs"] <= 1.15
            ok &= met
            goal = "ok" if met else "MISSED"
        print(f"| {name} | {r['best']:,} | {p['what']} | {p['arena']:,} | {r['best'] / p['arena']:.2f}x | "
              f"+{100 * (p['macs'] - 1):.1f}% | {pf['what']} | {pf['arena']:,} | {r['best'] / pf['arena']:.2f}x | "
              f"+{100 * (pf['macs'] - 1):.1f}% | {goal} |")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
