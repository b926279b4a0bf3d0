"""When a run counts as diverged: the package's one rule, for every curve it draws or reports.

A loss is a blow-up when it is not finite or larger than ``BLOWUP`` times its reference (the loss at the start),
the reference counted as at least 1 so that a run starting near zero loss is not flagged for a harmless rise.
Gradient descent in notebook 1, fine-tuning in notebook 2, the explorers, and few-shot evaluation all use it.
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

BLOWUP = 100.0
"""How many times its starting size (at least 1) a loss may grow before the run counts as diverged. A stable
learning rate lowers the loss; 100x is far beyond the noise of a good one and reached within a few steps by a
diverging one (the loss of an unstable quadratic step grows geometrically). For a 5-way cross-entropy, which
starts near log 5 = 1.6 nats, 100x means wildly confident wrong predictions."""


def blew_up(losses, reference, blowup: float = BLOWUP):
    """Elementwise: is each loss non-finite or over ``blowup * max(|reference|, 1)``? (NumPy or torch arrays.)"""
    if torch.is_tensor(losses):
        reference = torch.as_tensor(reference, dtype=losses.dtype, device=losses.device)
        scale = torch.where(torch.isfinite(reference), reference.abs(), torch.ones_like(reference)).clamp(min=1.0)
        return ~torch.isfinite(losses) | (losses.abs() > blowup * scale)
    losses, reference = np.asarray(losses, dtype=float), np.asarray(reference, dtype=float)
    with np.errstate(invalid="ignore", over="ignore"):
        scale = np.maximum(np.where(np.isfinite(reference), np.abs(reference), 1.0), 1.0)
        return ~np.isfinite(losses) | (np.abs(losses) > blowup * scale)


def first_divergence(losses, blowup: float = BLOWUP, reference: Optional[float] = None) -> Optional[int]:
    """Index of the first blow-up in a 1-D curve of losses (``reference`` defaults to its first value); else None."""
    losses = np.asarray(losses, dtype=float).reshape(-1)
    if losses.size == 0:
        return None
    bad = blew_up(losses, losses[0] if reference is None else reference, blowup)
    return int(np.argmax(bad)) if bad.any() else None


def diverged_tasks(curves, blowup: float = BLOWUP) -> np.ndarray:
    """For curves ``(n_tasks, n_steps + 1)``: True for each task whose curve blows up at any step."""
    curves = np.asarray(curves, dtype=float)
    return blew_up(curves, curves[:, :1], blowup).any(axis=1)
