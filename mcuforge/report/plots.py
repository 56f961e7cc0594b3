"""Plots of the build that the review and the schedule task show (each saved through core.figures): the memory
timeline (schedule), the flash / SRAM breakdown and compute and memory per layer (review)."""
from __future__ import annotations

from pathlib import Path

from mcuforge.core.figures import pyplot, save_png
from mcuforge.schedule.planner import Plan, live_bytes


def memory_plot(plan: Plan, baseline: Plan, path: Path, budget: int | None = None) -> None:
    """Live activation bytes per step: the greedy_by_size baseline (ONNX order, one step per layer) above, the
    chosen plan (its order; a compound op of schedule/rewrite.py is one step) below; both arenas, the plan's lower
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


def confusion_plot(classes: list[str], counts: list[list[int]], path: Path) -> None:
    """int8 confusion matrix on the test set, rows = true class, normalised per row, counts written in the cells."""
    import numpy as np

    plt = pyplot()
    matrix = np.asarray(counts, dtype=np.float64)
    share = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(3.5, 0.45 * len(classes) + 1.5)
    fig, ax = plt.subplots(figsize=(size + 1, size), dpi=100)
    image = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)))
    ax.set_xticklabels(classes, rotation=90, fontsize=8)
    ax.set_yticks(range(len(classes)))
    ax.set_yticklabels(classes, fontsize=8)
    ax.set_xlabel("predicted (int8, ONNX Runtime)")
    ax.set_ylabel("true")
    for (row, col), value in np.ndenumerate(matrix):
        if value:
            ax.text(col, row, f"{int(value)}", ha="center", va="center", fontsize=6,
                    color="white" if share[row, col] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="share of the true class")
    ax.set_title("Confusion matrix (test set)")
    fig.tight_layout()
    save_png(fig, path)
