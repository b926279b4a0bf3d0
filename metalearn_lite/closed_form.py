"""MAML in closed form on linear regression: the hand derivation, as code (test oracle and teaching aid).

For a linear model ``f(x) = x w`` and squared error on a set with inputs ``X`` (k rows) and targets ``y``,

    L(w) = (1/k) ||X w - y||^2 = 1/2 w^T A w - b^T w + const,   A = (2/k) X^T X,   b = (2/k) X^T y,

so ``grad L(w) = A w - b`` and one inner step is affine in w: ``w' = M w + inner_lr * b_S`` with
``M = I - inner_lr * A_S``. After n steps, ``w_n = M^n w + c_n``, and the chain rule gives the meta-gradient

    d L_Q(w_n) / dw = (M^n)^T (A_Q w_n - b_Q)      (second order; M is symmetric)
                    =          A_Q w_n - b_Q        (first order: the Jacobian M^n is replaced by I).
"""

from __future__ import annotations

import torch

from .tasks import Split, TaskBatch
from .validation import require_float, require_int


def quadratic_form(split: Split) -> tuple:
    """``(A, b)`` of the squared-error loss on one set: ``grad L(w) = A w - b``."""
    k = split.X.shape[-2]
    A = 2.0 / k * split.X.transpose(-1, -2) @ split.X
    b = 2.0 / k * (split.X.transpose(-1, -2) @ split.y).squeeze(-1)
    return A, b


def adapted_weights(w: torch.Tensor, support: Split, inner_lr: float, inner_steps: int) -> torch.Tensor:
    """``w_n`` after ``inner_steps`` gradient steps on each task's support set; shape ``(n_tasks, dim)``."""
    A, b = quadratic_form(support)
    w_n = w.expand(A.shape[0], -1)
    for _ in range(inner_steps):
        w_n = w_n - inner_lr * ((A @ w_n.unsqueeze(-1)).squeeze(-1) - b)
    return w_n


def meta_gradient(w: torch.Tensor, batch: TaskBatch, inner_lr: float, inner_steps: int = 1,
                  first_order: bool = False) -> torch.Tensor:
    """Closed-form MAML meta-gradient for ``LinearModel`` on ``LinearTasks``, averaged over the batch."""
    inner_lr = require_float("inner_lr", inner_lr, positive=True)
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    A_q, b_q = quadratic_form(batch.query)
    w_n = adapted_weights(w, batch.support, inner_lr, inner_steps)
    outer = (A_q @ w_n.unsqueeze(-1)).squeeze(-1) - b_q
    if not first_order:
        jacobian = _inner_jacobian(batch.support, inner_lr, inner_steps)
        outer = (jacobian.transpose(-1, -2) @ outer.unsqueeze(-1)).squeeze(-1)
    return outer.mean(dim=0)


def meta_optimum(batch: TaskBatch, inner_lr: float, inner_steps: int = 1) -> torch.Tensor:
    """The initialisation ``w*`` that minimises the mean post-adaptation query loss on ``batch`` exactly.

    The meta-loss is quadratic in w (``w_n = M^n w + c_n``), so setting its gradient to zero gives the linear
    system ``sum_t M^n A_Q M^n w = sum_t M^n (b_Q - A_Q c_n)``.
    """
    A_q, b_q = quadratic_form(batch.query)
    jacobian = _inner_jacobian(batch.support, inner_lr, inner_steps)
    offset = adapted_weights(torch.zeros(A_q.shape[-1], dtype=A_q.dtype), batch.support, inner_lr, inner_steps)
    lhs = (jacobian.transpose(-1, -2) @ A_q @ jacobian).sum(dim=0)
    rhs = (jacobian.transpose(-1, -2) @ (b_q - (A_q @ offset.unsqueeze(-1)).squeeze(-1)).unsqueeze(-1)).sum(0)
    return torch.linalg.solve(lhs, rhs).squeeze(-1)


def meta_loss(w: torch.Tensor, batch: TaskBatch, inner_lr: float, inner_steps: int = 1) -> torch.Tensor:
    """Mean query MSE after adaptation (the MAML objective) for the linear model, evaluated exactly."""
    w_n = adapted_weights(w, batch.support, inner_lr, inner_steps)
    residual = (batch.query.X @ w_n.unsqueeze(-1)) - batch.query.y
    return residual.pow(2).mean()


def _inner_jacobian(support: Split, inner_lr: float, inner_steps: int) -> torch.Tensor:
    """``M^n = (I - inner_lr A_S)^n``: how the adapted weights move when the initialisation moves."""
    A, _ = quadratic_form(support)
    step = torch.eye(A.shape[-1], dtype=A.dtype) - inner_lr * A
    return torch.linalg.matrix_power(step, inner_steps)
