"""What `doit review` shows and `doit diff` compares: the facts of a build, collected from the artifacts that exist.

Reads whatever stages have run under build/<name>/ and shows the others as "not run", naming the task to run.
Sections: budgets (pass/fail: peak SRAM, flash, MACs, latency; the lecture's FLOPs budget), per-layer table,
model-size breakdown, accuracy (fp32 / int8 / host / QEMU), verification, search, energy and data movement
(energy.py), and the latency cost model's prediction for the built model beside the QEMU count (ml/latency.py).
Everything is computed from the artifacts: no timestamps, so the report is reproducible.
"""
from __future__ import annotations

from dataclasses import dataclass

from mcuforge import frontends
from mcuforge.core.io import flatten
from mcuforge.ml import latency
from mcuforge.report import energy as energy_mod
from mcuforge.report.anomaly import facts as anomaly_facts
from mcuforge.report.layers import layer_instructions, layer_table
from mcuforge.report.frontend import frontend_facts
from mcuforge.report.review import read_artifact, stage_files
from mcuforge.report.sizes import size_breakdown

MACS_PER_CYCLE = 1  # the lecture's budget: 1 MAC (FLOP) per cycle


@dataclass(frozen=True)
class Budget:
    """One budget line: what the build uses against what the pipeline allows. `key` is stable (doit diff reads
    budgets by it); `name` is the label shown."""

    key: str
    name: str
    used: float | None
    budget: float | None
    unit: str
    status: str

    @property
    def used_text(self) -> str:
        return _amount(self.used, self.unit)

    @property
    def budget_text(self) -> str:
        return _amount(self.budget, self.unit) if self.budget is not None else "not set"


def _not_run(task: str, pipeline: str) -> str:
    return f"not run — run `doit {task} pipeline={pipeline}`"


def _status(used, budget) -> str:
    if used is None:
        return "not run"
    if budget is None:
        return "not set"
    return "pass" if used <= budget else "FAIL"


def _amount(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "ms":
        return f"{value:,.3f} ms"
    return f"{int(round(value)):,} {unit}"


def _budgets(cfg: dict, cycles_budget, sizes, plan, sram_used, macs, instructions, seconds) -> dict[str, Budget]:
    """The budgets by key, in the order the report shows them."""
    pipeline = cfg["resolved"]["pipeline_file"]
    board = cfg["board"]["name"]
    sram_budget = cfg["resolved"]["sram_budget_bytes"]
    flash_budget = cfg["resolved"]["flash_budget_bytes"]
    latency_ms = cfg["deploy"].get("latency_ms")
    budgets = [
        Budget("peak_sram", "peak SRAM (arena + static + stack)", sram_used, sram_budget, "B",
               _status(sram_used, sram_budget) if sizes else _not_run(f"build_{board}", pipeline)),
        Budget("arena", "activation arena alone", plan["arena_bytes"] if plan else None, sram_budget, "B",
               _status(plan["arena_bytes"], sram_budget) if plan else _not_run("schedule", pipeline)),
        Budget("flash", "flash (ELF text + data)", sizes["flash"] if sizes else None, flash_budget, "B",
               _status(sizes["flash"], flash_budget) if sizes else _not_run(f"build_{board}", pipeline)),
        Budget("macs", f"MACs (clock x latency x {MACS_PER_CYCLE} MAC/cycle)", macs,
               int(cycles_budget * MACS_PER_CYCLE) if cycles_budget else None, "MACs",
               _status(macs, cycles_budget * MACS_PER_CYCLE if cycles_budget else None) if macs
               else _not_run("schedule", pipeline)),
        Budget("instructions", "instructions (clock x latency; cycles ~ instructions)", instructions,
               int(cycles_budget) if cycles_budget else None, "instr.",
               _status(instructions, cycles_budget) if instructions else _not_run("verify", pipeline)),
        Budget("latency", "latency (ms)", round(seconds * 1000, 3) if seconds is not None else None, latency_ms, "ms",
               _status(seconds * 1000, latency_ms) if seconds is not None else _not_run("verify", pipeline)),
    ]
    return {budget.key: budget for budget in budgets}


def _flops(board: dict, latency_ms, cycles_budget, macs, instructions) -> dict:
    """The lecture's FLOPs budget: clock x allowed latency x MACS_PER_CYCLE."""
    clock_hz = board["clock_mhz"] * 1e6
    return {
        "clock_mhz": board["clock_mhz"], "latency_ms": latency_ms,
        "cycles_budget": cycles_budget, "macs_budget": cycles_budget * MACS_PER_CYCLE if cycles_budget else None,
        "lecture_macs_budget": clock_hz * 0.1 * MACS_PER_CYCLE, "macs": macs, "instructions": instructions,
        "instructions_per_mac": instructions / macs if instructions and macs else None,
    }


def _accuracy(train, quant, verify) -> dict:
    return {
        "fp32": (quant or {}).get("fp32_test_accuracy", (train or {}).get("fp32_test_accuracy_torch")),
        "int8": (quant or {}).get("int8_test_accuracy"),
        "test_samples": (quant or train or {}).get("test_samples"),
        "ort": (verify or {}).get("ort_accuracy"),
        "host": (verify or {}).get("host", {}).get("accuracy"),
        "qemu": (verify or {}).get("qemu", {}).get("accuracy"),
        "verify_samples": (verify or {}).get("samples"),
    }


def _confusion(quant) -> dict | None:
    """Per-class accuracy of the int8 model on the test set, from its confusion matrix (quantize/metrics.json)."""
    if not quant or not quant.get("int8_confusion"):
        return None
    counts = quant["int8_confusion"]
    rows = [{"name": name, "samples": sum(row), "accuracy": row[i] / sum(row) if sum(row) else None,
             "top_confusion": max(((count, quant["classes"][j]) for j, count in enumerate(row) if j != i),
                                  default=(0, ""))}
            for i, (name, row) in enumerate(zip(quant["classes"], counts))]
    return {"classes": quant["classes"], "counts": counts, "per_class": rows}


def _verification(deploy: dict, verify: dict | None) -> dict | None:
    if not verify:
        return None
    targets = [{"target": "host engine vs ONNX Runtime", **verify["host"]["vs_ort"]}]
    if "qemu" in verify:
        targets.append({"target": f"QEMU ({verify['qemu']['machine']}) vs ONNX Runtime", **verify["qemu"]["vs_ort"]})
        targets.append({"target": f"QEMU ({verify['qemu']['machine']}) vs host engine", **verify["qemu"]["vs_host"]})
    layers = verify.get("layers", [])
    return {
        "passed": verify["passed"], "problems": verify["problems"], "requant": verify["requant"],
        "tolerance_lsb": verify["tolerance_lsb"], "samples": verify["samples"], "targets": targets,
        "layers_checked": len(layers),
        "layer_samples": min(deploy["layer_samples"], verify["samples"]),
        "layers_differing": sum(1 for layer in layers if layer["host_vs_ort"]["differing"]),
        "layers_qemu_differing": sum(1 for layer in layers if layer.get("qemu_vs_host", {}).get("differing")),
    }


def _predicted_latency(cfg: dict, paths, instructions: int | None) -> dict | None:
    """The latency cost model's estimate for the int8 model (as the frontend reads it: layer by layer, before fused
    blocks or patches) on the board's core family, beside the instructions counted under QEMU; None without a
    quantized model."""
    if not paths.int8.is_file():
        return None
    board = cfg["board"]
    graph = frontends.load(paths.int8)
    core_family = latency.family(board["core"])
    predicted = latency.predict_instructions(graph, core_family)
    clock_khz = board["clock_mhz"] * 1e3
    budget_ms = cfg["deploy"].get("latency_ms")
    measured_ms = instructions / clock_khz if instructions else None
    return {"family": core_family, "predicted_instructions": predicted, "predicted_ms": predicted / clock_khz,
            "measured_instructions": instructions, "measured_ms": measured_ms,
            "error": predicted / instructions - 1 if instructions else None,
            "unmodelled": latency.unmodelled(graph),
            "search_budget_ms": ((cfg["search"] or {}).get("constraints") or {}).get("latency_ms") or None,
            "deploy_budget_ms": budget_ms,
            "over_budget": bool(budget_ms and measured_ms is not None and measured_ms > budget_ms)}


def _search(cfg: dict, paths) -> dict:
    search_log = paths.arch.parent / "log.jsonl"
    summary = read_artifact(paths.arch.parent / "summary.json")
    search = {"ran": search_log.is_file(), "fixed": (cfg["search"] or {}).get("model") is not None, "items": []}
    if search["ran"]:
        entries = [line for line in search_log.read_text().splitlines() if line.strip()]
        search["items"].append(("candidates evaluated (search/log.jsonl)", len(entries)))
    if summary:
        for key, value in flatten({k: v for k, v in summary.items() if k != "stage1"}).items():
            search["items"].append((key, value))
    return search


def collect(cfg: dict, paths) -> dict:
    """Everything the report shows, from the artifacts that exist (plain data: numbers, strings, lists; the budgets
    as Budget records keyed by name)."""
    pipeline = cfg["resolved"]["pipeline_file"]
    board = cfg["board"]
    deploy = cfg["deploy"]
    stages = []
    for task, files in stage_files(cfg, paths).items():
        done = all(f.is_file() for f in files)
        stages.append({"task": task, "done": done, "status": "done" if done else _not_run(task, pipeline)})
    train = read_artifact(paths.train_metrics)
    quant = read_artifact(paths.quant_metrics)
    plan = read_artifact(paths.plan)
    sizes = read_artifact(paths.size_json)
    verify = read_artifact(paths.verify_report)
    requant = cfg["resolved"]["requant"]

    rows, graph, ops = ([], None, None)
    if plan and paths.int8.is_file():
        rows, graph, ops = layer_table(paths, requant)
    macs = sum(r["macs"] for r in rows) if rows else (plan or {}).get("macs") or (train or {}).get("macs")
    instructions = (verify or {}).get("qemu", {}).get("instructions_per_inference")
    counted = layer_instructions(rows, ops, verify)
    breakdown = size_breakdown(cfg, paths, sizes, plan, quant)
    latency_ms = deploy.get("latency_ms")
    cycles_budget = board["clock_mhz"] * 1e6 * latency_ms / 1000 if latency_ms else None
    seconds = None
    seconds_basis = None
    if instructions or macs:
        seconds, seconds_basis = energy_mod.inference_time_s(board["clock_mhz"], instructions, macs or 0)
    sram_used = breakdown["sram_total"] if sizes else None

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
        "stages": stages, "budgets": _budgets(cfg, cycles_budget, sizes, plan, sram_used, macs, instructions, seconds),
        "flops": _flops(board, latency_ms, cycles_budget, macs, instructions), "layers": rows, "breakdown": breakdown,
        "accuracy": _accuracy(train, quant, verify), "confusion": _confusion(quant),
        "frontend": frontend_facts(cfg, paths, verify), "verification": _verification(deploy, verify),
        "search": _search(cfg, paths), "energy": energy,
        "predicted_latency": _predicted_latency(cfg, paths, instructions),
        "movement": movement, "seconds_basis": seconds_basis, "plan": plan,
        "tflm": {"arena": verify["tflm_arena"], "model_file_bytes": verify["model_file_bytes"],
                 "sram_total": breakdown["sram_total"] if sizes else None, "flash": sizes["flash"] if sizes else None}
        if verify and "tflm_arena" in verify else None,
        "sram_budget": cfg["resolved"]["sram_budget_bytes"], "flash_budget": cfg["resolved"]["flash_budget_bytes"],
        "totals": {"macs": macs, "weight_bytes": sum(r["weight_bytes"] for r in rows),
                   "bias_bytes": sum(r["bias_bytes"] for r in rows),
                   "instructions": sum(r["instructions"] for r in rows) if counted else None},
        "layer_instructions": counted,
        "anomaly": anomaly_facts(paths),
        "not_run": {task: _not_run(task, pipeline) for task in stage_files(cfg, paths)},
    }
