"""Benchmark (issue 6): the TinyNAS-searched model of a pipeline vs a hand-scaled MobileNetV2 under the same budgets,
both trained with the pipeline's recipe and epochs, quantized the same way; int8 test accuracy per seed.

    .venv/bin/python benchmarks/search_vs_mobilenetv2.py --pipeline fashion --seeds 0 1 2

The baseline is MobileNetV2's block table (expansion 6, kernels 3) with the stride-2 stages that a small input
cannot afford turned into stride 1, at the largest width multiplier and resolution (from the pipeline's search space)
that fit the pipeline's SRAM, flash and MAC budgets by the same cost model. Prints a Markdown table and writes
benchmarks/out/search_vs_mobilenetv2.json.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from schemas.arch import ArchSpec  # noqa: E402
from mcuforge.ml import archgraph  # noqa: E402
from tasks import config
from mcuforge.ml import data
from mcuforge.ml import quantize
from mcuforge.ml import search
from mcuforge.ml import train
from mcuforge.core.io import write_json  # noqa: E402

# MobileNetV2 (t, c, n, s) after the 32-channel stem; the 1280-channel head is dropped (it alone breaks 256 KB).
MOBILENETV2 = [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]


def mobilenetv2(resolution: int, width: float, channels: int, classes: int) -> ArchSpec:
    """MobileNetV2 scaled to `resolution`: keep stride-2 stages while the feature map stays >= 4 pixels."""
    size, stages = resolution // 2, []
    for t, c, n, s in MOBILENETV2:
        stride = s if s == 2 and size // 2 >= 4 and size % 2 == 0 else 1
        size //= stride
        stages.append({"channels": c, "depth": n, "stride": stride, "expansion": t, "kernel": 3})
    return ArchSpec.model_validate({"input": {"resolution": resolution, "channels": channels}, "num_classes": classes,
                                    "width_multiplier": width, "stem": {"channels": 32, "kernel": 3, "stride": 2},
                                    "stages": stages, "head": {"channels": 0, "dropout": 0.1}})


def fitting_baseline(cfg: dict) -> ArchSpec:
    limits = search.budgets(cfg)
    space = cfg["search"]["space"]
    best = None
    for resolution in space["resolutions"]:
        for width in [w / 20 for w in range(1, 41)]:
            spec = mobilenetv2(resolution, width, cfg["dataset"]["channels"], space["num_classes"])
            cost = archgraph.cost(spec)
            if archgraph.fits(cost, limits["sram_bytes"], limits["flash_bytes"], limits["macs"]):
                if best is None or cost.macs > best[1]:
                    best = (spec, cost.macs)
    if best is None:
        raise SystemExit("no MobileNetV2 scaling fits the budgets")
    return best[0]


def train_and_quantize(spec: ArchSpec, cfg: dict, seed: int, data_dir: Path, work: Path) -> dict:
    paths = config.Paths(work)
    write_json(paths.arch, spec.model_dump(mode="json"))
    dataset = data.read_cache(data_dir, spec.input.resolution)
    started = time.perf_counter()
    net, metrics = train.train(spec, dataset, cfg["train"], seed)
    train_seconds = time.perf_counter() - started
    train.export_onnx(net, spec, paths.fp32)
    calib = quantize.calibration_samples(dataset, cfg["quantize"]["calibration_samples"], seed)
    quantize.quantize(paths.fp32, paths.int8, calib, cfg["quantize"]["granularity"], cfg["quantize"]["format"])
    cost = archgraph.cost(spec)
    return {"int8_accuracy": quantize.ort_accuracy(paths.int8, dataset.x_test, dataset.y_test),
            "fp32_accuracy": metrics["fp32_test_accuracy_torch"], "macs": cost.macs,
            "peak_sram_bytes": cost.peak_sram_bytes, "flash_bytes": cost.flash_bytes,
            "train_seconds": round(train_seconds, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="fashion")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="pipeline overrides for both models, e.g. train.threads=1 on a shared machine")
    args = parser.parse_args()
    overrides = dict(item.split("=", 1) for item in args.set)
    rows = []
    out = ROOT / "benchmarks" / "out" / "search_vs_mobilenetv2.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    for seed in args.seeds:
        cfg = config.resolve(args.pipeline, {**overrides, "seed": str(seed)})
        with tempfile.TemporaryDirectory(prefix="mf-bench-") as tmp:
            work = Path(tmp)
            paths = config.Paths(work)
            data.run(cfg, paths)
            started = time.perf_counter()
            search.run_search(cfg, paths)
            search_seconds = time.perf_counter() - started
            searched = ArchSpec.model_validate(json.loads(paths.arch.read_text()))
            chosen = json.loads((paths.arch.parent / "summary.json").read_text())["best"]
            result = {"seed": seed, "search_seconds": round(search_seconds, 1), "searched_candidate": chosen,
                      "searched": train_and_quantize(searched, cfg, seed, paths.data, work / "searched"),
                      "baseline": train_and_quantize(fitting_baseline(cfg), cfg, seed, paths.data, work / "baseline")}
            rows.append(result)
        print(f"seed {seed} done: {json.dumps(result, sort_keys=True)}", file=sys.stderr, flush=True)
        out.write_text(json.dumps(rows, indent=2, sort_keys=True) + "\n")  # after each seed: a cut run keeps its rows
    print("| seed | searched int8 | MobileNetV2 int8 | difference | search s | searched MACs | MNv2 MACs | "
          "searched SRAM | MNv2 SRAM | searched flash | MNv2 flash |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        s, b = r["searched"], r["baseline"]
        gain = 100 * (s["int8_accuracy"] - b["int8_accuracy"])
        print(f"| {r['seed']} | {s['int8_accuracy']:.4f} | {b['int8_accuracy']:.4f} | {gain:+.2f} | "
              f"{r['search_seconds']} | {s['macs']:,} | {b['macs']:,} | {s['peak_sram_bytes']:,} | "
              f"{b['peak_sram_bytes']:,} | {s['flash_bytes']:,} | {b['flash_bytes']:,} |")
    gains = [100 * (r["searched"]["int8_accuracy"] - r["baseline"]["int8_accuracy"]) for r in rows]
    print(f"mean difference {sum(gains) / len(gains):+.2f} points over {len(rows)} seed(s)")


if __name__ == "__main__":
    main()
