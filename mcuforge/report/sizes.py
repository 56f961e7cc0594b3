"""The review's model-size breakdown: flash by component (from the board ELF's symbols, or the quantized model's
figures before a board build) and SRAM (arena, other static data, the stack and where its figure comes from)."""
from __future__ import annotations

import re
from pathlib import Path

from mcuforge.codegen import symbol_groups
from mcuforge.codegen.context import SYMBOL_GROUPS
from mcuforge.core.io import read_json
from mcuforge.report.review import read_artifact
from mcuforge.schedule import rewrite
from mcuforge.toolchain import stack_usage, symbols as elf_symbols

def size_breakdown(cfg: dict, paths, sizes: dict | None, plan: dict | None, quant: dict | None) -> dict:
    """The lecture's model-size breakdown: flash (weights, biases, requant params, engine code, the rest) and SRAM
    (arena, other static data, stack)."""
    flash: dict[str, int] = {}
    sram: dict[str, int] = {}
    source = "none"
    symbols = elf_symbols(paths.executable(cfg["board"]["name"])) if sizes else None
    if sizes and symbols:
        source = "ELF symbols (arm-none-eabi-nm) and size.json"
        graph, plan_ops = rewrite.planned(paths.int8, paths.plan)
        groups = symbol_groups(graph, plan_ops)  # what codegen declared each constant as
        for label in SYMBOL_GROUPS:
            flash[label] = sum(size for name, (_, size) in symbols.items() if groups.get(name) == label)
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
    stack exist (mcuforge/toolchain/budget.py), the static bound alone before verify, else the chain estimate below."""
    budget_json = Path(paths.size_json).parent / "budget.json"
    if not budget_json.is_file():
        stack = stack_estimate(cfg, paths)
        if stack:
            stack.update(label="stack (estimate)", static_bytes=stack["bytes"], uncounted=[])
        return stack
    numbers = read_json(budget_json)
    stack = {"bytes": numbers["stack_bytes"], "static_bytes": numbers["stack_bytes"], "chain": numbers["stack_chain"],
             "uncounted": numbers.get("uncounted_library_functions", []), "label": "stack (static bound)",
             "exception_bytes": numbers.get("exception_frame_bytes", 0)}
    measured = (read_artifact(paths.verify_report) or {}).get("qemu", {})
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
