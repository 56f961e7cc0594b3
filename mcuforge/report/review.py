"""Stage `review`: judge a pipeline's build -> review/report.md and review/report.html (one file, images embedded).

Reads whatever stages have run under build/<name>/ and shows the others as "not run", naming the task to run.
Sections: budgets (pass/fail: peak SRAM, flash, MACs, latency; the lecture's FLOPs budget), per-layer table,
memory timeline, model-size breakdown, accuracy (fp32 / int8 / host / QEMU), verification, search, energy and data
movement (tasks/energy.py). Everything is computed from the artifacts: no timestamps, so the report is reproducible.
"""
from __future__ import annotations

import base64
import hashlib
import re
import shutil
import subprocess
from pathlib import Path

from mcuforge.core.figures import pyplot, save_png
from mcuforge.report import energy as energy_mod
from mcuforge.core.io import flatten, read_json, write_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
MACS_PER_CYCLE = 1  # the lecture's budget: 1 MAC (FLOP) per cycle


class ReviewPaths:
    """Files of the review, under build/<name>/review/."""

    def __init__(self, paths):
        self.dir = paths.root / "review"
        self.md = self.dir / "report.md"
        self.html = self.dir / "report.html"
        self.memory_png = self.dir / "memory.png"
        self.size_png = self.dir / "size.png"
        self.layers_png = self.dir / "layers.png"


def stage_files(cfg: dict, paths) -> dict[str, list[Path]]:
    """The task that writes each input of the review (task name -> files)."""
    board = cfg["board"]["name"]
    return {
        "config": [paths.config],
        "data": [paths.card],
        "search": [paths.arch],
        "train": [paths.train_metrics],
        "quantize": [paths.quant_metrics, paths.int8],
        "schedule": [paths.plan, paths.memory_png],
        "codegen": paths.codegen_files,
        "build_host": [paths.executable("host")],
        f"build_{board}": [paths.size_json, paths.executable(board)],
        "verify": [paths.verify_report],
        "manifest": [paths.manifest],
    }


def input_files(cfg: dict, paths) -> list[Path]:
    files = [f for group in stage_files(cfg, paths).values() for f in group]
    search_dir = paths.arch.parent
    files += [search_dir / name for name in ("log.jsonl", "summary.json", "pareto.png", "cdf.png")]
    return files


def fingerprint(cfg: dict, paths) -> str:
    """sha256 over the existing inputs' contents, the templates and this code: doit re-runs the review when it changes
    (the review never triggers the stages it reads: a missing stage is reported as not run)."""
    from mcuforge.core.paths import config_hash

    digest = hashlib.sha256(config_hash(cfg).encode())
    sources = [Path(__file__), Path(energy_mod.__file__), *sorted(TEMPLATES.glob("*"))]
    for path in input_files(cfg, paths) + sources:
        digest.update(str(path.name).encode())
        if path.is_file():
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    return digest.hexdigest()


def _read(path: Path):
    return read_json(path) if path.is_file() else None


def _not_run(task: str, pipeline: str) -> str:
    return f"not run — run `doit {task} pipeline={pipeline}`"


def _status(used, budget) -> str:
    if used is None:
        return "not run"
    if budget is None:
        return "not set"
    return "pass" if used <= budget else "FAIL"


def _shape(shape) -> str:
    return "x".join(str(d) for d in shape)


def _short(name: str) -> str:
    """A readable op name: the ONNX node path without the exporter's repetition."""
    parts = [p for p in name.strip("/").split("/") if p]
    keep = [p for i, p in enumerate(parts) if i + 1 == len(parts) or not parts[i + 1].startswith(p)]
    return "/".join(keep)


# ---------------------------------------------------------------- ELF breakdown

SYMBOL_GROUPS = (
    # layer prefixes: l<i> (a layer), l<i>e/d/p (a fused bottleneck's convs), l<i>_<j> (a patch stage's layers)
    ("weights (int8)", re.compile(r"^l\d+(?:[edp]|_\d+)?_weight$")),
    ("biases (int32)", re.compile(r"^l\d+(?:[edp]|_\d+)?_bias$")),
    ("requant params", re.compile(r"^l\d+(?:[edp]|_\d+)?_(scale|mult|shift)$")),
)


def elf_symbols(elf: Path) -> dict[str, tuple[str, int]] | None:
    """name -> (type letter, size) from arm-none-eabi-nm -S; None when the tool or the ELF is missing."""
    tool = shutil.which("arm-none-eabi-nm")
    if tool is None or not elf.is_file():
        return None
    out = subprocess.run([tool, "-S", str(elf)], capture_output=True, text=True, check=False).stdout
    symbols = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            symbols[fields[3]] = (fields[2], int(fields[1], 16))
    return symbols


def size_breakdown(cfg: dict, paths, sizes: dict | None, plan: dict | None, quant: dict | None) -> dict:
    """The lecture's model-size breakdown: flash (weights, biases, requant params, engine code, the rest) and SRAM
    (arena, other static data, stack)."""
    flash: dict[str, int] = {}
    sram: dict[str, int] = {}
    source = "none"
    symbols = elf_symbols(paths.executable(cfg["board"]["name"])) if sizes else None
    if sizes and symbols:
        source = "ELF symbols (arm-none-eabi-nm) and size.json"
        for label, pattern in SYMBOL_GROUPS:
            flash[label] = sum(size for name, (_, size) in symbols.items() if pattern.match(name))
        flash["engine + model code"] = sum(size for name, (kind, size) in symbols.items()
                                           if kind in "Tt" and name.startswith("mf_"))
        flash["runtime, libc, runner"] = sizes["flash"] - sum(flash.values())
        arena = symbols.get("mf_arena", ("b", plan["arena_bytes"] if plan else 0))[1]
        sram["arena (activations, I/O inside)"] = arena
        sram["other static data (runtime, libc, runner)"] = sizes["ram"] - arena
    elif quant:
        source = "quantize/metrics.json (no board build yet)"
        flash["weights (int8)"] = quant.get("int8_weights", 0)
        flash["biases (int32)"] = quant.get("int32_biases", 0)
        if plan:
            sram["arena (activations, I/O inside)"] = plan["arena_bytes"]
    stack = stack_figures(cfg, paths) if sizes else None
    if stack:
        sram[stack["label"]] = stack["bytes"]
    return {"flash": flash, "sram": sram, "source": source, "stack": stack,
            "flash_total": sum(flash.values()), "sram_total": sum(sram.values())}


def stack_figures(cfg: dict, paths) -> dict | None:
    """The stack counted in the SRAM total: max(static bound, measured) when budget.json and a QEMU run's measured
    stack exist (tasks/budget.py), the static bound alone before verify, else the chain estimate below."""
    budget_json = Path(paths.size_json).parent / "budget.json"
    if not budget_json.is_file():
        stack = stack_estimate(cfg, paths)
        if stack:
            stack.update(label="stack (estimate)", static_bytes=stack["bytes"], uncounted=[])
        return stack
    numbers = read_json(budget_json)
    stack = {"bytes": numbers["stack_bytes"], "static_bytes": numbers["stack_bytes"], "chain": numbers["stack_chain"],
             "uncounted": numbers.get("uncounted_library_functions", []), "label": "stack (static bound)"}
    measured = (_read(paths.verify_report) or {}).get("qemu", {})
    if measured.get("stack_measured_bytes") is not None:
        stack["measured_bytes"] = measured["stack_measured_bytes"]
        stack["inference_measured_bytes"] = measured.get("inference_stack_measured_bytes")
        stack["bytes"] = max(stack["static_bytes"], stack["measured_bytes"])
        stack["label"] = ("stack (measured, QEMU)" if stack["measured_bytes"] > stack["static_bytes"]
                          else "stack (measured = static bound)" if stack["measured_bytes"] == stack["static_bytes"]
                          else "stack (static bound > measured)")
    return stack


def stack_estimate(cfg: dict, paths) -> dict | None:
    """Call chain main -> mf_model_invoke -> deepest kernel -> deepest helper, frames from -fstack-usage."""
    from mcuforge.toolchain import stack_usage

    frames = stack_usage(paths.build_dir(cfg["board"]["name"]))
    if not frames:
        return None
    kernels = {k: v for k, v in frames.items() if re.fullmatch(r"mf_\w+_s8", k)}
    helper_names = {"float": ("mf_requantize_float", "mf_round_half_even"),
                    "fixed": ("mf_requantize_fixed", "mf_multiply_by_quantized_multiplier")}[cfg["resolved"]["requant"]]
    helpers = {k: frames[k] for k in helper_names if k in frames}
    deepest = max(kernels, key=kernels.get) if kernels else None
    chain = [name for name in ("main", "mf_model_invoke", deepest, *helpers) if name]
    return {"bytes": sum(frames.get(name, 0) for name in chain), "chain": chain}


# ---------------------------------------------------------------- per-layer table

def layer_table(paths, plan_json: dict, requant: str) -> tuple[list[dict], object, object]:
    from mcuforge import frontends
    from mcuforge.schedule import planner
    from mcuforge.schedule import rewrite

    graph = frontends.load(paths.int8)
    plan = planner.from_json(plan_json)
    rewrite.apply(graph, plan.rewrites)
    live = planner.live_bytes(plan)
    by_name = {op.name: op for op in graph.ops}
    ops = [by_name[name] for name in plan.order if name in by_name]
    rows = []
    for step, op in enumerate(ops):
        # compound ops (tasks/fuse.py) keep each inner op's constants as "<stage>/weight", "<stage>/bias"
        weights = [v for k, v in op.consts.items() if k.rsplit("/", 1)[-1] == "weight"]
        biases = [v for k, v in op.consts.items() if k.rsplit("/", 1)[-1] == "bias"]
        traffic = energy_mod.layer_traffic(op, graph.tensors, requant)
        rows.append({
            "index": step,
            "kind": op.kind,
            "name": _short(op.name),
            "inputs": ", ".join(_shape(graph.tensors[t].shape) for t in op.inputs),
            "output": _shape(graph.tensors[op.output].shape),
            "macs": op.macs(graph.tensors),
            "weight_bytes": sum(int(w.size) for w in weights),
            "bias_bytes": sum(int(b.nbytes) for b in biases),
            "in_bytes": sum(graph.tensors[t].bytes for t in op.inputs),
            "out_bytes": graph.tensors[op.output].bytes,
            "live_bytes": live[step] if step < len(live) else 0,
            "offset": plan.offset(op.output),
            "flash_read": traffic["flash_read"],
        })
    return rows, graph, ops


def layer_instructions(rows: list[dict], ops, verify: dict | None) -> dict | None:
    """Adds each layer's instruction count under QEMU (verify's layer-dump run: mean over the layer samples) and
    instructions per MAC to the per-layer rows; returns verify's summary (sum, tail, whole inference, difference),
    or None when verify counted no layers (no QEMU machine, deploy.emulate off, layer_samples 0, an older report)."""
    layers = (verify or {}).get("layers", [])
    summary = (verify or {}).get("layer_instructions")
    counted = (summary is not None and ops is not None and len(layers) == len(rows)
               and all("instructions" in layer and layer["name"] == op.name for layer, op in zip(layers, ops)))
    for row, layer in zip(rows, layers if counted else [{}] * len(rows)):
        row["instructions"] = layer.get("instructions")
        row["instructions_per_mac"] = row["instructions"] / row["macs"] if counted and row["macs"] else None
    return summary if counted else None


# ---------------------------------------------------------------- plots

def size_plot(breakdown: dict, budgets: dict, path: Path) -> None:
    """Two stacked bars, flash and SRAM, split by component, with the budgets as marks."""
    plt = pyplot()
    colors = ["#4c9be8", "#f0ad4e", "#9b59b6", "#5cb85c", "#95a5a6", "#e67e22"]
    fig, axes = plt.subplots(2, 1, figsize=(9, 3.4), dpi=100)
    for ax, (title, parts, budget) in zip(axes, (("flash", breakdown["flash"], budgets.get("flash")),
                                                  ("SRAM", breakdown["sram"], budgets.get("sram")))):
        left = 0.0
        for index, (label, value) in enumerate(parts.items()):
            ax.barh([0], [value / 1024], left=left, color=colors[index % len(colors)],
                    label=f"{label}: {value:,} B")
            left += value / 1024
        used = sum(parts.values())
        share = f" = {used / budget:.1%} of the {budget:,} B budget" if budget else ""
        if budget and budget <= left * 1024 * 1.3:  # draw the budget only when it is on the same scale
            ax.axvline(budget / 1024, color="black", linewidth=1.2)
        ax.set_xlim(0, max(left, 1e-9) * 1.05 if not budget or budget > left * 1024 * 1.3 else budget / 1024 * 1.1)
        ax.set_yticks([])
        ax.set_title(f"{title}: {used:,} B{share}", fontsize=9, loc="left")
        ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    axes[-1].set_xlabel("KiB")
    fig.tight_layout()
    save_png(fig, path)


def layers_plot(rows: list[dict], path: Path) -> None:
    """MACs per layer (bars) and live activation bytes (line): where the compute and the memory go."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.4), dpi=100)
    x = range(len(rows))
    ax.bar(x, [r["macs"] / 1e3 for r in rows], color="#4c9be8", label="MACs (thousands)")
    ax.set_ylabel("kMACs")
    ax.set_xticks(list(x))
    ax.set_xticklabels([f"{r['index']} {r['kind']}" for r in rows], rotation=90, fontsize=7)
    twin = ax.twinx()
    twin.plot(list(x), [r["live_bytes"] / 1024 for r in rows], color="#d9534f", marker="o", markersize=3,
              label="live activations (KiB)")
    twin.set_ylabel("KiB live")
    handles = ax.get_legend_handles_labels()
    other = twin.get_legend_handles_labels()
    ax.legend(handles[0] + other[0], handles[1] + other[1], fontsize=8, loc="upper right")
    ax.set_title("Compute and memory per layer")
    fig.tight_layout()
    save_png(fig, path)


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


# ---------------------------------------------------------------- the facts

def collect(cfg: dict, paths) -> dict:
    """Everything the report shows, from the artifacts that exist (plain data: numbers, strings, lists)."""
    pipeline = cfg["resolved"]["pipeline_file"]
    board = cfg["board"]
    deploy = cfg["deploy"]
    stages = []
    for task, files in stage_files(cfg, paths).items():
        done = all(f.is_file() for f in files)
        stages.append({"task": task, "done": done, "status": "done" if done else _not_run(task, pipeline)})
    train = _read(paths.train_metrics)
    quant = _read(paths.quant_metrics)
    plan = _read(paths.plan)
    sizes = _read(paths.size_json)
    verify = _read(paths.verify_report)
    requant = cfg["resolved"]["requant"]

    rows, graph, ops = ([], None, None)
    if plan and paths.int8.is_file():
        rows, graph, ops = layer_table(paths, plan, requant)
    macs = sum(r["macs"] for r in rows) if rows else (plan or {}).get("macs") or (train or {}).get("macs")
    instructions = (verify or {}).get("qemu", {}).get("instructions_per_inference")
    counted = layer_instructions(rows, ops, verify)
    breakdown = size_breakdown(cfg, paths, sizes, plan, quant)
    clock_hz = board["clock_mhz"] * 1e6
    latency_ms = deploy.get("latency_ms")
    cycles_budget = clock_hz * latency_ms / 1000 if latency_ms else None
    seconds = None
    seconds_basis = None
    if instructions or macs:
        seconds, seconds_basis = energy_mod.inference_time_s(board["clock_mhz"], instructions, macs or 0)

    sram_used = breakdown["sram_total"] if sizes else None
    budgets = [
        {"name": "peak SRAM (arena + static + stack)", "used": sram_used,
         "budget": cfg["resolved"]["sram_budget_bytes"], "unit": "B",
         "status": _status(sram_used, cfg["resolved"]["sram_budget_bytes"]) if sizes
         else _not_run(f"build_{board['name']}", pipeline)},
        {"name": "activation arena alone", "used": plan["arena_bytes"] if plan else None,
         "budget": cfg["resolved"]["sram_budget_bytes"], "unit": "B",
         "status": _status(plan["arena_bytes"], cfg["resolved"]["sram_budget_bytes"]) if plan
         else _not_run("schedule", pipeline)},
        {"name": "flash (ELF text + data)", "used": sizes["flash"] if sizes else None,
         "budget": cfg["resolved"]["flash_budget_bytes"], "unit": "B",
         "status": _status(sizes["flash"], cfg["resolved"]["flash_budget_bytes"]) if sizes
         else _not_run(f"build_{board['name']}", pipeline)},
        {"name": f"MACs (clock x latency x {MACS_PER_CYCLE} MAC/cycle)", "used": macs,
         "budget": int(cycles_budget * MACS_PER_CYCLE) if cycles_budget else None, "unit": "MACs",
         "status": _status(macs, cycles_budget * MACS_PER_CYCLE if cycles_budget else None) if macs
         else _not_run("schedule", pipeline)},
        {"name": "instructions (clock x latency; cycles ~ instructions)", "used": instructions,
         "budget": int(cycles_budget) if cycles_budget else None, "unit": "instr.",
         "status": _status(instructions, cycles_budget) if instructions else _not_run("verify", pipeline)},
        {"name": "latency (ms)", "used": round(seconds * 1000, 3) if seconds is not None else None,
         "budget": latency_ms, "unit": "ms",
         "status": _status(seconds * 1000, latency_ms) if seconds is not None else _not_run("verify", pipeline)},
    ]
    for entry in budgets:
        entry["used_text"] = _amount(entry["used"], entry["unit"])
        entry["budget_text"] = _amount(entry["budget"], entry["unit"]) if entry["budget"] is not None else "not set"
    flops = {
        "clock_mhz": board["clock_mhz"], "latency_ms": latency_ms,
        "cycles_budget": cycles_budget, "macs_budget": cycles_budget * MACS_PER_CYCLE if cycles_budget else None,
        "lecture_macs_budget": clock_hz * 0.1 * MACS_PER_CYCLE, "macs": macs, "instructions": instructions,
        "instructions_per_mac": instructions / macs if instructions and macs else None,
    }

    accuracy = {
        "fp32": (quant or {}).get("fp32_test_accuracy", (train or {}).get("fp32_test_accuracy_torch")),
        "int8": (quant or {}).get("int8_test_accuracy"),
        "test_samples": (quant or train or {}).get("test_samples"),
        "ort": (verify or {}).get("ort_accuracy"),
        "host": (verify or {}).get("host", {}).get("accuracy"),
        "qemu": (verify or {}).get("qemu", {}).get("accuracy"),
        "verify_samples": (verify or {}).get("samples"),
    }
    verification = None
    if verify:
        targets = [{"target": "host engine vs ONNX Runtime", **verify["host"]["vs_ort"]}]
        if "qemu" in verify:
            targets.append({"target": f"QEMU ({verify['qemu']['machine']}) vs ONNX Runtime", **verify["qemu"]["vs_ort"]})
            targets.append({"target": f"QEMU ({verify['qemu']['machine']}) vs host engine", **verify["qemu"]["vs_host"]})
        layers = verify.get("layers", [])
        verification = {
            "passed": verify["passed"], "problems": verify["problems"], "requant": verify["requant"],
            "tolerance_lsb": verify["tolerance_lsb"], "samples": verify["samples"], "targets": targets,
            "layers_checked": len(layers),
            "layer_samples": min(deploy["layer_samples"], verify["samples"]),
            "layers_differing": sum(1 for layer in layers if layer["host_vs_ort"]["differing"]),
            "layers_qemu_differing": sum(1 for layer in layers if layer.get("qemu_vs_host", {}).get("differing")),
        }

    search_log = paths.arch.parent / "log.jsonl"
    summary = _read(paths.arch.parent / "summary.json")
    search = {"ran": search_log.is_file(), "fixed": (cfg["search"] or {}).get("model") is not None, "items": []}
    if search["ran"]:
        entries = [line for line in search_log.read_text().splitlines() if line.strip()]
        search["items"].append(("candidates evaluated (search/log.jsonl)", len(entries)))
    if summary:

        for key, value in flatten({k: v for k, v in summary.items() if k != "stage1"}).items():
            search["items"].append((key, value))

    energy = None
    movement = None
    if macs:
        energy = energy_mod.estimate(board, deploy, instructions, macs)
    if ops is not None:
        movement = energy_mod.data_movement(ops, graph.tensors, requant)
        if energy:
            movement["share_of_estimate"] = movement["movement_uj"] / (energy["joules_per_inference"] * 1e6)

    return {
        "name": cfg["name"], "pipeline": pipeline, "board": board, "deploy": deploy, "requant": requant,
        "stages": stages, "budgets": budgets, "flops": flops, "layers": rows, "breakdown": breakdown,
        "accuracy": accuracy, "verification": verification, "search": search, "energy": energy,
        "movement": movement, "seconds_basis": seconds_basis, "plan": plan,
        "tflm": {"arena": verify["tflm_arena"], "model_file_bytes": verify["model_file_bytes"],
                 "sram_total": breakdown["sram_total"] if sizes else None, "flash": sizes["flash"] if sizes else None}
        if verify and "tflm_arena" in verify else None,
        "sram_budget": cfg["resolved"]["sram_budget_bytes"], "flash_budget": cfg["resolved"]["flash_budget_bytes"],
        "totals": {"macs": macs, "weight_bytes": sum(r["weight_bytes"] for r in rows),
                   "bias_bytes": sum(r["bias_bytes"] for r in rows),
                   "instructions": sum(r["instructions"] for r in rows) if counted else None},
        "layer_instructions": counted,
        "not_run": {task: _not_run(task, pipeline) for task in stage_files(cfg, paths)},
    }


def _amount(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:,.3f} ms"
    return f"{int(round(value)):,} {unit}"


# ---------------------------------------------------------------- rendering

def _fmt_int(value) -> str:
    return "—" if value is None else f"{int(round(value)):,}"


def _fmt_pct(value) -> str:
    return "—" if value is None else f"{100 * value:.2f} %"


def _fmt_num(value, digits: int = 3) -> str:
    if value is None:
        return "—"
    return f"{value:,.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def _environment():
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=jinja2.select_autoescape(["html"]),
                             trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
                             undefined=jinja2.StrictUndefined)
    env.filters["int"] = _fmt_int
    env.filters["pct"] = _fmt_pct
    env.filters["num"] = _fmt_num
    return env


IMAGES = ("memory", "layers", "size", "pareto", "cdf")


def render(facts: dict, images: dict[str, Path]) -> tuple[str, str]:
    env = _environment()
    names = {key: images[key].name if key in images else None for key in IMAGES}
    uris = {key: data_uri(images[key]) if key in images else None for key in IMAGES}
    md = env.get_template("report.md.j2").render(f=facts, images=names)
    html = env.get_template("report.html.j2").render(f=facts, images=uris)
    return md, html
