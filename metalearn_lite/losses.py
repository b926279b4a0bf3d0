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


def task_loss_per_example(name: str, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The same losses without the mean: one value per example (per output entry for MSE)."""
    if name == "mse":
        return F.mse_loss(prediction, y, reduction="none")
    return F.cross_entropy(prediction, y, reduction="none")


def accuracy(name: str, prediction: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Fraction of correct class predictions; NaN for regression, where accuracy has no meaning."""
    if name == "mse":
        return torch.full((), float("nan"), dtype=prediction.dtype, device=prediction.device)
    return (prediction.argmax(dim=-1) == y).to(prediction.dtype).mean()


def check_loss_name(name: str) -> str:
    """Raise ValueError unless ``name`` is a known loss."""
    return require_choice("loss", name, LOSS_NAMES)
