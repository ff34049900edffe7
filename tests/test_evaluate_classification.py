"""Hit@k, accuracy, confusion matrix and macro F1 on hand-computed cases."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.evaluate.classification import (
    accuracy,
    chance_accuracy,
    classification_report,
    confusion_matrix,
    f1_macro,
    hit_at_k,
    per_class_prf,
    predictions,
)

# 5 samples, 4 classes; ranks of the reference class: 1, 2, 3, 1, 4
Y = np.array([0, 1, 2, 3, 0])
S = np.array([
    [0.7, 0.1, 0.1, 0.1],   # ref 0 ranked 1st
    [0.5, 0.3, 0.1, 0.1],   # ref 1 ranked 2nd
    [0.4, 0.3, 0.2, 0.1],   # ref 2 ranked 3rd
    [0.0, 0.1, 0.2, 0.7],   # ref 3 ranked 1st
    [0.1, 0.2, 0.3, 0.4],   # ref 0 ranked 4th
])


def test_hit_at_k_counts_ranks():
    assert hit_at_k(Y, S, 1) == pytest.approx(2 / 5)
    assert hit_at_k(Y, S, 2) == pytest.approx(3 / 5)
    assert hit_at_k(Y, S, 3) == pytest.approx(4 / 5)
    assert hit_at_k(Y, S, 4) == 1.0
    assert hit_at_k(Y, S, 10) == 1.0


def test_hit1_equals_accuracy_with_ties():
    s = np.array([[0.5, 0.5, 0.0], [0.2, 0.4, 0.4]])
    y = np.array([1, 2])
    # ties go to the lowest index for both the prediction and the ranking
    assert predictions(s).tolist() == [0, 1]
    assert hit_at_k(y, s, 1) == accuracy(y, predictions(s)) == 0.0
    assert hit_at_k(y, s, 2) == 1.0


def test_confusion_and_f1_by_hand():
    pred = predictions(S)           # [0, 0, 0, 3, 3]
    cm = confusion_matrix(Y, pred, 4)
    assert cm.tolist() == [[1, 0, 0, 1], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 1]]
    prf = per_class_prf(cm)
    # class 0: P = 1/3, R = 1/2, F1 = 0.4; class 3: P = 1/2, R = 1, F1 = 2/3; classes 1, 2: 0
    np.testing.assert_allclose(prf["f1"], [0.4, 0.0, 0.0, 2 / 3])
    assert f1_macro(Y, pred, 4) == pytest.approx((0.4 + 2 / 3) / 4)


def test_f1_macro_excludes_classes_absent_from_reference():
    y = np.array([0, 0, 1, 1])
    p = np.array([0, 0, 1, 2])      # class 2 never a reference: left out of the mean
    # class 0: F1 1; class 1: P 1, R 0.5 -> 2/3
    assert f1_macro(y, p, 3) == pytest.approx((1 + 2 / 3) / 2)


def test_report_keys_and_values():
    r = classification_report(Y, S, classes=["a", "b", "c", "d"])
    assert r["n"] == 5 and r["accuracy"] == pytest.approx(0.4)
    assert r["hit@1"] == pytest.approx(0.4) and r["hit@3"] == pytest.approx(0.8)
    assert r["per_class"]["d"]["recall"] == 1.0 and r["per_class"]["b"]["support"] == 1
    assert np.asarray(r["confusion"]).sum() == 5


def test_chance_accuracy():
    assert chance_accuracy([0, 0, 0, 1], 3) == 0.75


def test_bad_inputs_say_what_is_wrong():
    with pytest.raises(ParameterError, match="one-hot"):
        hit_at_k(np.eye(3), np.eye(3))
    with pytest.raises(ParameterError, match="outside"):
        hit_at_k([0, 5], np.zeros((2, 3)))
    with pytest.raises(ParameterError, match="samples"):
        hit_at_k([0, 1], np.zeros((3, 3)))
    with pytest.raises(ParameterError, match="class names"):
        classification_report([0], np.zeros((1, 2)), classes=["a"])


def test_empty_input_warns_and_scores_zero():
    with pytest.warns(UserWarning):
        assert hit_at_k(np.zeros(0, int), np.zeros((0, 3)), 1) == 0.0
