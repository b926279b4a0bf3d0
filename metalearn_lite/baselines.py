"""The non-meta-learning baselines: fit from scratch, and "pretrain on all tasks, then fine-tune" (notebook 2).

``pretrain`` trains one network on the pooled data of many tasks (ordinary training, no inner loop): on the
sinusoid family it learns the *average* function ``E_T[f_T(x)]``, which is the same for every task.
``fine_tune`` adapts a starting point to each task by plain gradient descent and returns the adaptation curves
(loss vs step), with divergence detection; notebook 4 reuses it to compare MAML with the pretrained start.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from . import maml
from .divergence import BLOWUP, first_divergence
from .models import MLP
from .tasks import SinusoidTasks, Split, TaskBatch
from .validation import require_float, require_int


def pretrain(model: nn.Module, tasks, steps: int = 2000, n_tasks: int = 25, k_shot: int = 10, lr: float = 1e-3,
             generator: Optional[torch.Generator] = None) -> List[float]:
    """Ordinary training on the pooled data of many tasks: Adam on the mean squared error, fresh tasks each step.

    Each step samples ``n_tasks`` tasks of ``k_shot`` points from ``tasks`` (a task family with ``.sample``) and
    takes one Adam step on the mean loss of all their points. Trains ``model`` in place; returns the loss per step.
    This is the "pretrained" baseline of the MAML paper (section 5.1).
    """
    steps = require_int("steps", steps, minimum=0)
    lr = require_float("lr", lr, positive=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        batch = tasks.sample(n_tasks, k_shot, 1, generator=generator)
        loss = nn.functional.mse_loss(model(batch.support.X), batch.support.y)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
    return losses


def sinusoid_average(x, tasks: Optional[SinusoidTasks] = None):
    """``E_T[A sin(x - phi)]`` over the sinusoid family: what pretraining on all tasks converges to.

    With ``A`` and ``phi`` independent and uniform, ``E[A] * E[sin(x - phi)]``, and for ``phi ~ U[a, b]``
    ``E[sin(x - phi)] = (cos(x - b) - cos(x - a)) / (b - a)``. For the paper's ranges this is ``-(2/pi) 2.55 cos x``.
    """
    tasks = tasks or SinusoidTasks()
    (a_lo, a_hi), (p_lo, p_hi) = tasks.amplitude_range, tasks.phase_range
    mean_amplitude = (a_lo + a_hi) / 2
    if p_hi == p_lo:
        return mean_amplitude * np.sin(np.asarray(x) - p_lo)
    return mean_amplitude * (np.cos(np.asarray(x) - p_hi) - np.cos(np.asarray(x) - p_lo)) / (p_hi - p_lo)


@dataclass
class FineTuneCurves:
    """Adaptation curves from one starting point over a batch of tasks (see ``fine_tune``).

    ``query_losses`` and ``support_losses`` have shape ``(n_tasks, n + 1)``: entry ``[:, i]`` after ``i`` steps.
    When the mean curve diverged, ``n < inner_steps`` (the data stop before the blow-up) and ``diverged_at`` says where.
    ``params`` are the adapted parameters (leading task dimension), or None when the run diverged.
    """

    inner_steps: int
    inner_lr: float
    support_losses: np.ndarray
    query_losses: np.ndarray
    diverged: bool
    diverged_at: Optional[int]
    params: Optional[Dict[str, torch.Tensor]]

    @property
    def mean_query(self) -> np.ndarray:
        """Mean query loss over tasks at each step."""
        return self.query_losses.mean(axis=0)


def fine_tune(model: nn.Module, params, batch: TaskBatch, inner_lr: float, inner_steps: int, loss: str = "mse",
              blowup: float = BLOWUP) -> FineTuneCurves:
    """Plain gradient descent on each task's support set from ``params``; the loss curves on support and query.

    The same inner loop as MAML's (``maml.adapt``), used here on an initialisation that was *not* meta-learned.
    The run counts as diverged when the mean support or query loss becomes non-finite or grows beyond
    ``blowup`` times its initial value.
    """
    result = maml.adapt(model, params, batch, inner_lr, inner_steps, loss)
    support = result.support_losses.detach().double().cpu().numpy()
    query = result.query_losses.detach().double().cpu().numpy()
    with np.errstate(invalid="ignore", over="ignore"):
        stops = [first_divergence(curve.mean(axis=0), blowup) for curve in (support, query)]
    stops = [s for s in stops if s is not None]
    diverged_at = min(stops) if stops else None
    if diverged_at is not None:
        return FineTuneCurves(inner_steps, inner_lr, support[:, :diverged_at], query[:, :diverged_at], True,
                              diverged_at, None)
    return FineTuneCurves(inner_steps, inner_lr, support, query, False, None, result.params)


def predict(model: nn.Module, params, x: torch.Tensor) -> torch.Tensor:
    """The network's output on inputs ``x`` of shape ``(n, features)``; batched over tasks when ``params`` are.

    With per-task parameters (a leading task dimension, as returned by ``fine_tune``), returns
    ``(n_tasks, n, outputs)``; with shared parameters, ``(n, outputs)``.
    """
    with torch.no_grad():
        first = next(iter(params.values()))
        reference = dict(model.named_parameters())[next(iter(params))]
        if first.dim() == reference.dim() + 1:
            return vmap(lambda p: functional_call(model, p, (x,)))(params)
        return functional_call(model, params, (x,))


@dataclass
class FineTuningView:
    """What the fine-tuning explorer draws: one task, its support points, the fits and the curves per start."""

    x: np.ndarray
    truth: np.ndarray
    support_X: np.ndarray
    support_y: np.ndarray
    fits: Dict[str, Optional[np.ndarray]]
    curves: Dict[str, FineTuneCurves]

    @property
    def diverged(self) -> Dict[str, bool]:
        return {name: curve.diverged for name, curve in self.curves.items()}


def fine_tuning_data(starts: Dict[str, dict], task_seed: int = 0, k_shot: int = 5, inner_lr: float = 0.01,
                     inner_steps: int = 10, model: Optional[nn.Module] = None, tasks: Optional[SinusoidTasks] = None,
                     n_grid: int = 200) -> FineTuningView:
    """The fine-tuning explorer's plain function: sample one sinusoid task, fine-tune from each start.

    Parameters
    ----------
    starts: name -> parameter dict of ``model`` (e.g. ``{"random": ..., "pretrained": ...}``).
    task_seed: which task (the task and its ``k_shot`` support points are drawn with this seed).
    inner_lr, inner_steps: the fine-tuning learning rate and number of gradient steps (the inner loop's).
    The query set is a dense grid over the input range, so the query loss is the error on the whole curve.
    """
    task_seed = require_int("task_seed", task_seed, minimum=0)
    k_shot = require_int("k_shot", k_shot, minimum=1)
    model = model or MLP()
    tasks = tasks or SinusoidTasks()
    generator = torch.Generator().manual_seed(task_seed)
    batch = tasks.sample(1, k_shot, 1, generator=generator)
    x = torch.linspace(*tasks.x_range, n_grid).view(1, -1, 1)
    truth = tasks.target(x, batch.info["amplitude"], batch.info["phase"])
    dense = TaskBatch(batch.support, Split(x, truth), batch.info)
    curves, fits = {}, {}
    for name, params in starts.items():
        curves[name] = fine_tune(model, params, dense, inner_lr, inner_steps)
        adapted = curves[name].params
        fits[name] = None if adapted is None else predict(model, adapted, x[0])[0, :, 0].cpu().numpy()
    first = lambda t: t[0, :, 0].cpu().numpy()  # noqa: E731 - task 0, as a flat NumPy array
    return FineTuningView(first(x), first(truth), first(batch.support.X), first(batch.support.y), fits, curves)


def snapshot(model: nn.Module) -> Dict[str, torch.Tensor]:
    """A *copy* of the model's parameters as a dict (``maml.parameters_of`` shares memory with the model, so
    training the model afterwards would change it too)."""
    return {name: p.detach().clone() for name, p in model.named_parameters()}


def count_parameters(model: nn.Module) -> int:
    """Number of trainable numbers in ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def rms(values) -> float:
    """Root mean square of an array (e.g. the distance between two functions on a grid)."""
    return float(math.sqrt(float(np.mean(np.square(np.asarray(values, dtype=float))))))
