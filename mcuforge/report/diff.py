"""`doit diff a=<yaml> b=<yaml>`: what changing a pipeline's config does.

Both pipelines are resolved (defaults filled, board merged) and compared field by field; their builds (build/<name>/,
or build_a= / build_b=) are read as `doit review` reads them, and the figures are set side by side: budgets, memory,
flash, MACs, latency, accuracy, energy. The output is Markdown (paste it into a pull request). It fails, so CI can gate
config changes, when b breaks a budget that a met, or when a build is missing (it names the command to run).
"""
from __future__ import annotations

from mcuforge.core.io import flatten
from mcuforge.report.facts import Budget


# (label, how to read it from facts.collect's facts, unit)
FIGURES = (
    ("peak SRAM (arena + static + stack)", lambda f: _used(f, "peak_sram"), "B"),
    ("activation arena", lambda f: _used(f, "arena"), "B"),
    ("flash (ELF)", lambda f: _used(f, "flash"), "B"),
    ("weights (int8)", lambda f: f["breakdown"]["flash"].get("weights (int8)"), "B"),
    ("MACs", lambda f: f["totals"]["macs"], ""),
    ("instructions per inference (QEMU)", lambda f: f["flops"]["instructions"], ""),
    ("latency estimate", lambda f: _used(f, "latency"), "ms"),
    ("fp32 accuracy", lambda f: f["accuracy"]["fp32"], "%"),
    ("int8 accuracy", lambda f: f["accuracy"]["int8"], "%"),
    ("QEMU accuracy (verified samples)", lambda f: f["accuracy"]["qemu"], "%"),
    ("energy per inference", lambda f: f["energy"]["joules_per_inference"] * 1e6 if f["energy"] else None, "uJ"),
    ("battery life", lambda f: f["energy"]["battery_days"] if f["energy"] else None, "days"),
)


def _used(facts: dict, key: str):
    """What the build uses of the budget `key` (facts.Budget.key)."""
    return facts["budgets"][key].used


def config_changes(cfg_a: dict, cfg_b: dict) -> list[tuple[str, object, object]]:
    flat_a, flat_b = flatten(cfg_a), flatten(cfg_b)
    missing = object()
    changes = []
    for key in sorted(set(flat_a) | set(flat_b)):
        value_a, value_b = flat_a.get(key, missing), flat_b.get(key, missing)
        if value_a != value_b:
            changes.append((key, "—" if value_a is missing else value_a, "—" if value_b is missing else value_b))
    return changes


def _fmt(value, unit: str) -> str:
    if value is None:
        return "—"
    if unit == "%":
        return f"{100 * value:.2f} %"
    if unit == "ms":
        return f"{value:,.3f} ms"
    if unit in ("uJ", "days"):
        return f"{value:,.4g} {unit}"
    return f"{int(round(value)):,}{' ' + unit if unit else ''}"


def _change(value_a, value_b, unit: str) -> str:
    if value_a is None or value_b is None:
        return "—"
    delta = value_b - value_a
    if unit == "%":
        return f"{100 * delta:+.2f} pp"
    relative = f" ({delta / value_a:+.1%})" if value_a else ""
    if unit in ("ms", "uJ", "days"):
        return f"{delta:+,.4g}{relative}"
    return f"{int(round(delta)):+,}{relative}"


def _budget_pairs(facts_a: dict, facts_b: dict) -> list[tuple[Budget, Budget]]:
    """(a's budget, b's budget) matched by key, in a's display order."""
    return [(budget_a, facts_b["budgets"][key]) for key, budget_a in facts_a["budgets"].items()]


def regressions(facts_a: dict, facts_b: dict) -> list[str]:
    """Budgets that a met and b breaks."""
    out = []
    for budget_a, budget_b in _budget_pairs(facts_a, facts_b):
        if budget_a.status == "pass" and budget_b.status == "FAIL":
            out.append(f"{budget_b.name}: {budget_b.used_text} > {budget_b.budget_text} "
                       f"(a: {budget_a.used_text} <= {budget_a.budget_text})")
    return out


def markdown(name_a: str, name_b: str, cfg_a: dict, cfg_b: dict, facts_a: dict, facts_b: dict) -> str:
    lines = [f"# Config diff: a = `{name_a}`, b = `{name_b}`", "", "## Resolved config", ""]
    changes = config_changes(cfg_a, cfg_b)
    if changes:
        lines += ["| field | a | b |", "|---|---|---|"]
        lines += [f"| `{key}` | {value_a} | {value_b} |" for key, value_a, value_b in changes]
    else:
        lines.append("No difference.")
    lines += ["", "## Budgets", "", "| budget | a | b | a result | b result |", "|---|---:|---:|---|---|"]
    for budget_a, budget_b in _budget_pairs(facts_a, facts_b):
        lines.append(f"| {budget_a.name} | {budget_a.used_text} / {budget_a.budget_text} | "
                     f"{budget_b.used_text} / {budget_b.budget_text} | {budget_a.status} | {budget_b.status} |")
    lines += ["", "## Figures", "", "| figure | a | b | change (b - a) |", "|---|---:|---:|---:|"]
    for label, read, unit in FIGURES:
        value_a, value_b = read(facts_a), read(facts_b)
        lines.append(f"| {label} | {_fmt(value_a, unit)} | {_fmt(value_b, unit)} | {_change(value_a, value_b, unit)} |")
    verified = [("PASSED" if f["verification"]["passed"] else "FAILED") if f["verification"] else "not run"
                for f in (facts_a, facts_b)]
    lines.append(f"| verification | {verified[0]} | {verified[1]} | |")
    found = regressions(facts_a, facts_b)
    lines += ["", "## Verdict", ""]
    lines += [f"- b breaks a budget that a met: {item}" for item in found] or ["b breaks no budget that a met."]
    return "\n".join(lines) + "\n"
