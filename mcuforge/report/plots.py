"""Plots of the build that the review and the schedule task show (each saved through core.figures)."""
from __future__ import annotations

from pathlib import Path

from mcuforge.core.figures import pyplot, save_png
from mcuforge.schedule.planner import Plan, live_bytes


def memory_plot(plan: Plan, baseline: Plan, path: Path, budget: int | None = None) -> None:
    """Live activation bytes per step: the greedy_by_size baseline (ONNX order, one step per layer) above, the
    chosen plan (its order; a compound op of tasks/rewrite.py is one step) below; both arenas, the plan's lower
    bound and the SRAM budget on both."""
    plt = pyplot()
    what = f"{plan.planner}, {len(plan.inplace)} ops in place" + (", reordered" if plan.order != baseline.order else "")
    for spec in plan.rewrites:
        what += f", {spec['kind']}" + (f" ({spec['summary']})" if spec.get("summary") else "")
    panels = [(baseline, "baseline: greedy_by_size, ONNX order, no in-place", "#bbbbbb"), (plan, what, "#4c9be8")]
    steps = max(len(baseline.layers), len(plan.layers))
    fig, axes = plt.subplots(2, 1, figsize=(max(10.0, 4 + 0.22 * steps), 7.5), dpi=100, sharey=True)
    top = max(baseline.peak_bytes(), plan.peak_bytes())
    for ax, (shown, label, color) in zip(axes, panels):
        live = live_bytes(shown)
        ax.bar(range(len(live)), [v / 1024 for v in live], width=0.7, color=color, label=f"live tensors, {label}")
        ax.axhline(baseline.peak_bytes() / 1024, color="#888888", linestyle="--",
                   label=f"arena, baseline: {baseline.peak_bytes():,} B")
        ax.axhline(plan.peak_bytes() / 1024, color="#d9534f", linestyle="--",
                   label=f"arena, {plan.planner}: {plan.peak_bytes():,} B")
        ax.axhline(plan.lower_bound() / 1024, color="#5cb85c", linestyle=":",
                   label=f"lower bound ({plan.planner}'s order): {plan.lower_bound():,} B")
        if budget is not None and budget < 4 * top:
            ax.axhline(budget / 1024, color="black", linewidth=1, label=f"SRAM budget: {budget:,} B")
        ax.set_ylabel("KiB")
        ax.set_xlim(-0.6, steps - 0.4)
        ax.set_xticks(range(len(shown.layers)))
        ax.set_xticklabels(shown.layers, rotation=90, fontsize=7)
        ax.legend(fontsize=7, loc="upper right")
    axes[0].set_title("Activation memory over time")
    axes[1].set_xlabel("step")
    fig.tight_layout()
    save_png(fig, path)
