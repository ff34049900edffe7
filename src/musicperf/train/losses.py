"""Losses for multi-label gesture training: MSE (the papers' choice), BCE and Dynamic Batch Balance.

Dynamic Batch Balance (DBB) is Section 4.2 of ``001``, Equations 1-5. Every function here is pure
and works on a batch of logits; the sigmoid is applied inside (MSE compares probabilities with
targets as in the papers; BCE uses the numerically stable logits form).

Shapes: logits ``(B, K)`` for the single-model design, or ``(B, K, 2)`` present/absent logits for
the per-class design of ``000`` (whose targets are ``(y, 1 - y)``); targets ``(B, K)`` in [0, 1]
(binary, or temporally smoothed by Equation 6 of ``001``).

Choices where ``001`` is silent (documented in docs/models.md):

* a sample is a *positive* of class ``c`` when its target is ``>= pos_threshold`` (0.5), which
  matters only for smoothed targets; the same threshold binarises predictions in evaluation;
* ``criterion(Pred(S), Target(S))`` is the mean over the set ``S`` (PyTorch's default
  ``reduction="mean"``), and 0 for an empty set (Equation 2 with no negatives);
* a class with no positive in the whole training set gets weight ``W^c = 0`` in Equation 5 (it
  would be infinite; such a class has ``F_b^c = 0`` in every batch anyway).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F

from musicperf.errors import ParameterError

Criterion = Literal["mse", "bce"]


def _check(logits: torch.Tensor, targets: torch.Tensor) -> None:
    if targets.ndim != 2 or logits.shape[:2] != targets.shape or logits.ndim not in (2, 3) or (logits.ndim == 3 and logits.shape[2] != 2):
        raise ParameterError(
            f"logits {tuple(logits.shape)} and targets {tuple(targets.shape)} do not match; "
            "expected (B, K) or (B, K, 2) logits for (B, K) targets"
        )


def elementwise_loss(logits: torch.Tensor, targets: torch.Tensor, criterion: Criterion = "mse") -> torch.Tensor:
    """Per-sample, per-class loss ``(B, K)``.

    Parameters
    ----------
    logits : Tensor, shape (B, K) or (B, K, 2)
    targets : Tensor, shape (B, K), values in [0, 1]
    criterion : {"mse", "bce"}
        ``"mse"``: ``(sigmoid(logits) - targets) ** 2``; ``"bce"``: binary cross-entropy with logits.
        For ``(B, K, 2)`` logits the two outputs are compared with ``(y, 1 - y)`` and averaged.
    """
    _check(logits, targets)
    targets = targets.to(logits.dtype)
    if logits.ndim == 3:
        targets = torch.stack([targets, 1 - targets], dim=-1)
    if criterion == "mse":
        e = (torch.sigmoid(logits) - targets) ** 2
    elif criterion == "bce":
        e = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    else:
        raise ParameterError(f"criterion {criterion!r} is not 'mse' or 'bce'")
    return e.mean(dim=-1) if logits.ndim == 3 else e


def mse_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Mean squared error between ``sigmoid(logits)`` and targets over all samples and classes
    (the loss of ``000`` Section 4 and ``001`` Section 5.3); a scalar."""
    return elementwise_loss(logits, targets, "mse").mean()


def bce_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy with logits, averaged over samples and classes; a scalar."""
    return elementwise_loss(logits, targets, "bce").mean()


def positives(targets: torch.Tensor, pos_threshold: float = 0.5) -> torch.Tensor:
    """Boolean ``(B, K)``: which samples are positives of each class (``target >= pos_threshold``)."""
    return targets >= pos_threshold


def dbb_factors(targets: torch.Tensor, *, pos_threshold: float = 0.5) -> torch.Tensor:
    """Loss factor ``F_b^c`` of each class in a batch: Equation 1 of ``001``.

    .. math::
        F_b^c = 0 \\text{ if } |P_b^c| = 0;\\quad 1 \\text{ if } |P_b^c| \\ge |N_b^c|;
        \\quad S_b / |P_b^c| \\text{ otherwise.}

    Parameters
    ----------
    targets : Tensor, shape (B, K)
        Batch targets; ``S_b = B``.
    pos_threshold : float
        Targets ``>=`` this are positives.

    Returns
    -------
    Tensor, shape (K,)
        Float factors, in the dtype of ``targets`` if floating (else float32).
    """
    if targets.ndim != 2:
        raise ParameterError(f"targets must be (B, K), got shape {tuple(targets.shape)}")
    dtype = targets.dtype if targets.is_floating_point() else torch.float32
    n_pos = positives(targets, pos_threshold).sum(dim=0).to(dtype)
    n_neg = targets.shape[0] - n_pos
    size = float(targets.shape[0])
    factor = torch.where(n_pos >= n_neg, torch.ones_like(n_pos), size / n_pos.clamp(min=1))
    return torch.where(n_pos == 0, torch.zeros_like(n_pos), factor)


def class_weights(targets, *, pos_threshold: float = 0.5) -> torch.Tensor:
    """Class weight ``W^c``: Equation 5 of ``001``.

    .. math:: W^c = \\frac{\\sum_i |P^i|}{|P^c|}

    Parameters
    ----------
    targets : array or Tensor, shape (n, K)
        Targets of the whole training set.

    Returns
    -------
    Tensor, shape (K,), float32
        ``W^c``; 0 for a class with no positives (see the module docstring).
    """
    t = torch.as_tensor(np.asarray(targets) if not isinstance(targets, torch.Tensor) else targets)
    if t.ndim != 2:
        raise ParameterError(f"targets must be (n, K), got shape {tuple(t.shape)}")
    n_pos = positives(t, pos_threshold).sum(dim=0).to(torch.float32)
    total = n_pos.sum()
    return torch.where(n_pos > 0, total / n_pos.clamp(min=1), torch.zeros_like(n_pos))


def dbb_class_losses(
    logits: torch.Tensor,
    targets: torch.Tensor,
    *,
    criterion: Criterion = "mse",
    class_weights: torch.Tensor | None = None,
    pos_threshold: float = 0.5,
) -> torch.Tensor:
    """Conditional loss ``Loss_b^c`` of each class: Equation 2 of ``001`` (Equation 4 with weights).

    .. math::
        Loss_b^c = W^c \\cdot criterion(Pred(P_b^c), Target(P_b^c))
                   + criterion(Pred(N_b^c), Target(N_b^c)),\\quad 0 \\text{ if } F_b^c = 0

    with ``W^c = 1`` (Equation 2) when ``class_weights`` is None.

    Returns
    -------
    Tensor, shape (K,)
    """
    e = elementwise_loss(logits, targets, criterion)
    pos = positives(targets, pos_threshold).to(e.dtype)
    neg = 1 - pos
    n_pos, n_neg = pos.sum(dim=0), neg.sum(dim=0)
    loss_pos = (e * pos).sum(dim=0) / n_pos.clamp(min=1)
    loss_neg = (e * neg).sum(dim=0) / n_neg.clamp(min=1)
    if class_weights is not None:
        w = torch.as_tensor(class_weights, dtype=e.dtype, device=e.device)
        if w.shape != loss_pos.shape:
            raise ParameterError(f"class_weights has shape {tuple(w.shape)}, expected ({loss_pos.shape[0]},)")
        loss_pos = w * loss_pos
    loss = loss_pos + loss_neg
    return torch.where(n_pos > 0, loss, torch.zeros_like(loss))


def dbb_loss(
    logits: torch.Tensor,
    targets: torch.Tensor,
    criterion: Criterion = "mse",
    *,
    class_weights: torch.Tensor | None = None,
    pos_threshold: float = 0.5,
) -> torch.Tensor:
    """Dynamic Batch Balance batch loss: Equation 3 of ``001``, ``sum_c F_b^c * Loss_b^c``.

    Parameters
    ----------
    logits : Tensor, shape (B, K) or (B, K, 2)
    targets : Tensor, shape (B, K), values in [0, 1]
    criterion : {"mse", "bce"}
        The criterion of Equation 2 (``001`` uses MSE).
    class_weights : Tensor, shape (K,), optional
        ``W^c`` of Equation 5 (:func:`class_weights`), giving the class-weighted form of
        Equation 4. None: Equation 2.
    pos_threshold : float
        Targets ``>=`` this are positives.

    Returns
    -------
    Tensor
        Scalar loss. Used for training only (``001``: DBB "is not used during evaluation").
    """
    factors = dbb_factors(targets, pos_threshold=pos_threshold).to(logits.dtype)
    losses = dbb_class_losses(logits, targets, criterion=criterion, class_weights=class_weights, pos_threshold=pos_threshold)
    return (factors * losses).sum()
