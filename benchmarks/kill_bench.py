"""kill -9 at every stage of `doit run pipeline=digits`, then rerun: does the rerun finish, redo only what was lost,
leave no temporary file or process behind, and give the same artifact hashes as an uninterrupted build?

    nice -n 10 .venv/bin/python benchmarks/kill_bench.py [--out benchmarks/results/kill_bench.json] [--points a,b]

Each kill point starts a fresh build in its own process group, waits until the stage is under way (watching which
files of the build exist), sends SIGKILL to the whole group, checks that no process of the group survives, counts
the temporary files left, reruns to completion, runs `doit check_manifest`, and compares manifest.json's artifact
hashes with those of an uninterrupted build made first. The machine's load is recorded (the timings depend on it).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOIT = [sys.executable, "-m", "doit", "-f", str(ROOT / "dodo.py")]
BOARD = "stm32f746"


def _exists(*parts):
    return lambda build: all((build / part).exists() for part in parts)


# name -> (condition on the build directory, extra delay after it holds, what is running then)
POINTS = {
    "data": (_exists("data"), 0.0, "data (its folder just created)"),
    "search": (_exists("search"), 0.0, "search (writing arch.json)"),
    "train": (_exists("search/arch.json"), 4.0, "train (4 s into training)"),
    "quantize": (_exists("train/metrics.json"), 0.5, "quantize"),
    "schedule": (_exists("schedule"), 0.0, "schedule (plan and memory.png)"),
    "codegen": (_exists("codegen"), 0.0, "codegen"),
    "build": (_exists(f"build_{BOARD}"), 1.5, "the CMake builds (1.5 s in)"),
    "verify": (_exists("size.json", "build_host/mf_runner"), 1.0, "verify (host runner and QEMU)"),
    "review": (_exists("manifest.json"), 0.0, "manifest / review (plots)"),
}


def group_members(pgid: int) -> list[int]:
    """Processes still in process group `pgid` (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def temporaries(build: Path) -> list[str]:
    return sorted(str(p.relative_to(build)) for p in build.rglob(".*.tmp"))


def executed(output: str) -> list[str]:
    return re.findall(r"^\.  (\S+)", output, flags=re.M)


def run(build: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*DOIT, *args, "pipeline=digits", f"build={build}"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1800)


def kill_at(build: Path, point: str, timeout: float = 900.0) -> dict:
    condition, delay, running = POINTS[point]
    started = time.monotonic()
    process = subprocess.Popen([*DOIT, "run", "pipeline=digits", f"build={build}"], cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    while not condition(build):
        if process.poll() is not None or time.monotonic() - started > timeout:
            return {"point": point, "killed": False, "note": "the run ended before the kill point"}
        time.sleep(0.02)
    time.sleep(delay)
    finished_first = process.poll() is not None
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    time.sleep(0.5)
    survivors = group_members(process.pid)
    return {"point": point, "running": running, "killed": not finished_first,
            "killed_after_s": round(time.monotonic() - started, 2), "survivors": survivors,
            "temporaries_left": temporaries(build)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "kill_bench.json")
    parser.add_argument("--points", default=",".join(POINTS))
    parser.add_argument("--work", type=Path, default=None, help="where the builds go (default: a temporary folder)")
    parser.add_argument("--reference", type=Path, default=None, help="an uninterrupted build to compare with "
                        "(default: built first, in <work>/reference)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="kill_bench_"))
    reference = args.reference or work / "reference"
    started = time.monotonic()
    if args.reference is None:
        first = run(reference, "run")
        if first.returncode != 0:
            print(first.stderr[-3000:], file=sys.stderr)
            return 1
    reference_s = time.monotonic() - started
    expected = json.loads((reference / "manifest.json").read_text())["artifacts"]
    rows = []
    for point in args.points.split(","):
        build = work / point
        row = kill_at(build, point)
        started = time.monotonic()
        rerun = run(build, "run")
        row["rerun_exit"] = rerun.returncode
        row["rerun_s"] = round(time.monotonic() - started, 1)
        row["rerun_tasks"] = executed(rerun.stdout)
        row["training_redone"] = "train" in row["rerun_tasks"]
        row["notes"] = [line for line in rerun.stderr.splitlines() if line.startswith("mcuforge: note")]
        check = run(build, "check_manifest")
        row["check_manifest_exit"] = check.returncode
        manifest = build / "manifest.json"
        got = json.loads(manifest.read_text())["artifacts"] if manifest.is_file() else {}
        row["hashes_equal"] = got == expected
        row["differing"] = sorted(k for k in set(got) | set(expected) if got.get(k) != expected.get(k))
        row["temporaries_after_rerun"] = temporaries(build)
        rows.append(row)
        print(json.dumps(row), flush=True)
    result = {"pipeline": "digits", "reference_build_s": round(reference_s, 1), "loadavg": os.getloadavg(),
              "cpus": os.cpu_count(), "points": rows,
              "all_passed": all(r.get("killed") and not r["survivors"] and r["rerun_exit"] == 0
                                and r["check_manifest_exit"] == 0 and r["hashes_equal"]
                                and not r["temporaries_after_rerun"] for r in rows)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"all passed: {result['all_passed']} ({len(rows)} kill points); written {args.out}")
    return 0 if result["all_passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
