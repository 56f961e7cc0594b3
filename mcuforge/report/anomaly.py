"""The review's anomaly detection section: AUC / pAUC per machine id and per anomaly kind (fp32, int8 and the
device), the threshold and the confusion at it, the ROC curve and the score histograms of normal vs anomalous test
clips. Reads quantize/metrics.json, quantize/scores.json and verify/report.json (never runs anything)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mcuforge.core.figures import pyplot, save_png
from mcuforge.ml import anomaly_metrics
from mcuforge.report.review import read_artifact


def scores_path(paths) -> Path:
    return paths.quant_metrics.parent / "scores.json"


def facts(paths) -> dict | None:
    quant = read_artifact(paths.quant_metrics)
    if not quant or "int8_test" not in quant:
        return None
    verify = read_artifact(paths.verify_report) or {}
    fp32, int8 = quant["fp32_test"], quant["int8_test"]
    rows = [{"what": f"machine id {name}", "fp32": fp32["per_machine_id"][name], "int8": figures}
            for name, figures in int8["per_machine_id"].items()]
    rows += [{"what": f"kind {name}", "fp32": fp32["per_kind"][name], "int8": figures}
             for name, figures in int8["per_kind"].items()]
    rows.append({"what": "mean over machine ids", "fp32": fp32["mean_over_ids"], "int8": int8["mean_over_ids"]})
    return {"rows": rows, "confusion": int8["confusion"], "threshold_rule": quant["threshold_rule"],
            "threshold_acc": quant["threshold_acc"], "drop": quant["int8_auc_drop"], "max_fpr": int8["max_fpr"],
            "val_auc": quant["int8_val_auc"]["auc"], "device": verify.get("anomaly_score")}


def plots(paths, out_dir: Path) -> dict[str, Path]:
    """roc.png (fp32 and int8 test ROC, the max FPR of the pAUC) and scores.png (int8 score histograms)."""
    data = read_artifact(scores_path(paths))
    quant = read_artifact(paths.quant_metrics)
    if not data or not quant:
        return {}
    label = np.asarray(data["label"])
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 5), dpi=100)
    for key, style in (("fp32", "--"), ("int8", "-")):
        fpr, tpr, _ = anomaly_metrics.roc_curve(label, np.asarray(data[key]))
        ax.plot(fpr, tpr, style, label=f"{key}: AUC {quant[f'{key}_test']['mean_over_ids']['auc']:.3f} "
                                       "(mean over ids)")
    ax.axvline(quant["int8_test"]["max_fpr"], color="#888888", linestyle=":", label="pAUC range")
    ax.plot([0, 1], [0, 1], color="#cccccc", linewidth=1)
    ax.set_xlabel("false positive rate")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC, all test clips")
    ax.legend(fontsize=8, loc="lower right")
    roc = out_dir / "roc.png"
    save_png(fig, roc)
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    scores = np.asarray(data["int8"])
    bins = np.linspace(scores.min(), np.quantile(scores, 0.99), 40)
    ax.hist(scores[label == 0], bins, alpha=0.6, label="normal")
    ax.hist(scores[label == 1], bins, alpha=0.6, label="anomalous")
    ax.axvline(quant["threshold"], color="black", label=f"threshold {quant['threshold']:.3g}")
    ax.set_xlabel("anomaly score (int8 model): mean squared reconstruction error")
    ax.set_ylabel("test clips")
    ax.legend(fontsize=8)
    hist = out_dir / "scores.png"
    save_png(fig, hist)
    return {"roc": roc, "scores": hist}
