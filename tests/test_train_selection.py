"""Automatic model choice by blocked cross-validation, and the candidates it compares."""

from __future__ import annotations

import numpy as np
import pytest

from musicperf.errors import ParameterError
from musicperf.models.mstcn import MSTCNConfig
from musicperf.train.candidates import ConstantLabeller, LightGBMLabeller, MSTCNLabeller, window_statistics
from musicperf.train.selection import blocked_folds, fit_selection, select_models

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = MSTCNConfig(stages=2, layers=4, channels=16, epochs=40, lr=1e-2, dropout=0.1, input_dropout=0.0)
CANDIDATES = {"mstcn": lambda: MSTCNLabeller(TINY, step=1)}


def blocks(rng, t=320, period=40, duty=0.7):
    """Class 0 present ``duty`` of each period (a constant 'always' scores F1 0.82)."""
    y = np.zeros((t, 1), np.float32)
    for s in range(0, t, period):
        y[s : s + int(duty * period), 0] = 1
    return y


def test_blocked_folds_hold_out_contiguous_blocks_with_a_guard():
    m = np.zeros(20, bool)
    m[2:14] = True
    folds = blocked_folds([m], n_folds=3, guard=1)
    assert len(folds) == 3
    train, val = folds[1]
    assert np.flatnonzero(val[0]).tolist() == [6, 7, 8, 9]
    assert np.flatnonzero(train[0]).tolist() == [2, 3, 4, 11, 12, 13]  # 5 and 10 are the guard
    assert sum(v[0].sum() for _, v in folds) == 12
    with pytest.raises(ParameterError, match="n_folds"):
        blocked_folds([m], n_folds=1)


def test_choice_is_the_constant_when_the_features_are_noise(rng):
    y = blocks(rng)
    x = rng.standard_normal((len(y), 3)).astype(np.float32)
    mask = np.ones(len(y), bool)
    sel = select_models({"noise": [x]}, [y], [mask], classes=["lifted"], candidates=CANDIDATES, n_folds=3)
    best = sel.best["lifted"]
    assert best["constant"] == "constant-always"
    assert best["constant_f1"] == pytest.approx(2 * 0.7 / 1.7, abs=0.01)
    assert not best["learnable"] and best["model"] == "constant-always"
    assert "not learnable" in sel.format_table()


def test_choice_is_the_model_when_the_features_carry_the_signal(rng):
    y = blocks(rng)
    x = np.concatenate([y + 0.3 * rng.standard_normal(y.shape), rng.standard_normal((len(y), 2))], axis=1)
    mask = np.ones(len(y), bool)
    mask[240:] = False  # the rest is to be labelled
    sel = select_models({"all": [x]}, [y], [mask], classes=["lifted"], candidates=CANDIDATES, n_folds=3)
    best = sel.best["lifted"]
    assert best["learnable"] and best["model"] == "mstcn" and best["features"] == "all"
    assert best["f1"] > best["constant_f1"] + 0.1
    labeller = fit_selection(sel, {"all": [x]}, [y], [mask], candidates=CANDIDATES)
    pred = labeller.predict({"all": [x]})[0]
    assert (pred[240:, 0] == (y[240:, 0] > 0.5)).mean() > 0.9
    assert labeller.status == {"lifted": "model"}
    rows = [r["model"] for r in sel.table]
    assert rows == ["constant-always", "constant-never", "mstcn"]


def test_a_class_never_annotated_present_is_the_constant_never(rng):
    y = np.zeros((80, 1), np.float32)
    sel = select_models({"a": [rng.standard_normal((80, 2))]}, [y], [np.ones(80, bool)], classes=["x"],
                        candidates={}, n_folds=2)
    assert sel.best["x"]["model"] == "constant-never" and not sel.best["x"]["learnable"]


def test_constant_labeller_and_window_statistics():
    c = ConstantLabeller("never").fit([np.zeros((4, 1))], [np.zeros((4, 2))], [np.ones(4)])
    assert c.predict([np.zeros((3, 1))])[0].shape == (3, 2) and not c.predict([np.zeros((3, 1))])[0].any()
    with pytest.raises(ParameterError):
        ConstantLabeller("sometimes")
    x = np.arange(10, dtype=float)[:, None]
    w = window_statistics(x, fps=3.0, windows=(1.0,))  # 3-frame windows
    assert w.shape == (10, 6)
    assert w[5].tolist() == pytest.approx([5, 5, np.sqrt(2 / 3), 4, 6, 1.0])  # x, mean, std, min, max, trend


def test_lightgbm_labeller_learns_the_signal(rng):
    pytest.importorskip("lightgbm")
    y = blocks(rng)
    x = np.concatenate([y + 0.3 * rng.standard_normal(y.shape), rng.standard_normal((len(y), 1))], axis=1)
    mask = np.zeros(len(y), bool)
    mask[:200] = True
    lab = LightGBMLabeller(fps=10.0, params={"num_iterations": 30, "num_threads": 1}).fit([x], [y], [mask])
    pred = lab.predict([x])[0]
    assert (pred[200:, 0] == (y[200:, 0] > 0.5)).mean() > 0.9


def test_ensemble_averages_its_members_and_global_choice_uses_one_candidate(rng):
    from musicperf.train.candidates import EnsembleLabeller

    y = blocks(rng, t=120)
    ens = EnsembleLabeller([lambda: ConstantLabeller("always"), lambda: ConstantLabeller("never")])
    p = ens.fit([y], [y], [np.ones(120, bool)]).predict_proba([y])[0]
    assert np.allclose(p, 0.5)
    # Two candidates: "good" sees the signal, "bad" predicts the opposite of class 0.
    x = np.concatenate([y + 0.3 * rng.standard_normal(y.shape)], axis=1)
    cands = {"good": lambda: MSTCNLabeller(TINY, step=1), "bad": lambda: ConstantLabeller("never")}
    y2 = np.concatenate([y, y], axis=1)
    sel = select_models({"x": [x]}, [y2], [np.ones(120, bool)], classes=["a", "b"], candidates=cands, n_folds=3)
    assert sel.choice == "global" and {b["model"] for b in sel.best.values()} == {"good"}
    with pytest.raises(ParameterError, match="choice"):
        select_models({"x": [x]}, [y2], [np.ones(120, bool)], classes=["a", "b"], candidates=cands, choice="any")


def test_column_auc_and_logistic_regression_match_their_definitions(rng):
    from musicperf.train.candidates import column_auc, fit_logistic

    t = np.array([0, 0, 1, 1, 0, 1], bool)
    rows = np.column_stack([t.astype(float), -t.astype(float), np.ones(6), [1, 2, 3, 4, 5, 6]])
    auc = column_auc(rows, t)
    assert auc[0] == 1.0 and auc[1] == 0.0 and auc[2] == 0.5  # ties count half
    assert auc[3] == pytest.approx(7 / 9)  # pairs (pos > neg): 3 with 6; 4 with 1, 2, 5... counted by hand
    with pytest.raises(ParameterError, match="positive and negative"):
        column_auc(rows, np.ones(6, bool))
    # Newton's method reaches the optimum: the weighted, penalised gradient is zero there.
    x = rng.standard_normal((200, 3))
    y = (x[:, 0] + 0.5 * rng.standard_normal(200) > 0.3).astype(float)
    w = np.where(y > 0, 2.0, 0.5)
    beta = fit_logistic(x, y, weight=w, C=0.7)
    a = np.column_stack([np.ones(200), x])
    p = 1 / (1 + np.exp(-a @ beta))
    grad = 0.7 * a.T @ (w * (p - y)) + np.r_[0.0, beta[1:]]
    assert np.abs(grad).max() < 1e-6
    assert beta[1] > 1.0 and abs(beta[2]) < 0.5  # the informative column carries the model


def test_linear_labeller_keeps_the_separating_column_and_extrapolates(rng):
    from musicperf.train.candidates import SparseLinearLabeller

    t = 400
    y = np.zeros((t, 1), np.float32)
    pos = np.zeros(t)
    # One annotated event (frames 60-90) with the hand at 1.0; later the hand goes further (2.0).
    y[60:90, 0] = 1
    y[300:340, 0] = 1
    pos[60:90] = 1.0
    pos[300:340] = 2.0
    # 30 distractors; one of them happens to be high during the annotated event only.
    noise = rng.standard_normal((t, 30))
    noise[60:90, 5] += 3.0
    x = np.column_stack([noise[:, :5], pos + 0.05 * rng.standard_normal(t), noise[:, 5:]])
    mask = np.zeros(t, bool)
    mask[:200] = True
    lab = SparseLinearLabeller(fps=10.0, k=2).fit([x], [y], [mask])
    assert 5 in lab.columns[0]  # the hand's position (column 5) is among the kept columns
    pred = lab.predict([x])[0][:, 0]
    assert pred[305:335].mean() > 0.9 and pred[200:290].mean() < 0.1


def test_ensembles_are_scored_from_their_members_without_training_again(rng):
    from musicperf.train.candidates import EnsembleLabeller, SparseLinearLabeller

    y = blocks(rng, t=240)
    x = np.concatenate([y + 0.8 * rng.standard_normal(y.shape), rng.standard_normal((len(y), 2))], axis=1)
    fits = []

    class Counting(SparseLinearLabeller):
        def fit(self, X, Y, M):
            fits.append(self.k)
            return super().fit(X, Y, M)

    a = lambda: Counting(fps=10.0, k=1)  # noqa: E731
    b = lambda: Counting(fps=10.0, k=3)  # noqa: E731
    shared = {"a": a, "b": b, "a+b": lambda: EnsembleLabeller([a, b], name="a+b")}
    own = {"a+b": lambda: EnsembleLabeller([lambda: Counting(fps=10.0, k=1), lambda: Counting(fps=10.0, k=3)])}
    mask = np.ones(len(y), bool)
    s1 = select_models({"x": [x]}, [y], [mask], classes=["c"], candidates=shared, n_folds=3)
    assert len(fits) == 6  # a and b, three folds each: the ensemble trained nothing
    fits.clear()
    s2 = select_models({"x": [x]}, [y], [mask], classes=["c"], candidates=own, n_folds=3)
    assert len(fits) == 6  # members fitted inside the ensemble
    row1 = next(r for r in s1.table if r["model"] == "a+b")
    row2 = next(r for r in s2.table if r["model"] == "a+b")
    assert row1["f1"] == row2["f1"] and row1["edit"] == row2["edit"]


class _Column:
    """A fake candidate: the probability is column ``j`` of the features."""

    cleanup = None

    def __init__(self, j):
        self.j = j

    def fit(self, X, Y, M):
        return self

    def predict_proba(self, X):
        return [np.repeat(x[:, self.j : self.j + 1], 1, axis=1) for x in X]

    def predict(self, X):
        return [p >= 0.5 for p in self.predict_proba(X)]


def test_the_simplest_model_is_kept_unless_another_is_clearly_better(rng):
    y = blocks(rng, t=300)
    flips = np.zeros(len(y), bool)
    flips[rng.choice(len(y), 12, replace=False)] = True
    slightly = np.where(flips[:, None], 1 - y, y)  # a few wrong frames: F1 about 0.97
    x = np.concatenate([y, slightly], axis=1)
    mask = np.ones(len(y), bool)
    cands = {"linear": lambda: _Column(1), "big": lambda: _Column(0)}
    sel = select_models({"x": [x]}, [y], [mask], classes=["c"], candidates=cands, n_folds=3)
    assert sel.best["c"]["model"] == "linear" and sel.prefer == "linear"
    assert "models using 'linear' kept unless another is better by 0.05" in sel.format_table()
    assert select_models({"x": [x]}, [y], [mask], classes=["c"], candidates=cands, n_folds=3,
                         prefer=None).best["c"]["model"] == "big"
    # An ensemble with the preferred model as a member counts as using it.
    family = {"mstcn+linear": lambda: _Column(1), "big": lambda: _Column(0)}
    assert select_models({"x": [x]}, [y], [mask], classes=["c"], candidates=family,
                         n_folds=3).best["c"]["model"] == "mstcn+linear"
    assert select_models({"x": [x]}, [y], [mask], classes=["c"], candidates=cands, n_folds=3, choice="class",
                         prefer_margin=0.0).best["c"]["model"] == "big"
    # Clearly better (a quarter of the frames wrong for the simple one): the other is chosen.
    flips[rng.choice(len(y), 75, replace=False)] = True
    x[:, 1] = np.where(flips, 1 - y[:, 0], y[:, 0])
    assert select_models({"x": [x]}, [y], [mask], classes=["c"], candidates=cands,
                         n_folds=3).best["c"]["model"] == "big"


class _Refuses(_Column):
    def fit(self, X, Y, M):
        from musicperf.errors import ParameterError

        raise ParameterError("no run of 16 annotated frames")


def test_a_candidate_that_cannot_learn_is_left_out_with_a_note(rng):
    from musicperf.train.candidates import EnsembleLabeller

    y = blocks(rng, t=120)
    x = np.concatenate([y, y], axis=1)
    a = lambda: _Column(0)  # noqa: E731
    b = lambda: _Refuses(0)  # noqa: E731
    cands = {"a": a, "b": b, "a+b": lambda: EnsembleLabeller([a, b], name="a+b")}
    sel = select_models({"x": [x]}, [y], [np.ones(120, bool)], classes=["c"], candidates=cands, n_folds=3)
    assert sel.best["c"]["model"] == "a"
    assert [r["f1"] for r in sel.table if r["model"] in ("b", "a+b")] == [None, None]
    assert "b/x left out: no run of 16 annotated frames" in sel.format_table()
    assert "a+b/x left out" in sel.format_table()


def test_window_features_predicted_in_blocks_equal_the_whole(rng):
    from musicperf.train.candidates import SparseLinearLabeller, blockwise

    x = rng.standard_normal((1000, 3))
    whole = window_statistics(x, fps=10.0, windows=(0.5, 2.0))
    parts = blockwise(lambda z: window_statistics(z, fps=10.0, windows=(0.5, 2.0)), x, margin=11, block=128)
    np.testing.assert_allclose(parts, whole, atol=1e-5)
    y = blocks(rng, t=1000)
    lab = SparseLinearLabeller(fps=10.0, k=2).fit([x + y], [y], [np.ones(1000, bool)])
    one = lab.predict_proba([x + y])[0]
    import musicperf.train.candidates as cand

    small = lambda fn, z, margin: blockwise(fn, z, margin=margin, block=100)  # noqa: E731
    old, cand.blockwise = cand.blockwise, small
    try:
        np.testing.assert_allclose(lab.predict_proba([x + y])[0], one, atol=1e-9)
    finally:
        cand.blockwise = old


def test_training_reads_only_the_annotated_rows_and_moments_match(rng):
    from musicperf.train.candidates import moments, rows_at, standardise

    x = rng.standard_normal((900, 4))
    x[::7, 1] = np.nan
    x[:, 3] = np.nan  # never found
    _, m0, s0 = standardise([x[:500], x[500:]])
    m1, s1 = moments([x[:500], x[500:]], block=64)
    np.testing.assert_allclose(m1, m0, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(s1, s0, rtol=1e-10)
    fn = lambda z: window_statistics(np.nan_to_num(z), fps=10.0, windows=(0.5, 2.0))  # noqa: E731
    rows = np.array([0, 5, 130, 131, 640, 899])
    np.testing.assert_allclose(rows_at(fn, x, rows, margin=11, block=128), fn(x)[rows], atol=1e-5)
    # The LightGBM labeller trained on a prefix predicts as when the whole video's features are built.
    y = blocks(rng, t=900)
    z = np.concatenate([y + 0.3 * rng.standard_normal(y.shape), rng.standard_normal((900, 1))], axis=1)
    mask = np.zeros(900, bool)
    mask[:300] = True
    lab = LightGBMLabeller(fps=10.0, params={"num_iterations": 20, "num_threads": 1}).fit([z], [y], [mask])
    assert (lab.predict([z])[0][300:, 0] == (y[300:, 0] > 0.5)).mean() > 0.9
