"""Losses: Equations 1-5 of 001 on hand-computed batches (no positives; positives >= negatives;
positives < negatives), MSE and BCE, the per-class (present, absent) form."""

import math

import numpy as np
import pytest
import torch

from musicperf.errors import ParameterError
from musicperf.train.losses import (
    bce_loss,
    class_weights,
    dbb_class_losses,
    dbb_factors,
    dbb_loss,
    elementwise_loss,
    mse_loss,
)

# batch of S_b = 4 samples, 3 classes:
#   class 0: no positives                 -> F = 0            (Eq. 1, first case)
#   class 1: 3 positives >= 1 negative    -> F = 1            (second case)
#   class 2: 1 positive  <  3 negatives   -> F = S_b / 1 = 4  (third case)
TARGETS = torch.tensor([[0, 1, 1], [0, 1, 0], [0, 1, 0], [0, 0, 0]], dtype=torch.float64)
PROBS = torch.tensor([[0.2, 0.9, 0.7], [0.1, 0.6, 0.2], [0.3, 0.8, 0.1], [0.4, 0.3, 0.4]], dtype=torch.float64)
LOGITS = torch.logit(PROBS)


def test_eq1_factors():
    assert dbb_factors(TARGETS).tolist() == [0.0, 1.0, 4.0]
    # 2 positives of 4: positives >= negatives -> 1; 1 positive of 5 -> 5
    assert dbb_factors(torch.tensor([[1.0], [1.0], [0.0], [0.0]])).tolist() == [1.0]
    assert dbb_factors(torch.tensor([[1.0], [0.0], [0.0], [0.0], [0.0]])).tolist() == [5.0]


def test_eq2_class_losses_mse():
    # class 1: positives (0.9, 0.6, 0.8) vs 1 -> (0.01 + 0.16 + 0.04) / 3 = 0.07; negative 0.3 vs 0 -> 0.09
    # class 2: positive 0.7 vs 1 -> 0.09; negatives (0.2, 0.1, 0.4) -> (0.04 + 0.01 + 0.16) / 3 = 0.07
    losses = dbb_class_losses(LOGITS, TARGETS, criterion="mse")
    assert torch.allclose(losses, torch.tensor([0.0, 0.16, 0.16], dtype=torch.float64))


def test_eq3_batch_loss_mse():
    # sum_c F_c * Loss_c = 0 * 0 + 1 * 0.16 + 4 * 0.16 = 0.80
    assert math.isclose(float(dbb_loss(LOGITS, TARGETS, criterion="mse")), 0.80, rel_tol=1e-12)


def test_eq4_eq5_class_weighted():
    # W = (0, 2, 5): class 1 -> 2 * 0.07 + 0.09 = 0.23; class 2 -> 4 * (5 * 0.09 + 0.07) = 2.08
    w = torch.tensor([0.0, 2.0, 5.0], dtype=torch.float64)
    assert math.isclose(float(dbb_loss(LOGITS, TARGETS, class_weights=w)), 0.23 + 2.08, rel_tol=1e-12)


def test_eq5_weights():
    # positives per class (2, 3, 5), total 10 -> W = (10/2, 10/3, 10/5); a class never positive gets 0
    t = np.zeros((6, 4))
    t[:2, 0] = 1
    t[:3, 1] = 1
    t[:5, 2] = 1
    assert np.allclose(class_weights(t).numpy(), [5.0, 10 / 3, 2.0, 0.0])


def test_eq2_bce():
    pos1 = -(math.log(0.9) + math.log(0.6) + math.log(0.8)) / 3
    neg1 = -math.log(1 - 0.3)
    pos2 = -math.log(0.7)
    neg2 = -(math.log(0.8) + math.log(0.9) + math.log(0.6)) / 3
    expected = (pos1 + neg1) + 4 * (pos2 + neg2)
    assert math.isclose(float(dbb_loss(LOGITS, TARGETS, criterion="bce")), expected, rel_tol=1e-9)


def test_no_negatives_and_smoothed_targets():
    # all positives: F = 1, Loss = criterion(positives) + 0 (empty negative set)
    t = torch.tensor([[1.0], [0.75]])
    p = torch.tensor([[0.5], [0.5]])
    expected = ((0.5 - 1) ** 2 + (0.5 - 0.75) ** 2) / 2
    assert math.isclose(float(dbb_loss(torch.logit(p), t)), expected, rel_tol=1e-6)
    # a smoothed target below pos_threshold is a negative
    assert dbb_factors(torch.tensor([[0.4], [0.0]])).tolist() == [0.0]
    assert dbb_factors(torch.tensor([[0.4], [0.0]]), pos_threshold=0.1).tolist() == [1.0]


def test_plain_losses():
    assert math.isclose(float(mse_loss(LOGITS, TARGETS)), float(((PROBS - TARGETS) ** 2).mean()), rel_tol=1e-12)
    bce = -(TARGETS * PROBS.log() + (1 - TARGETS) * (1 - PROBS).log()).mean()
    assert math.isclose(float(bce_loss(LOGITS, TARGETS)), float(bce), rel_tol=1e-9)


def test_per_class_present_absent_outputs():
    # 000: two outputs per class compared with (y, 1 - y): present 0.8, absent 0.4, y = 1
    logits = torch.logit(torch.tensor([[[0.8, 0.4]]], dtype=torch.float64))
    e = elementwise_loss(logits, torch.tensor([[1.0]], dtype=torch.float64), "mse")
    assert math.isclose(float(e), ((0.8 - 1) ** 2 + (0.4 - 0) ** 2) / 2, rel_tol=1e-12)


def test_gradients_flow_and_shapes_checked():
    logits = LOGITS.clone().requires_grad_(True)
    dbb_loss(logits, TARGETS).backward()
    assert torch.all(logits.grad[:, 0] == 0)  # class without positives contributes nothing
    assert torch.all(logits.grad[:, 1:] != 0)
    with pytest.raises(ParameterError, match="do not match"):
        dbb_loss(LOGITS[:, :2], TARGETS)
    with pytest.raises(ParameterError, match="criterion"):
        dbb_loss(LOGITS, TARGETS, criterion="hinge")
