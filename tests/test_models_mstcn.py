"""MS-TCN over whole sequences: learns a toy sequence, smoothing loss, masked training, clean-up."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from musicperf.errors import ParameterError
from musicperf.models.mstcn import (
    MSTCN,
    MSTCNConfig,
    clean_min_duration,
    fit_mstcn,
    mstcn_loss,
    predict_mstcn,
    smoothing_loss,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TINY = MSTCNConfig(stages=2, layers=4, channels=16, epochs=80, lr=1e-2, dropout=0.1, input_dropout=0.0)


def toy(rng, t=240):
    """Two overlapping classes in blocks; feature 0 shows class 0, feature 1 class 1 (noisy)."""
    y = np.zeros((t, 2), np.float32)
    for s in range(0, t, 60):
        y[s + 10 : s + 35, 0] = 1
        y[s + 25 : s + 50, 1] = 1
    x = np.concatenate([y + 0.4 * rng.standard_normal((t, 2)), rng.standard_normal((t, 2))], axis=1)
    return x.astype(np.float32), y


def test_forward_and_backward_on_a_tiny_input():
    model = MSTCN(5, 3, TINY)
    out = model(torch.randn(2, 5, 37))
    assert out.shape == (2, 2, 3, 37)
    mstcn_loss(out, torch.zeros(2, 3, 37), torch.ones(2, 1, 37)).backward()
    assert all(p.grad is not None for p in model.parameters())


def test_smoothing_loss_is_zero_for_a_constant_output_and_truncated():
    assert smoothing_loss(torch.full((1, 2, 10), 3.0)).item() == 0.0
    step = torch.tensor([[[-50.0] * 5 + [50.0] * 5]])  # log-probabilities jump by 50
    # one of 9 pairs differs, for both outcomes: each contributes tau^2 = 16 after truncation
    assert smoothing_loss(step, tau=4.0).item() == pytest.approx(16.0 / 9)
    small = torch.tensor([[[0.0, 0.1]]])
    d1 = torch.nn.functional.logsigmoid(torch.tensor(0.1)) - torch.nn.functional.logsigmoid(torch.tensor(0.0))
    d2 = torch.nn.functional.logsigmoid(torch.tensor(-0.1)) - torch.nn.functional.logsigmoid(torch.tensor(0.0))
    assert smoothing_loss(small).item() == pytest.approx(float((d1**2 + d2**2) / 2), rel=1e-5)


def test_smoothing_gradient_flows_to_the_later_frame_only():
    x = torch.tensor([[[0.0, 2.0]]], requires_grad=True)
    smoothing_loss(x).backward()
    assert x.grad[0, 0, 0] == 0.0 and x.grad[0, 0, 1] != 0.0


def test_masked_frames_do_not_count_in_the_classification_loss():
    logits = torch.zeros(1, 1, 1, 4)
    y = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    m = torch.tensor([[[1.0, 1.0, 0.0, 0.0]]])
    flipped = torch.tensor([[[1.0, 1.0, 1.0, 1.0]]])
    a = mstcn_loss(logits, y, m, smoothing=0.0)
    b = mstcn_loss(logits, flipped, m, smoothing=0.0)
    assert a.item() == pytest.approx(b.item()) == pytest.approx(float(np.log(2)))


def test_learns_a_toy_sequence_from_its_annotated_half(rng):
    x, y = toy(rng)
    mask = np.zeros(len(x), bool)
    mask[:120] = True
    model = fit_mstcn([x], [y], [mask], config=TINY)
    p = predict_mstcn(model, [x])[0]
    acc = ((p[120:] > 0.5) == (y[120:] > 0.5)).mean()
    assert acc > 0.85


def test_masked_training_ignores_wrong_labels_outside_the_mask(rng):
    x, y = toy(rng)
    poisoned = y.copy()
    poisoned[120:] = 1 - poisoned[120:]  # garbage outside the annotated part
    mask = np.zeros(len(x), bool)
    mask[:120] = True
    p = predict_mstcn(fit_mstcn([x], [poisoned], [mask], config=TINY), [x])[0]
    assert ((p[120:] > 0.5) == (y[120:] > 0.5)).mean() > 0.85


def test_clean_min_duration_fills_short_gaps_then_drops_short_runs():
    a = np.array([1, 1, 1, 0, 1, 1, 0, 0, 0, 1, 0, 0], bool)
    out = clean_min_duration(a, min_on=3, min_off=2)
    assert out.astype(int).tolist() == [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0]
    assert clean_min_duration(a).tolist() == a.tolist()
    two = clean_min_duration(np.stack([a, a], 1), min_on=np.array([1, 2]), min_off=1)
    assert two[:, 0].tolist() == a.tolist() and not two[9, 1]


def test_bad_configuration_raises():
    with pytest.raises(ParameterError, match="stages"):
        MSTCNConfig(stages=0)
    with pytest.raises(ParameterError, match="frames"):
        fit_mstcn([np.zeros((5, 2))], [np.zeros((4, 1))], [np.ones(5)], config=TINY)


def test_smoothing_counts_only_pairs_of_annotated_frames():
    x = torch.tensor([[[0.0, 0.0, 5.0, 5.0]]])
    assert smoothing_loss(x, mask=torch.tensor([[[1.0, 1.0, 0.0, 1.0]]])).item() == 0.0
    assert smoothing_loss(x, mask=torch.ones(1, 1, 4)).item() > 0.0
