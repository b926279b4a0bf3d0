"""The task losses the engine knows, by name, and the accuracy that goes with classification."""

from __future__ import annotations

import torch
from torch.nn import functional as F

from .validation import require_choice

LOSS_NAMES = ("mse", "cross_entropy")


def task_loss(name: str, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean squared error (regression) or cross-entropy (classification, integer labels ``y``)."""
    if name == "mse":
        return F.mse_loss(prediction, y)
    return F.cross_entropy(prediction, y)


def task_losses(name: str, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The mean loss of each task: a scalar for one task (``y``: ``(n,)`` labels or ``(n, outputs)`` targets),
    shape ``(T,)`` when tasks are stacked on a leading dimension (``y``: ``(T, n)`` or ``(T, n, outputs)``)."""
    if y.dim() == (1 if name == "cross_entropy" else 2):
        return task_loss(name, prediction, y)
    if name == "mse":
        per_example = F.mse_loss(prediction, y, reduction="none")
    else:
        per_example = F.cross_entropy(prediction.reshape(-1, prediction.shape[-1]), y.reshape(-1), reduction="none")
    return per_example.reshape(y.shape[0], -1).mean(dim=1)


def task_accuracies(name: str, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Query accuracy of each task (a scalar for one task, ``(T,)`` for stacked tasks); NaN for regression."""
    if y.dim() == (1 if name == "cross_entropy" else 2):
        return accuracy(name, prediction, y)
    if name == "mse":
        return torch.full((y.shape[0],), float("nan"), dtype=prediction.dtype, device=prediction.device)
    return (prediction.argmax(dim=-1) == y).to(prediction.dtype).mean(dim=-1)


def accuracy(name: str, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correct class predictions; NaN for regression, where accuracy has no meaning."""
    if name == "mse":
        return torch.full((), float("nan"), dtype=prediction.dtype, device=prediction.device)
    return (prediction.argmax(dim=-1) == y).to(prediction.dtype).mean()


def check_loss_name(name: str) -> str:
    """Raise ValueError unless ``name`` is a known loss."""
    return require_choice("loss", name, LOSS_NAMES)
