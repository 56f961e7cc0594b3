"""Audio front end benchmark (issue 16): exact executed-instruction counts of mf_frontend_run per 1 s clip under
QEMU (the icount plugin of engine_c/tools/, as benchmarks/kernel_bench.py), its scratch RAM and its flash (tables
from the generated arrays, code from arm-none-eabi-size of mf_frontend.c's object), on Cortex-M4F (stm32l4r5,
mps2-an386) and Cortex-M3 (lpc1768, mps2-an385).

The configurations of issue 16/17: the default log-mel 32x32, an MLPerf-KWS-like MFCC 49x10 (30 ms window, 20 ms
hop, 40 mel bins, 10 coefficients) and the anomaly log-mel with 128 bins (64 ms window, 32 ms hop, FFT 1024). All
of them are generated into one stand-in model (codegen.frontend.standalone_model) built with MF_LAYER_DUMP, so that
the plugin's per-layer counts give one figure per front end; the outputs are checked against the Python reference
(a difference fails the run). The count depends slightly on the signal (the block normalisation shifts or not):
the clip is white noise at -20 dBFS.

With --kws, the MFCC 49x10 front end is also chained (codegen.frontend.chain) to the MLPerf Tiny KWS DS-CNN (read
in place from ../shared/models/mlperf-tiny) and the whole PCM -> scores inference is counted next to the network
alone on the Python reference's features: the front end's share of a real keyword spotter.

    .venv/bin/python benchmarks/frontend_bench.py [--cores m4 m3] [--kws] [--out benchmarks/results/frontend_bench.json]

A Markdown table on stdout, progress on stderr, the figures as JSON (--out).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from mcuforge import toolchain  # noqa: E402
from mcuforge.audio import features  # noqa: E402
from mcuforge.codegen import frontend as codegen_frontend  # noqa: E402
from mcuforge.core.io import write_json, write_text  # noqa: E402
from schemas.frontend import FrontendConfig  # noqa: E402
from schemas.loader import load_board  # noqa: E402

CORES = {"m4": "stm32l4r5", "m3": "lpc1768"}
CONFIGS = {
    "log_mel 32x32 (default)": (FrontendConfig(), 0.05, 127),
    "mfcc 49x10 (KWS)": (FrontendConfig(kind="mfcc", window_ms=30, hop_ms=20, fft_size=512, mel_bins=40,
                                        num_coeffs=10), 0.4, 0),
    "log_mel 30x128 (anomaly)": (FrontendConfig(window_ms=64, hop_ms=32, fft_size=1024, mel_bins=128), 0.05, 127),
}
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "frontend_bench.json"


def clip() -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.clip(rng.normal(0, 3277, 16000), -32768, 32767).astype(np.int16)[None, :]


def code_bytes(build_dir: Path) -> int:
    objects = sorted(build_dir.rglob("mf_frontend.c.obj")) + sorted(build_dir.rglob("mf_frontend.c.o"))
    if not objects:
        raise SystemExit(f"no mf_frontend.c object under {build_dir}")
    return toolchain.elf_size(objects[0])["text"]


def run_core(core: str, fronts, work: Path, pcm: np.ndarray, expected: np.ndarray) -> dict:
    board = load_board(CORES[core]).model_dump(mode="json")
    build_dir = work / f"build_{core}"
    elf = toolchain.cmake_build(work / "model", build_dir, board, layer_dump=True)
    layer_dir = build_dir / "layers"
    layer_dir.mkdir(exist_ok=True)
    outputs = build_dir / "outputs.bin"
    result = toolchain.run_qemu(elf, board["qemu"]["machine"], work / "inputs.bin", outputs, layer_dir,
                                count_instructions=True)
    got = np.fromfile(outputs, dtype=np.int8)
    if not np.array_equal(got, expected.reshape(-1)):
        raise SystemExit(f"{core}: the front end's output differs from the Python reference in "
                         f"{int(np.count_nonzero(got != expected.reshape(-1)))} bytes")
    return {"instructions": [int(n) for n in result.layer_instructions[0]], "code_bytes": code_bytes(build_dir)}


def python_throughput(clips: int = 1000) -> float:
    """Clips per second of the Python reference (the data stage's cost), default log-mel config."""
    import time

    frontend, scale, zero_point = CONFIGS["log_mel 32x32 (default)"]
    pcm = np.random.default_rng(1).integers(-3000, 3000, (clips, frontend.clip_samples)).astype(np.int16)
    start = time.perf_counter()
    features.extract(pcm, frontend, scale, zero_point)
    return clips / (time.perf_counter() - start)


def kws_share(core: str, work: Path) -> dict:
    """Instructions of the MLPerf KWS network alone and chained behind the MFCC 49x10 front end (one clip)."""
    from mcuforge import frontends
    from mcuforge.codegen import generate as codegen
    from mcuforge.schedule import planner

    frontend, _, _ = CONFIGS["mfcc 49x10 (KWS)"]
    graph = frontends.load(ROOT.parent / "shared" / "models" / "mlperf-tiny" / "kws_ref_model.tflite")
    plan = planner.plan(graph)
    chained, figures = codegen_frontend.chain(frontend, graph, plan)
    codegen.write({**codegen.generate(graph, plan, "kws"), **chained}, work / "kws" / "codegen")
    pcm = clip()
    pcm.tofile(work / "kws" / "pcm.bin")
    source = graph.tensors[graph.input]
    features.extract(pcm, frontend, float(source.scale), int(source.zp)).tofile(work / "kws" / "features.bin")
    board = load_board(CORES[core]).model_dump(mode="json")
    counts = {}
    for variant, defines, inputs in (("network", (), "features.bin"), ("pcm", ("MF_MODEL_PCM",), "pcm.bin")):
        elf = toolchain.cmake_build(work / "kws" / "codegen", work / "kws" / f"build_{core}_{variant}", board, "fixed",
                                    defines=defines)
        result = toolchain.run_qemu(elf, board["qemu"]["machine"], work / "kws" / inputs,
                                    work / "kws" / f"out_{core}_{variant}.bin", count_instructions=True)
        counts[variant] = int(result.instructions_per_inference)
    network_out = (work / "kws" / f"out_{core}_network.bin").read_bytes()
    if network_out != (work / "kws" / f"out_{core}_pcm.bin").read_bytes():
        raise SystemExit(f"{core}: the chained KWS scores differ from the network fed the reference features")
    return {"network_instructions": counts["network"], "pcm_to_scores_instructions": counts["pcm"],
            "front_end_share": round((counts["pcm"] - counts["network"]) / counts["pcm"], 4),
            "scratch_in_arena": figures["scratch_in_arena"], "arena_bytes": plan.peak_bytes()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cores", nargs="+", default=list(CORES), choices=list(CORES))
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--work", type=Path, default=None)
    parser.add_argument("--kws", action="store_true", help="also chain MFCC 49x10 to the MLPerf KWS DS-CNN")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="frontend_bench_"))
    fronts = [(codegen_frontend.tables_for(*spec), f"fe{i}") for i, spec in enumerate(CONFIGS.values())]
    for name, text in codegen_frontend.standalone_model(fronts).items():
        write_text(work / "model" / name, text)
    pcm = clip()
    pcm.tofile(work / "inputs.bin")
    expected = np.concatenate([features.extract(pcm, *spec).reshape(-1) for spec in CONFIGS.values()])
    measured = {}
    for core in args.cores:
        print(f"[frontend_bench] {core}: build and run under QEMU", file=sys.stderr)
        measured[core] = run_core(core, fronts, work, pcm, expected)
    rows = []
    for index, ((name, (cfg, _, _)), (tables, _)) in enumerate(zip(CONFIGS.items(), fronts)):
        row = {"config": name, "frames": tables.num_frames, "features": tables.num_features,
               "fft_size": tables.fft_size, "scratch_bytes": tables.scratch_bytes(),
               "table_bytes": tables.flash_bytes()}
        for core, figures in measured.items():
            row[f"{core}_instructions"] = figures["instructions"][index]
            row[f"{core}_per_frame"] = round(figures["instructions"][index] / tables.num_frames)
            row[f"{core}_code_bytes"] = figures["code_bytes"]
        rows.append(row)
    cores = list(measured)
    header = ["config", "frames x features", "FFT", *[f"{c.upper()} instr/clip" for c in cores],
              *[f"{c.upper()} instr/frame" for c in cores], "scratch B", "tables B",
              *[f"{c.upper()} code B" for c in cores]]
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        cells = [row["config"], f"{row['frames']} x {row['features']}", str(row["fft_size"]),
                 *[f"{row[f'{c}_instructions']:,}" for c in cores], *[f"{row[f'{c}_per_frame']:,}" for c in cores],
                 f"{row['scratch_bytes']:,}", f"{row['table_bytes']:,}", *[str(row[f"{c}_code_bytes"]) for c in cores]]
        print("| " + " | ".join(cells) + " |")
    result = {"rows": rows, "signal": "white noise, -20 dBFS, 1 s at 16 kHz, seed 0",
              "python_clips_per_second": python_throughput()}
    print(f"\nPython reference (numpy, one process): {result['python_clips_per_second']:,.0f} clips/s "
          "(log_mel 32x32, 1,000 clips of 1 s)")
    if args.kws:
        result["kws"] = {}
        for core in args.cores:
            print(f"[frontend_bench] {core}: MLPerf KWS alone and chained", file=sys.stderr)
            share = result["kws"][core] = kws_share(core, work)
            print(f"\nMLPerf KWS DS-CNN on {core.upper()}: network {share['network_instructions']:,} instructions, "
                  f"PCM -> scores {share['pcm_to_scores_instructions']:,}; front end share "
                  f"{100 * share['front_end_share']:.1f} % (scratch in the arena: {share['scratch_in_arena']})")
    write_json(args.out, result)
    print(f"[frontend_bench] wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
