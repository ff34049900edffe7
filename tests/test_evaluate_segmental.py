"""Segmental F1@k and edit score (MS-TCN definitions) against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.evaluate.segmental import edit_score, f1_counts, segmental_scores, segments


def test_segments_are_the_runs_of_present_frames():
    assert segments(np.array([1, 1, 0, 1, 0, 0, 1])).tolist() == [[0, 2], [3, 4], [6, 7]]
    assert segments(np.zeros(5)).shape == (0, 2)


def test_f1_at_k_matches_a_hand_computation():
    # reference runs [1,4) and [6,8); prediction runs [1,3) (IoU 2/3) and [7,10) (IoU 1/4).
    ref = np.array([0, 1, 1, 1, 0, 0, 1, 1, 0, 0])
    pred = np.array([0, 1, 1, 0, 0, 0, 0, 1, 1, 1])
    assert f1_counts(ref, pred, 0.10) == (2, 0, 0)
    assert f1_counts(ref, pred, 0.25) == (2, 0, 0)  # 1/4 >= 0.25
    assert f1_counts(ref, pred, 0.50) == (1, 1, 1)
    row = segmental_scores(ref, pred, classes=["A"])["per_class"]["A"]
    assert row["f1@10"] == row["f1@25"] == 1.0
    assert row["f1@50"] == pytest.approx(0.5)
    assert row["edit"] == 1.0


def test_a_reference_segment_is_claimed_once_and_fragments_cost_edit():
    # One reference run [0,10); the prediction splits it in three: only one may match.
    ref = np.r_[np.ones(10), np.zeros(2)]
    pred = np.r_[np.ones(4), 0, np.ones(2), 0, np.ones(2), np.zeros(2)]
    tp, fp, fn = f1_counts(ref, pred, 0.10)
    assert (tp, fp, fn) == (1, 2, 0)
    row = segmental_scores(ref, pred)["per_class"]["0"]
    assert row["f1@10"] == pytest.approx(2 * 1 / (2 + 2 + 0))
    assert row["f1@50"] == 0.0  # best IoU 4/10
    assert edit_score(ref, pred) == pytest.approx(1 - 2 / 3)


def test_empty_classes_are_undefined_and_left_out_of_the_macro_average():
    t = np.zeros((6, 2))
    p = np.zeros((6, 2))
    t[1:3, 0] = p[1:3, 0] = 1
    p[4:6, 1] = 1  # class 1: a prediction without reference
    r = segmental_scores(t, p, classes=["a", "b"])
    assert r["per_class"]["b"]["f1@50"] == 0.0 and r["per_class"]["b"]["edit"] == 0.0
    assert r["macro"]["f1@50"] == 1.0 and r["macro"]["edit"] == 1.0
    both_empty = segmental_scores(np.zeros(4), np.zeros(4))["per_class"]["0"]
    assert both_empty["f1@25"] is None and both_empty["edit"] is None


def test_shapes_must_agree():
    with pytest.raises(ParameterError, match="shape"):
        segmental_scores(np.zeros((4, 2)), np.zeros((5, 2)))
