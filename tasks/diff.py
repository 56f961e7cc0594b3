"""Task `diff`: `doit diff a=<yaml> b=<yaml> [build_a=<dir> build_b=<dir>]`, the library in mcuforge/report/diff.py."""
from __future__ import annotations

from pathlib import Path

from mcuforge.core.errors import BudgetError, McuforgeError
from mcuforge.core.paths import ROOT, Paths
from mcuforge.report.diff import markdown, regressions
from mcuforge.report.facts import collect

from .config import resolve


def _side(pipeline: str | None, build: str | None, which: str) -> tuple[dict, Paths, dict]:
    if not pipeline:
        raise McuforgeError(f"doit diff needs {which}=<pipeline yaml>: `doit diff a=pipelines/a.yaml b=pipelines/b.yaml`")
    cfg = resolve(pipeline, {})
    paths = Paths(Path(build).resolve() if build else ROOT / "build" / cfg["name"])
    return cfg, paths, collect(cfg, paths)


def missing_builds(sides: dict) -> list[str]:
    problems = []
    for which, (cfg, paths, facts) in sides.items():
        needed = {"verify", f"build_{cfg['board']['name']}", "quantize", "schedule"}
        absent = [s["task"] for s in facts["stages"] if s["task"] in needed and not s["done"]]
        if absent:
            build = "" if paths.root == ROOT / "build" / cfg["name"] else f" build={paths.root}"
            problems.append(f"{which}: {paths.root} has not run {', '.join(absent)}: run "
                            f"`doit run pipeline={cfg['resolved']['pipeline_file']}{build}`")
    return problems


def run(a: str | None, b: str | None, build_a: str | None = None, build_b: str | None = None) -> dict:
    """doit action: print the Markdown diff; fail on a budget regression or a missing build."""
    sides = {"a": _side(a, build_a, "a"), "b": _side(b, build_b, "b")}
    (cfg_a, _, facts_a), (cfg_b, _, facts_b) = sides["a"], sides["b"]
    print(markdown(a, b, cfg_a, cfg_b, facts_a, facts_b), end="")
    problems = missing_builds(sides)
    if problems:
        raise McuforgeError("doit diff: cannot judge budgets without both builds:\n  " + "\n  ".join(problems))
    found = regressions(facts_a, facts_b)
    if found:
        raise BudgetError("doit diff: b breaks budgets that a met:\n  " + "\n  ".join(found))
    return {}
