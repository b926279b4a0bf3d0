"""The MAML meta-loss landscape on the linear-regression family, evaluated exactly (notebook 3).

For ``LinearModel`` on ``LinearTasks`` the adapted weights are affine in the initialisation,
``w_n = J_t w + c_t`` with ``J_t = (I - inner_lr A_t)^n`` (see ``closed_form``), so the meta-loss can be drawn on
a whole grid of initialisations at once, and its minimiser ``w*`` is known in closed form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional

import numpy as np
import torch

from . import closed_form
from .divergence import BLOWUP, first_divergence
from .tasks import LinearTasks, TaskBatch
from .validation import require_float, require_int


def linear_teaching_tasks() -> LinearTasks:
    """The 2-D linear family of notebook 3: ``w_task ~ N((1.5, -1), I)``, noiseless, so ``w*`` is easy to see."""
    return LinearTasks(dim=2, w_mean=(1.5, -1.0), w_std=1.0, noise_std=0.0)


def teaching_batch(n_tasks: int = 25, k_shot: int = 5, k_query: int = 15, seed: int = 0) -> TaskBatch:
    """A fixed float64 batch of tasks from ``linear_teaching_tasks`` (the same for every slider position)."""
    generator = torch.Generator().manual_seed(seed)
    return linear_teaching_tasks().sample(n_tasks, k_shot, k_query, generator=generator, dtype=torch.float64)


def meta_loss_grid(batch: TaskBatch, inner_lr: float, inner_steps: int, w1: np.ndarray,
                   w2: np.ndarray) -> np.ndarray:
    """The meta-loss (mean query MSE after adaptation) at every initialisation ``(w1[j], w2[i])``: shape (i, j).

    The adapted weights are affine in the initialisation (``J_t w + o_t``), so all the query residuals together are
    ``A w + r`` and the meta-loss is ``|A w + r|^2 / n``. With ``A = QR`` that is ``|R w + Q^T r|^2 + |r - Q Q^T r|^2``
    (over n): a 2 x 2 map per grid point instead of every task's predictions, and a sum of squares, so it does not
    lose digits to cancellation where the loss is huge (a diverging inner loop) and its minimum is not."""
    jacobian = closed_form._inner_jacobian(batch.support, inner_lr, inner_steps)           # (T, d, d)
    d = batch.support.X.shape[-1]
    zero = torch.zeros(d, dtype=batch.support.X.dtype)
    offset = closed_form.adapted_weights(zero, batch.support, inner_lr, inner_steps)        # (T, d)
    design = (batch.query.X @ jacobian).reshape(-1, d)                                     # A: (T * k, d)
    residual = (batch.query.X @ offset.unsqueeze(-1) - batch.query.y).reshape(-1)          # r: (T * k,)
    q, r = torch.linalg.qr(design)
    projected = q.T @ residual
    floor = (residual - q @ projected).pow(2).sum()       # the part of r no initialisation can cancel
    W1, W2 = np.meshgrid(w1, w2)
    grid = torch.as_tensor(np.stack([W1.ravel(), W2.ravel()], axis=-1), dtype=design.dtype)  # (G, d)
    loss = ((grid @ r.T + projected).pow(2).sum(-1) + floor) / residual.numel()
    return loss.numpy().reshape(W1.shape)


def query_curve(w: torch.Tensor, batch: TaskBatch, inner_lr: float, steps: int) -> np.ndarray:
    """Mean query loss after 0, 1, ..., ``steps`` inner steps from the initialisation ``w``."""
    return np.array([float(closed_form.meta_loss(w, batch, inner_lr, n)) for n in range(steps + 1)])


@dataclass
class LandscapeView:
    """What the objective explorer draws.

    ``w1, w2, meta_loss``: the meta-loss on a grid (``meta_loss[i, j]`` at ``(w1[j], w2[i])``).
    ``starts``: name -> initialisation (``"MAML w*"``, ``"pretrained"``, ``"zero"``);
    ``curves``: name -> mean query loss after 0..``curve_steps`` inner steps (truncated when it diverged).
    ``spectral_radius``: the largest ``|1 - inner_lr * eigenvalue(A_t)|`` over the tasks; above 1 the inner loop
    is unstable (gradient descent on that task's support loss moves away from its minimum).
    ``diverged``: the inner loop is unstable, or the loss blew up from one of the starts.
    """

    inner_lr: float
    inner_steps: int
    w1: np.ndarray
    w2: np.ndarray
    meta_loss: np.ndarray
    task_weights: np.ndarray
    starts: Dict[str, np.ndarray]
    curves: Dict[str, np.ndarray]
    curve_diverged: Dict[str, bool]
    spectral_radius: float
    diverged: bool


def objective_data(inner_lr: float = 0.1, inner_steps: int = 1, batch: Optional[TaskBatch] = None,
                   resolution: int = 61, bounds=((-1.5, 4.5), (-4.0, 2.0)), curve_steps: int = 10,
                   blowup: float = BLOWUP) -> LandscapeView:
    """The objective explorer's plain function: inner learning rate and steps in, landscape and curves out.

    ``starts`` compares three initialisations: the MAML optimum ``w*`` for these settings, the "pretrained"
    one (``w*`` with zero inner steps: the best single model for all tasks) and zero.
    """
    inner_lr = require_float("inner_lr", inner_lr, positive=True)
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    resolution = require_int("resolution", resolution, minimum=2)
    batch = teaching_batch() if batch is None else batch
    w1 = np.linspace(*bounds[0], resolution)
    w2 = np.linspace(*bounds[1], resolution)
    with np.errstate(over="ignore", invalid="ignore"):
        grid = meta_loss_grid(batch, inner_lr, inner_steps, w1, w2)
    dtype = batch.support.X.dtype
    starts = {"MAML w*": closed_form.meta_optimum(batch, inner_lr, inner_steps),
              "pretrained": closed_form.meta_optimum(batch, inner_lr, 0),
              "zero": torch.zeros(batch.support.X.shape[-1], dtype=dtype)}
    n_curve = max(require_int("curve_steps", curve_steps, minimum=1), inner_steps)
    curves, flags = {}, {}
    for name, w in starts.items():
        with np.errstate(over="ignore", invalid="ignore"):
            curve = query_curve(w, batch, inner_lr, n_curve)
        stop = first_divergence(curve, blowup)
        curves[name], flags[name] = (curve if stop is None else curve[:stop]), stop is not None
    task_weights = batch.info["w"].numpy() if batch.info and "w" in batch.info else np.zeros((0, 2))
    radius = inner_spectral_radius(batch, inner_lr)
    return LandscapeView(inner_lr, inner_steps, w1, w2, grid, task_weights,
                         {k: v.detach().numpy() for k, v in starts.items()}, curves, flags, radius,
                         radius > 1.0 or any(flags.values()))


def inner_spectral_radius(batch: TaskBatch, inner_lr: float) -> float:
    """``max_t max_i |1 - inner_lr * lambda_i(A_t)|``: the inner loop converges on every task iff this is < 1.

    ``A_t`` is the support-loss Hessian of task t; its largest eigenvalue bounds the stable learning rates,
    ``inner_lr < 2 / lambda_max`` (the same rule as for the quadratics of notebook 1).
    """
    A, _ = closed_form.quadratic_form(batch.support)
    eigenvalues = torch.linalg.eigvalsh(A)
    return float((1.0 - inner_lr * eigenvalues).abs().max())
