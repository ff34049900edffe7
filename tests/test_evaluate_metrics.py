"""Multilabel metrics on hand-counted predictions; averages as in Tables 3-4 of 000."""

import subprocess
import sys

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.evaluate.metrics import (
    binarize,
    cohen_kappa,
    confusion_matrices,
    multilabel_report,
    tune_thresholds,
)

# class a: tp 2, fp 1, fn 1, tn 1;  class b: no positives, one false positive;
# class c: one positive, never predicted
Y = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 0], [0, 0, 0], [1, 0, 0]])
P = np.array([[1, 0, 0], [0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 0, 0]])


def test_per_class_counts_and_scores():
    r = multilabel_report(Y, P, classes=["a", "b", "c"])
    a, b, c = (r["per_class"][k] for k in "abc")
    assert (a["tp"], a["fp"], a["fn"], a["tn"]) == (2, 1, 1, 1)
    assert a["precision"] == pytest.approx(2 / 3) and a["recall"] == pytest.approx(2 / 3) and a["f1"] == pytest.approx(2 / 3)
    assert a["accuracy"] == pytest.approx(3 / 5) and a["support"] == 3
    assert np.isnan(b["f1"]) and np.isnan(b["recall"]) and b["accuracy"] == pytest.approx(4 / 5)
    assert (c["precision"], c["recall"], c["f1"]) == (0.0, 0.0, 0.0)  # the papers' 0.000 rows
    assert r["absent_classes"] == ["b"]


def test_averages_exclude_and_zero_policies():
    r = multilabel_report(Y, P)
    assert r["macro"]["f1"] == pytest.approx((2 / 3 + 0) / 2)  # b (no positives) left out
    assert r["macro"]["accuracy"] == pytest.approx((3 / 5 + 4 / 5 + 4 / 5) / 3)
    assert r["weighted"]["f1"] == pytest.approx((3 * 2 / 3 + 1 * 0) / 4)
    # micro pools counts: tp 2, fp 2 (a, b), fn 2 (a, c)
    assert r["micro"]["precision"] == pytest.approx(0.5) and r["micro"]["f1"] == pytest.approx(0.5)
    z = multilabel_report(Y, P, absent="zero")
    assert z["macro"]["f1"] == pytest.approx((2 / 3 + 0 + 0) / 3)


def test_average_is_mean_of_per_class_f1_as_in_the_papers():
    # Table 4 of 000 (test set): its "Average" F1 0.386 is the mean of the 18 per-class F1 values
    table4_f1 = [0.143, 0.400, 0.038, 0.677, 0.400, 0.762, 0.646, 0.667, 0.667, 0.000,
                 0.267, 0.377, 0.769, 0.348, 0.516, 0.182, 0.000, 0.091]
    assert round(float(np.mean(table4_f1)), 3) == 0.386
    # and macro F1 is that mean, not the F1 of the mean precision and recall
    y = np.array([[1, 1], [1, 0], [0, 1], [0, 1]])
    p = np.array([[1, 1], [1, 1], [1, 0], [0, 0]])
    r = multilabel_report(y, p)
    f1s = [r["per_class"][c]["f1"] for c in r["classes"]]
    assert r["macro"]["f1"] == pytest.approx(np.mean(f1s))
    mp, mr = r["macro"]["precision"], r["macro"]["recall"]
    assert r["macro"]["f1"] != pytest.approx(2 * mp * mr / (mp + mr))


def test_confusion_matrices_layout():
    cm = confusion_matrices(Y, P)
    assert cm.shape == (3, 2, 2)
    assert cm[0].tolist() == [[1, 1], [1, 2]]  # [[TN, FP], [FN, TP]]
    assert cm[1].tolist() == [[4, 1], [0, 0]]
    assert cm.sum(axis=(1, 2)).tolist() == [5, 5, 5]


def test_thresholds_scalar_per_class_and_tuned():
    scores = np.array([[0.9, 0.3], [0.6, 0.35], [0.55, 0.1], [0.2, 0.32]])
    y = np.array([[1, 1], [1, 1], [0, 0], [0, 1]])
    assert binarize(scores, 0.5).tolist() == [[True, False], [True, False], [True, False], [False, False]]
    assert binarize(scores, [0.7, 0.3]).tolist() == [[True, True], [False, True], [False, False], [False, True]]
    th = tune_thresholds(y, scores)
    # class 0: best cut between 0.6 and 0.55; class 1: between 0.3 and 0.1 (all three positives)
    assert th[0] == pytest.approx(0.575) and th[1] == pytest.approx(0.2)
    r = multilabel_report(y, scores, threshold=th)
    assert r["macro"]["f1"] == 1.0 and r["threshold"] == pytest.approx(list(th))
    assert tune_thresholds(np.zeros((3, 1)), np.random.default_rng(0).random((3, 1)))[0] == 0.5


def test_cohen_kappa_hand_computed():
    # p_o = 0.75; marginals a: 0.5/0.5, b: 0.75/0.25 -> p_e = 0.5 -> kappa = 0.5
    assert cohen_kappa([1, 1, 0, 0], [1, 0, 0, 0]) == pytest.approx(0.5)
    assert cohen_kappa(["x", "y", "z"], ["x", "y", "z"]) == pytest.approx(1.0)
    assert cohen_kappa([1, 1], [1, 1]) == 1.0
    k = cohen_kappa(np.array([[1, 0], [1, 1], [0, 0], [0, 1]]), np.array([[1, 0], [0, 1], [0, 0], [0, 1]]))
    assert k.shape == (2,) and k[1] == pytest.approx(1.0) and k[0] == pytest.approx(0.5)


def test_validation_messages():
    with pytest.raises(ParameterError, match="binary"):
        multilabel_report(np.full((2, 1), 0.5), np.zeros((2, 1)))
    with pytest.raises(ParameterError, match="must both be"):
        multilabel_report(np.zeros((2, 2)), np.zeros((3, 2)))
    with pytest.raises(ParameterError, match="threshold"):
        multilabel_report(np.zeros((2, 2)), np.zeros((2, 2)), threshold=[0.5, 0.5, 0.5])


def test_metrics_do_not_import_torch():
    code = "import sys, musicperf.evaluate.metrics; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
