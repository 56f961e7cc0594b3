"""Task `review`: budgets, per-layer table, plots, size breakdown, accuracy, energy (mcuforge/report/) ->
review/report.md + .html; and the key figures printed at the end of `doit run`."""
from __future__ import annotations

import shutil
from pathlib import Path

from mcuforge.core.io import write_text
from mcuforge.report.anomaly import plots as anomaly_plots
from mcuforge.report.facts import collect
from mcuforge.report.plots import confusion_plot, layers_plot, size_plot
from mcuforge.report.render import render
from mcuforge.report.review import ReviewPaths, fingerprint, read_artifact


def run(cfg: dict, paths) -> dict:
    """Stage `review`: write review/report.md, report.html and the plots; return the fingerprint doit keeps."""
    out = ReviewPaths(paths)
    out.dir.mkdir(parents=True, exist_ok=True)
    facts = collect(cfg, paths)
    images: dict[str, Path] = {}
    if paths.memory_png.is_file():
        shutil.copyfile(paths.memory_png, out.memory_png)
        images["memory"] = out.memory_png
    if facts["breakdown"]["flash"] or facts["breakdown"]["sram"]:
        size_plot(facts["breakdown"], {"flash": facts["flash_budget"], "sram": facts["sram_budget"]}, out.size_png)
        images["size"] = out.size_png
    if facts["layers"]:
        layers_plot(facts["layers"], out.layers_png)
        images["layers"] = out.layers_png
    if facts["confusion"]:
        confusion_plot(facts["confusion"]["classes"], facts["confusion"]["counts"], out.confusion_png)
        images["confusion"] = out.confusion_png
    for key in ("pareto", "cdf"):
        source = paths.arch.parent / f"{key}.png"
        if source.is_file():
            shutil.copyfile(source, out.dir / f"search_{key}.png")
            images[key] = out.dir / f"search_{key}.png"
    images.update(anomaly_plots(paths, out.dir))
    md, html = render(facts, images)
    write_text(out.md, md)
    write_text(out.html, html)
    print(f"review: {out.md}\nreview: {out.html}")
    return {"fingerprint": fingerprint(cfg, paths)}


def uptodate(cfg: dict, paths):
    """doit `uptodate` callable: the review is up to date when its inputs' fingerprint has not changed."""
    def check(task, values):
        return bool(values) and values.get("fingerprint") == fingerprint(cfg, paths) and ReviewPaths(paths).html.is_file()

    return check


# ---------------------------------------------------------------- the end-of-run summary


def summary_lines(cfg: dict, paths) -> list[str]:
    """Key figures of a build for the end of `doit run`: accuracy, SRAM and flash against budgets, verification."""
    facts_quant = read_artifact(paths.quant_metrics)
    sizes = read_artifact(paths.size_json)
    verify = read_artifact(paths.verify_report)
    plan = read_artifact(paths.plan)
    lines = [f"mcuforge: {cfg['name']} on {cfg['board']['name']}"]
    if facts_quant and "int8_test" in facts_quant:  # anomaly detection
        auc = {key: facts_quant[f"{key}_test"]["mean_over_ids"]["auc"] for key in ("fp32", "int8")}
        score = (verify or {}).get("anomaly_score", {})
        lines.append(f"  AUC        fp32 {auc['fp32']:.4f}, int8 {auc['int8']:.4f} (mean over machine ids); threshold "
                     f"{facts_quant['threshold']:.4g}: false alarms {facts_quant['int8_test']['confusion']['false_alarm_rate']:.1%}"
                     f", misses {facts_quant['int8_test']['confusion']['miss_rate']:.1%}"
                     + (f"; device score == reference on {score['host_acc_equal_reference']}/{score['clips']} clips"
                        if score else ""))
    elif facts_quant:
        lines.append(f"  accuracy   fp32 {facts_quant['fp32_test_accuracy']:.2%}, int8 {facts_quant['int8_test_accuracy']:.2%}"
                     + (f", QEMU {verify['qemu']['accuracy']:.2%} ({verify['samples']} samples)"
                        if verify and "qemu" in verify else ""))
    sram_budget = cfg["resolved"]["sram_budget_bytes"]
    flash_budget = cfg["resolved"]["flash_budget_bytes"]
    front = read_artifact(paths.frontend_json) if paths.frontend else None
    if plan and front and front.get("arena_bytes"):  # the arena with the front end's scratch (and a clip's features)
        plan = {**plan, "arena_bytes": front["arena_bytes"]}
    if sizes:
        lines.append(f"  SRAM       {sizes['ram']:,} B static (arena {plan['arena_bytes']:,} B) / {sram_budget:,} B"
                     if plan else f"  SRAM       {sizes['ram']:,} B static / {sram_budget:,} B")
        lines.append(f"  flash      {sizes['flash']:,} B / {flash_budget:,} B")
    elif plan:
        lines.append(f"  SRAM       arena {plan['arena_bytes']:,} B / {sram_budget:,} B")
    if verify and verify.get("sram_measured"):
        sram = verify["sram_measured"]
        lines.append(f"  stack      {sram['stack_measured_bytes']:,} B measured under QEMU (static bound "
                     f"{sram['stack_static_bytes']:,} B): SRAM total {sram['sram_bytes']:,} B / {sram_budget:,} B")
    if verify:
        result = "PASSED" if verify["passed"] else "FAILED"
        reference = "TFLite Micro" if verify.get("reference") == "tflite-micro" else "ORT"
        diffs = f"host vs {reference} {verify['host']['vs_ort']['differing']} differing bytes"
        if "qemu" in verify:
            diffs += f", QEMU vs host {verify['qemu']['vs_host']['differing']}"
        lines.append(f"  verify     {result} ({diffs})")
    report = ReviewPaths(paths).html
    if report.is_file():
        lines.append(f"  report     {ReviewPaths(paths).md}  ({report.name} beside it)")
    else:
        lines.append(f"  report     run `doit review pipeline={cfg['resolved']['pipeline_file']}`")
    return lines


def summary_reporter(cfg: dict, paths):
    """A doit reporter class: the console reporter, then the key figures when the run built or checked the
    pipeline's last stages (manifest or review) without failures."""
    from tasks.doit_support import Reporter

    class SummaryReporter(Reporter):
        final_tasks = ("manifest", "review")

        def __init__(self, outstream, options):
            super().__init__(outstream, options)
            self.seen: set[str] = set()

        def execute_task(self, task):
            self.seen.add(task.name)
            super().execute_task(task)

        def skip_uptodate(self, task):
            self.seen.add(task.name)
            super().skip_uptodate(task)

        def complete_run(self):
            super().complete_run()
            if self.failures or self.runtime_errors or not self.seen & set(self.final_tasks):
                return
            try:
                lines = summary_lines(cfg, paths)
            except (OSError, KeyError, ValueError):
                return
            self.write("\n".join(lines) + "\n")

    return SummaryReporter
