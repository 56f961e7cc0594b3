"""Training and tests with and without one competing CPU-bound process, under the thread settings that matter.

    nice -n 10 .venv/bin/python benchmarks/loaded_bench.py --build build/digits [--out benchmarks/results/loaded_bench.json]

`--build` is a finished digits build (its data/ and search/arch.json are trained on). Each variant trains the
digits model for `--epochs` epochs in a fresh process (thread and wait-policy settings act when torch starts),
first alone ("idle": the machine may be shared, its load average is recorded), then beside one busy-looping process
at the same niceness ("loaded"); it records wall time, threads, ATen's CPU capability and the sha256 of the trained
weights (to show which settings change the weights). `--tests` also times a slice of the test suite under xdist
(-n 2) idle and loaded.

    .venv/bin/python benchmarks/loaded_bench.py --demo [--pipeline fashion] [--out benchmarks/results/demo_loaded.json]

`--demo` times what `make demo` runs (`doit run pipeline=fashion`, from scratch, in a fresh build directory) alone
and then beside one competing CPU-bound process at the same niceness (issue 18's target: loaded <= 2.2x idle); it
records each task's wall time (from doit's ". task" lines), the load average before each run and the manifest's
artifact hashes (to show the loaded run built the same bytes).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "loaded_bench.json"

TRAIN = r"""
import hashlib, json, sys, time
sys.path.insert(0, {root!r})
from pathlib import Path
from mcuforge.core.io import read_json
from mcuforge.core.paths import Paths
from mcuforge.ml.data import read_for_arch
from mcuforge.ml import threads
threads.configure_environment()
threads.configure_training({threads_cfg})
import torch
from mcuforge.ml.train import train
from schemas.arch import ArchSpec
paths = Paths(Path({build!r}))
cfg = read_json(paths.config)
spec = ArchSpec.model_validate(read_json(paths.arch))
data = read_for_arch(paths)
train_cfg = dict(cfg["train"], epochs={epochs}, threads={threads_cfg})
started = time.monotonic()
net, metrics = train(spec, data, train_cfg, cfg["seed"], progress=False)
seconds = time.monotonic() - started
digest = hashlib.sha256(b"".join(t.detach().numpy().tobytes() for t in net.state_dict().values())).hexdigest()
print(json.dumps({{"seconds": round(seconds, 2), "threads": torch.get_num_threads(),
                  "capability": torch.backends.cpu.get_cpu_capability(), "weights_sha256": digest[:16]}}))
"""

VARIANTS = {  # name -> (environment, train.threads)
    "before: torch default (active OpenMP wait, native kernels)": ({"OMP_WAIT_POLICY": "ACTIVE",
                                                                   "MCUFORGE_KERNELS": "native"}, 0),
    "passive wait, native kernels": ({"MCUFORGE_KERNELS": "native"}, 0),
    "mcuforge default (passive wait, AVX2 kernels)": ({}, 0),
    "1 thread, AVX2 kernels": ({}, 1),
}
TEST_SLICE = ["tests/test_planner.py", "tests/test_schedule.py", "tests/test_codegen.py"]


def busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=lambda: os.nice(10))


def train_once(build: Path, epochs: int, env: dict, threads_cfg: int) -> dict:
    script = TRAIN.format(root=str(ROOT), build=str(build), epochs=epochs, threads_cfg=threads_cfg)
    ours = ("OMP_WAIT_POLICY", "OMP_NUM_THREADS", "MCUFORGE_KERNELS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA",
            "MKL_CBWR")
    environment = {k: v for k, v in os.environ.items() if k not in ours}
    environment.update(env)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=environment, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def time_tests() -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "-p", "no:cacheprovider", *TEST_SLICE],
                   cwd=ROOT, capture_output=True, check=True)
    return round(time.monotonic() - started, 1)


def busy_same_niceness() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def demo_once(pipeline: str, build: Path) -> dict:
    """`doit run pipeline=<pipeline> build=<build>` from scratch: wall time, per-task wall times, manifest hashes."""
    import shutil
    import threading

    shutil.rmtree(build, ignore_errors=True)
    loadavg = os.getloadavg()[0]
    started = time.monotonic()
    process = subprocess.Popen([str(ROOT / ".venv" / "bin" / "doit"), "run", f"pipeline={pipeline}", f"build={build}"],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    marks: list[tuple[float, str]] = []

    def read() -> None:
        for line in process.stdout:
            if line.startswith(". "):
                marks.append((time.monotonic() - started, line[2:].split(":")[0].strip()))
    reader = threading.Thread(target=read)
    reader.start()
    code = process.wait()
    reader.join()
    seconds = time.monotonic() - started
    if code != 0:
        raise SystemExit(f"doit run pipeline={pipeline} failed with exit code {code}")
    tasks: dict[str, float] = {}
    for (at, name), (until, _) in zip(marks, marks[1:] + [(seconds, "")]):
        tasks[name] = round(tasks.get(name, 0.0) + until - at, 1)
    manifest = json.loads((build / "manifest.json").read_text())
    hashes = {path: entry["sha256"] for path, entry in sorted(manifest["artifacts"].items())}
    return {"seconds": round(seconds, 1), "loadavg_before": round(loadavg, 2), "tasks": tasks, "sha256": hashes}


def demo(pipeline: str, out: Path) -> int:
    scratch = ROOT / "build" / "loaded_bench"
    idle = demo_once(pipeline, scratch / "idle")
    print(json.dumps({"idle": idle}), flush=True)
    competitor = busy_same_niceness()
    try:
        loaded = demo_once(pipeline, scratch / "loaded")
    finally:
        competitor.kill()
        competitor.wait()
    print(json.dumps({"loaded": loaded}), flush=True)
    result = {"pipeline": pipeline, "cpus": os.cpu_count(), "idle": idle, "loaded": loaded,
              "slowdown": round(loaded["seconds"] / idle["seconds"], 2),
              "task_slowdown": {name: round(loaded["tasks"][name] / max(idle["tasks"][name], 0.1), 2)
                                for name in idle["tasks"] if name in loaded["tasks"]},
              "artifacts": len(idle["sha256"]),
              "artifacts_differing": sorted(p for p in idle["sha256"] if loaded["sha256"].get(p) != idle["sha256"][p]),
              "competitor": "one Python busy loop (`while True: pass`) at the same niceness as doit"}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"idle {idle['seconds']} s, loaded {loaded['seconds']} s: {result['slowdown']}x", flush=True)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--build", type=Path)
    parser.add_argument("--demo", action="store_true")
    parser.add_argument("--pipeline", default="fashion")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--tests", action="store_true")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    if args.demo:
        return demo(args.pipeline, args.out if args.out != DEFAULT_OUT else ROOT / "benchmarks" / "results" /
                    "demo_loaded.json")
    if args.build is None:
        parser.error("--build is required without --demo")
    rows = []
    for name, (env, threads_cfg) in VARIANTS.items():
        row = {"variant": name, "env": env, "train.threads": threads_cfg, "loadavg_before": os.getloadavg()[0]}
        row["idle"] = train_once(args.build.resolve(), args.epochs, env, threads_cfg)
        competitor = busy()
        try:
            row["loaded"] = train_once(args.build.resolve(), args.epochs, env, threads_cfg)
        finally:
            competitor.kill()
            competitor.wait()
        row["slowdown"] = round(row["loaded"]["seconds"] / row["idle"]["seconds"], 2)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"cpus": os.cpu_count(), "epochs": args.epochs, "training": rows,
              "note": "a shared machine: 'idle' means no competitor of ours, not an idle machine"}
    if args.tests:
        idle = time_tests()
        competitor = busy()
        try:
            loaded = time_tests()
        finally:
            competitor.kill()
            competitor.wait()
        result["tests"] = {"slice": TEST_SLICE, "idle_s": idle, "loaded_s": loaded, "slowdown": round(loaded / idle, 2)}
        print(json.dumps(result["tests"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
