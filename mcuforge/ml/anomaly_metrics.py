"""Anomaly detection metrics: ROC, AUC, partial AUC, the decision threshold and the confusion at it.

Partial AUC (pAUC) follows DCASE's challenge definition (task 2, 2020-2024): the area under the ROC curve for false
positive rates in [0, p], divided by p (p = max_fpr = 0.1): a perfect detector scores 1, and the chance diagonal
p / 2. It is NOT McClish-standardised. scikit-learn's `roc_auc_score(max_fpr=p)`, which DCASE's baseline code calls,
returns the McClish correction 0.5 * (1 + (A - p^2/2) / (p - p^2/2)) of the raw area A (chance 0.5); it is reported
as `pauc_mcclish` beside `pauc` so figures compare with either convention.

Curves treat tied scores like scikit-learn's roc_curve (one point per distinct score), and the area up to p
interpolates linearly between the two points around p.

Threshold rule: the score of a clip is compared with `threshold` and called anomalous when strictly greater. The
threshold is the smallest validation-normal score such that at most a share `fpr` of the validation normal clips
is above it (the target false-alarm rate on validation normals; anomalies play no part in choosing it).
"""
from __future__ import annotations

import math

import numpy as np


def roc_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fpr, tpr, thresholds) from (0, 0) to (1, 1); labels 1 = anomalous, higher score = more anomalous."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if not positives or not negatives:
        raise ValueError(f"ROC needs both classes: {positives} anomalous and {negatives} normal clips")
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_labels = scores[order], labels[order]
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(scores) - 1]  # the last index of each distinct score
    tps = np.cumsum(sorted_labels)[last]
    fps = (last + 1) - tps
    return (np.r_[0.0, fps / negatives], np.r_[0.0, tps / positives], np.r_[np.inf, sorted_scores[last]])


def partial_area(fpr: np.ndarray, tpr: np.ndarray, max_fpr: float) -> float:
    """Raw area under the curve for FPR in [0, max_fpr] (trapezoids, linear interpolation at max_fpr)."""
    stop = int(np.searchsorted(fpr, max_fpr, side="right"))
    x, y = list(fpr[:stop]), list(tpr[:stop])
    if x[-1] < max_fpr:
        x.append(max_fpr)
        y.append(float(np.interp(max_fpr, fpr, tpr)))
    return float(np.trapezoid(y, x))


def auc(labels: np.ndarray, scores: np.ndarray) -> float:
    fpr, tpr, _ = roc_curve(labels, scores)
    return float(np.trapezoid(tpr, fpr))


def pauc(labels: np.ndarray, scores: np.ndarray, max_fpr: float = 0.1) -> float:
    """DCASE's pAUC: raw area over FPR in [0, max_fpr] divided by max_fpr (not McClish-standardised)."""
    fpr, tpr, _ = roc_curve(labels, scores)
    return partial_area(fpr, tpr, max_fpr) / max_fpr


def mcclish(raw_area: float, max_fpr: float) -> float:
    """McClish's standardisation of a raw partial area (scikit-learn's roc_auc_score(max_fpr=...))."""
    low, high = max_fpr ** 2 / 2, max_fpr
    return 0.5 * (1 + (raw_area - low) / (high - low))


def threshold_for_fpr(normal_scores: np.ndarray, fpr: float) -> float:
    """The smallest normal score with at most floor(fpr * n) normal scores above it (see the module's rule)."""
    ordered = np.sort(np.asarray(normal_scores, dtype=np.float64))
    allowed = math.floor(fpr * len(ordered) + 1e-9)
    return float(ordered[len(ordered) - 1 - allowed])


def confusion(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict:
    labels = np.asarray(labels).astype(bool)
    called = np.asarray(scores) > threshold
    tp, fp = int((called & labels).sum()), int((called & ~labels).sum())
    fn, tn = int((~called & labels).sum()), int((~called & ~labels).sum())
    return {"threshold": threshold, "tp": tp, "fp": fp, "tn": tn, "fn": fn,
            "false_alarm_rate": fp / max(1, fp + tn), "miss_rate": fn / max(1, fn + tp)}


def _figures(labels: np.ndarray, scores: np.ndarray, max_fpr: float) -> dict:
    fpr, tpr, _ = roc_curve(labels, scores)
    raw = partial_area(fpr, tpr, max_fpr)
    return {"auc": float(np.trapezoid(tpr, fpr)), "pauc": raw / max_fpr, "pauc_mcclish": mcclish(raw, max_fpr),
            "normal": int((labels == 0).sum()), "anomalous": int((labels == 1).sum())}


def evaluate(scores: np.ndarray, label: np.ndarray, machine: np.ndarray, kind: np.ndarray, machine_ids: list[str],
             kinds: tuple[str, ...], threshold: float | None = None, max_fpr: float = 0.1) -> dict:
    """Per machine id (its normals vs its anomalies), per anomaly kind (per machine id: its normals vs its anomalies
    of that kind, then averaged over ids), the mean over ids (DCASE's summary) and, given a threshold, the
    confusion over all clips."""
    per_id = {}
    per_kind: dict[str, list[dict]] = {}
    for index, name in enumerate(machine_ids):
        mine = machine == index
        if not (label[mine] == 1).any():
            continue
        per_id[name] = _figures(label[mine], scores[mine], max_fpr)
        for k, kind_name in enumerate(kinds):
            chosen = mine & ((kind == k) | (label == 0))
            if (label[chosen] == 1).any():
                per_kind.setdefault(kind_name, []).append(_figures(label[chosen], scores[chosen], max_fpr))
    mean = {key: float(np.mean([f[key] for f in per_id.values()])) for key in ("auc", "pauc", "pauc_mcclish")}
    result = {
        "mean_over_ids": mean,
        "per_machine_id": per_id,
        "per_kind": {name: {key: float(np.mean([f[key] for f in runs])) for key in ("auc", "pauc", "pauc_mcclish")}
                     for name, runs in per_kind.items()},
        "max_fpr": max_fpr,
    }
    if threshold is not None:
        result["confusion"] = confusion(label, scores, threshold)
    return result
