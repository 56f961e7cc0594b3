"""ROC AUC and pAUC against scikit-learn (an independent implementation) and a hand-worked case."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score

from mcuforge.ml import anomaly_metrics as am


def test_hand_worked_case():
    # scores: normals 0.1 0.2 0.3 0.6, anomalies 0.4 0.7 0.8 0.9 (descending: 0.9a 0.8a 0.7a 0.6n 0.4a 0.3n 0.2n 0.1n)
    # ROC points: (0,0) (0,.25) (0,.5) (0,.75) (.25,.75) (.25,1) (.5,1) (.75,1) (1,1): AUC = 1 - .25 x .25 = 0.9375
    # FPR <= 0.1: TPR is 0.75 from FPR 0 to 0.25, so the raw area is 0.075 and DCASE's pAUC 0.75
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    assert am.auc(labels, scores) == pytest.approx(0.9375)
    assert am.pauc(labels, scores, 0.1) == pytest.approx(0.75)
    # threshold at 25 % false alarms on these normals: one of four may be above -> 0.3; 0.6 is then called anomalous
    threshold = am.threshold_for_fpr(scores[:4], 0.25)
    assert threshold == 0.3
    c = am.confusion(labels, scores, threshold)
    assert (c["tp"], c["fp"], c["tn"], c["fn"]) == (4, 1, 3, 0)


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 60), st.integers(2, 60), st.integers(0, 2**31 - 1), st.sampled_from([0.05, 0.1, 0.3, 1.0]),
       st.booleans())
def test_against_scikit_learn(normals, anomalies, seed, max_fpr, ties):
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(normals, int), np.ones(anomalies, int)]
    scores = rng.normal(size=normals + anomalies) + labels * rng.uniform(0, 2)
    if ties:
        scores = np.round(scores, 0)
    fpr, tpr, _ = am.roc_curve(labels, scores)
    assert am.auc(labels, scores) == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    raw = am.partial_area(fpr, tpr, max_fpr)
    if max_fpr < 1:
        # scikit-learn's max_fpr is McClish-standardised: compare our raw area through the same formula
        assert am.mcclish(raw, max_fpr) == pytest.approx(roc_auc_score(labels, scores, max_fpr=max_fpr), abs=1e-12)
    else:
        assert raw == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)


def test_threshold_rule_meets_the_target_false_alarm_rate():
    normals = np.random.default_rng(0).normal(size=160)
    threshold = am.threshold_for_fpr(normals, 0.1)
    assert (normals > threshold).sum() == 16


def test_evaluate_per_id_and_kind():
    rng = np.random.default_rng(1)
    machine = np.repeat([0, 1], 40)
    kind = np.tile(np.r_[np.full(20, -1), np.repeat([0, 1], 10)], 2)
    label = (kind >= 0).astype(int)
    scores = rng.normal(size=80) + (kind == 0) * 5.0  # kind 0 separable, kind 1 not
    result = am.evaluate(scores, label, machine, kind, ["a", "b"], ("loud", "quiet"), threshold=2.0)
    assert result["per_kind"]["loud"]["auc"] == 1.0
    assert result["per_kind"]["quiet"]["auc"] < 0.9
    for index, name in enumerate(["a", "b"]):
        mine = machine == index
        assert result["per_machine_id"][name]["auc"] == pytest.approx(roc_auc_score(label[mine], scores[mine]))
    assert result["confusion"]["tp"] + result["confusion"]["fn"] == 40
