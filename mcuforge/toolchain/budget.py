"""Memory budgets checked against the board: the arena alone at schedule time, the whole SRAM and flash need after
the board build (budget.json).

- flash = text + data of the ELF (code, const weights, vector table, initialised data).
- SRAM = data + bss (the arena, the engine's and runner's static state, newlib's) + stack.
- stack: bounded statically, the worst call chain from `Reset_Handler` (else `main`) in the ELF's call graph (`bl`/`blx`
  and tail-call `b` instructions from arm-none-eabi-objdump) weighted by the frames GCC reports with -fstack-usage
  for our code and, for the library code compiled without it (newlib's file I/O and printf, memcpy, libgcc), by the
  sp decrements of its disassembly; calls through a pointer may reach any function whose address is taken; plus one
  interrupt's exception frame (32 B, 104 B with the FPU context). Recursion in our code makes the bound infinite and
  is an error; newlib's data-dependent recursion (rdimon's _swiopen -> _stat -> _swiopen) is counted once more.
  Before this, library calls and the exception frame were left out and the "bound" could be below the measured
  stack (MLPerf anomaly detection: 244 B bound, 356 B measured).
- stack measured: the verify task runs the board ELF under QEMU with stack painting (engine_c/platform/startup.c);
  the high-water mark of the paths the run took (at most the bound, unless the pointer-call targets missed one).
  budget.json is written after the board build, before any run, so it holds the static bound; verify re-checks the
  SRAM budget with max(measured, static bound) (with_measured_stack) and records it in verify/report.json.
The budgets are the board's sizes minus its reserved bytes (cfg["resolved"]: sram_budget_bytes, flash_budget_bytes).
"""
from __future__ import annotations

from pathlib import Path

from mcuforge.core.errors import BudgetError, McuforgeError
from mcuforge.core.io import read_json, write_json
from mcuforge.toolchain.elf import disassembly, stack_usage
from mcuforge.toolchain.process import ToolchainError


def _layer(plan, step: int) -> str:
    if not plan.order:
        return "no layer"
    step = min(step, len(plan.order) - 1)
    kind = plan.layers[step] if step < len(plan.layers) else "op"
    return f"layer {step} ({kind} '{plan.order[step]}')"


def check_arena(plan, graph, sram_budget: int, board: str) -> None:
    """Refuse an arena that alone exceeds the SRAM budget, naming the budget, the need and the peak layer."""
    arena = plan.peak_bytes()
    if arena <= sram_budget:
        return
    step = plan.peak_step()
    live = [name for name, b in sorted(plan.buffers.items()) if b.bytes_at(step)]
    raise BudgetError(
        f"SRAM budget exceeded: the activation arena alone needs {arena:,} B (planner {plan.planner}; lower bound "
        f"{plan.lower_bound():,} B) but board '{board}' allows {sram_budget:,} B (SRAM minus reserved bytes). "
        f"The peak is at {_layer(plan, step)}, where {', '.join(live)} are live. Use a smaller model or input "
        f"resolution, a board with more SRAM, or schedule.planner=best with inplace_depthwise and reorder on.")


def worst_stack(calls: dict[str, set[str]], frames: dict[str, int], root: str = "main",
                indirect: frozenset[str] | set[str] = frozenset(), targets: tuple[str, ...] = (),
                library: frozenset[str] | set[str] = frozenset()) -> tuple[int, list[str], list[str]]:
    """(bytes, the deepest chain from root, callees without a known frame) over functions with known frames.

    indirect: functions that call through a pointer; each may reach any of `targets` (the functions whose address
    is taken). Direct recursion is an error (unbounded); a loop closed through a pointer call is cut (newlib's
    _fwalk -> _fflush_r ...). library: functions without -fstack-usage frames (newlib), whose data-dependent
    recursion (rdimon's _swiopen -> _stat -> _swiopen) is counted with the re-entered function's frame once more."""
    unknown: set[str] = set()
    memo: dict[str, tuple[int, list[str]]] = {}
    active: set[str] = set()

    def depth(function: str) -> tuple[int, list[str]]:
        if function in memo:
            return memo[function]
        if function in active and function in library:
            return frames[function], [f"{function} (re-entered)"]
        if function in active:
            raise McuforgeError(f"stack: recursion through '{function}'; the worst-case stack is unbounded")
        active.add(function)
        try:
            best = (0, [])
            for callee in sorted(calls.get(function, ())):
                if callee not in frames:
                    unknown.add(callee)
                    continue
                below = depth(callee)
                if below[0] > best[0]:
                    best = below
            if function in indirect:
                for callee in targets:
                    if callee in active or callee not in frames:
                        continue
                    try:
                        below = depth(callee)
                    except McuforgeError:  # the pointer call closes a loop: cut it there
                        continue
                    if below[0] > best[0]:
                        best = (below[0], [f"(via pointer) {below[1][0]}", *below[1][1:]])
        finally:
            active.discard(function)
        memo[function] = (frames[function] + best[0], [function] + best[1])
        return memo[function]

    if root not in frames:
        return 0, [], []
    total, chain = depth(root)
    return total, chain, sorted(unknown)


EXCEPTION_FRAME_BYTES = 32  # r0-r3, r12, lr, pc, xPSR stacked by the core on an interrupt
FPU_EXCEPTION_FRAME_BYTES = 72  # + s0-s15, FPSCR and a reserved word when the FPU context is active


def measure(elf: Path, build_dir: Path, fpu: bool = False) -> dict:
    """The static stack bound from the reset handler (its frame sits at the top of the stack, like the measured
    figure's), or from main for a program without our startup code; and the bound of mf_model_invoke alone.

    An upper bound: frames from -fstack-usage for our code and from the disassembly for the library code compiled
    without it (newlib, libgcc: every sp decrement of the function summed), calls through pointers followed to every
    function whose address is taken, plus one interrupt's exception frame (32 B, 104 B with the FPU context) that an
    application's interrupt may push at the deepest point. Functions that move sp by a register are listed under
    "dynamic_stack_functions" (no static bound for them)."""
    frames = stack_usage(build_dir)
    library = set()
    try:
        code = disassembly(elf)
    except ToolchainError as exc:
        raise McuforgeError(f"stack bound: {exc}") from None
    calls = code["calls"]
    for function, frame in code["frames"].items():
        if function not in frames:  # GCC's figure for our code, the disassembly's for the rest
            frames[function] = frame
            library.add(function)
    targets = tuple(sorted(code["address_taken"]))
    exception = EXCEPTION_FRAME_BYTES + (FPU_EXCEPTION_FRAME_BYTES if fpu else 0)
    root = "Reset_Handler" if "Reset_Handler" in frames else "main"
    total, chain, unknown = worst_stack(calls, frames, root, code["indirect"], targets, library)
    invoke, invoke_chain, _ = worst_stack(calls, frames, "mf_model_invoke", code["indirect"], targets,
                                          library)
    return {"stack_bytes": total + exception, "stack_chain": chain, "inference_stack_bytes": invoke + exception,
            "inference_stack_chain": invoke_chain, "uncounted_library_functions": unknown,
            "exception_frame_bytes": exception, "dynamic_stack_functions": sorted(code["dynamic"])}


def report(sizes: dict, plan: dict, stack: dict, sram_budget: int, flash_budget: int) -> dict:
    arena = plan["arena_bytes"]
    static_ram = sizes["data"] + sizes["bss"]
    sram = static_ram + stack["stack_bytes"]
    return {
        "arena_bytes": arena,
        "other_static_ram_bytes": static_ram - arena,
        "stack_bytes": stack["stack_bytes"],
        "stack_chain": stack["stack_chain"],
        "inference_stack_bytes": stack["inference_stack_bytes"],
        "uncounted_library_functions": stack["uncounted_library_functions"],
        "exception_frame_bytes": stack.get("exception_frame_bytes", 0),
        "dynamic_stack_functions": stack.get("dynamic_stack_functions", []),
        "io_buffers_bytes": 0,  # the model's input and output live in the arena
        "sram_bytes": sram,
        "sram_budget_bytes": sram_budget,
        "sram_fits": sram <= sram_budget,
        "flash_bytes": sizes["text"] + sizes["data"],
        "flash_budget_bytes": flash_budget,
        "flash_fits": sizes["text"] + sizes["data"] <= flash_budget,
        "peak_step": plan.get("peak_step", 0),
        "peak_layer": plan["order"][min(plan.get("peak_step", 0), len(plan["order"]) - 1)] if plan["order"] else "",
    }


def check(numbers: dict, board: str, ops=None) -> None:
    """BudgetError when the full SRAM or flash need exceeds the board's budget (with the model's ops: the flash
    message names how much is constants and the op with the most)."""
    problems = []
    if not numbers["sram_fits"]:
        problems.append(
            f"SRAM budget exceeded on board '{board}': the model needs {numbers['sram_bytes']:,} B (activation arena "
            f"{numbers['arena_bytes']:,} B + other static RAM {numbers['other_static_ram_bytes']:,} B + stack "
            f"{numbers['stack_bytes']:,} B) but the budget is {numbers['sram_budget_bytes']:,} B (SRAM minus reserved "
            f"bytes); the arena's peak is at layer {numbers['peak_step']} ('{numbers['peak_layer']}').")
    if not numbers["flash_fits"]:
        problems.append(
            f"flash budget exceeded on board '{board}': the model needs {numbers['flash_bytes']:,} B (text + data: "
            f"code and const weights) but the budget is {numbers['flash_budget_bytes']:,} B (flash minus reserved "
            f"bytes), over by {numbers['flash_bytes'] - numbers['flash_budget_bytes']:,} B." + _flash_parts(numbers, ops))
    if problems:
        raise BudgetError(" ".join(problems) + " See budget.json.")


def _flash_parts(numbers: dict, ops) -> str:
    if not ops:
        return ""
    total, (size, name, kind) = constants(ops)
    return (f" Model constants {total:,} B (the biggest: layer '{name}' ({kind}) {size:,} B), code, runtime and "
            f"data {max(numbers['flash_bytes'] - total, 0):,} B.")


def with_measured_stack(numbers: dict, measured: int, inference_measured: int | None = None) -> dict:
    """budget.json's numbers with the stack measured under QEMU: the SRAM total takes max(measured, static bound).

    measured: the whole run's high-water mark (startup, runner, newlib I/O, inferences); inference_measured: the
    inferences' own. Returns the SRAM fields only: static and measured stack, the stack counted, SRAM total, fits.
    """
    static = numbers["stack_bytes"]
    stack = max(measured, static)
    sram = numbers["arena_bytes"] + numbers["other_static_ram_bytes"] + numbers.get("io_buffers_bytes", 0) + stack
    return {
        "stack_static_bytes": static,
        "stack_measured_bytes": measured,
        "inference_stack_measured_bytes": inference_measured,
        "stack_bytes": stack,
        "stack_source": "measured (QEMU stack painting)" if measured >= static else "static bound (-fstack-usage)",
        "sram_bytes": sram,
        "sram_budget_bytes": numbers["sram_budget_bytes"],
        "sram_fits": sram <= numbers["sram_budget_bytes"],
    }


def measured_problems(numbers: dict, sram: dict, board: str) -> list[str]:
    """The over-budget message for the SRAM total with the measured stack (empty when it fits)."""
    if sram["sram_fits"]:
        return []
    return [f"SRAM budget exceeded on board '{board}' with the stack measured under QEMU: the model needs "
            f"{sram['sram_bytes']:,} B (activation arena {numbers['arena_bytes']:,} B + other static RAM "
            f"{numbers['other_static_ram_bytes']:,} B + stack {sram['stack_bytes']:,} B: measured "
            f"{sram['stack_measured_bytes']:,} B, static bound {sram['stack_static_bytes']:,} B) but the budget is "
            f"{sram['sram_budget_bytes']:,} B (SRAM minus reserved bytes); the arena's peak is at layer "
            f"{numbers['peak_step']} ('{numbers['peak_layer']}')."]


def check_measured(cfg: dict, paths, report: dict) -> list[str]:
    """For verify: the SRAM budget re-checked with the stack measured in the QEMU run of `report`.

    Adds report["sram_measured"] (with_measured_stack) when the run measured a stack and budget.json exists;
    returns the over-budget problem, if any.
    """
    measured = report.get("qemu", {}).get("stack_measured_bytes")
    budget_json = Path(paths.size_json).parent / "budget.json"
    if measured is None or not budget_json.is_file():
        return []
    numbers = read_json(budget_json)
    report["sram_measured"] = with_measured_stack(numbers, measured,
                                                  report["qemu"].get("inference_stack_measured_bytes"))
    return measured_problems(numbers, report["sram_measured"], cfg["board"]["name"])


def run_board(cfg: dict, paths, sizes: dict, elf: Path, build_dir: Path, ops=None) -> dict:
    """After the board build: budget.json next to size.json, then refuse a model over budget (`ops`: the model's, to
    name its biggest constants)."""
    fpu = cfg["board"].get("fpu", "none") not in (None, "none")
    numbers = report(sizes, read_json(paths.plan), measure(Path(elf), Path(build_dir), fpu),
                     cfg["resolved"]["sram_budget_bytes"], cfg["resolved"]["flash_budget_bytes"])
    write_json(Path(paths.size_json).parent / "budget.json", numbers)
    check(numbers, cfg["board"]["name"], ops)
    return numbers


def check_constants(ops, flash_budget: int, board: str, what: str) -> None:
    """BudgetError when the model's constants alone (weights, biases, scales: bytes that go to flash whatever the code
    around them) exceed the flash budget, naming need, budget and the biggest layer. Done before training (a fixed
    architecture) and before the board build, so the linker's "region FLASH overflowed" is never the first word."""
    need, (size, name, kind) = constants(ops)
    if need <= flash_budget or not size:
        return
    raise BudgetError(
        f"flash budget exceeded on board '{board}': {what} needs {need:,} B of constants alone (int8 weights, int32 "
        f"biases, scales) but the budget is {flash_budget:,} B (flash minus reserved bytes), over by "
        f"{need - flash_budget:,} B; the biggest is layer '{name}' ({kind}) with {size:,} B "
        f"({100 * size / need:.0f} %). Use a smaller model or a board with more flash.")


def constants(ops) -> tuple[int, tuple[int, str, str]]:
    """(bytes of every op's constants, (bytes, name, kind) of the op with the most)."""
    sizes = sorted(((sum(int(getattr(a, "nbytes", 0)) for a in op.consts.values()), op.name, str(op.kind))
                    for op in ops), reverse=True)
    return sum(size for size, _, _ in sizes), (sizes[0] if sizes else (0, "", ""))
