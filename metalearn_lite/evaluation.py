"""Seeded evaluation of initialisations on new sinusoid tasks: MSE after n gradient steps with K shots, mean ± 95% CI.

This is how the MAML paper scores its regression result (Finn et al., 2017, section 5.1 and Figure 2): sample new
tasks, fine-tune each starting point on the task's K support points with plain gradient steps (step size 0.01),
and measure the mean squared error on query points of the same task. The tasks are drawn from a fixed seed, so
the same numbers come out on every run (the notebook, the checkpoint test and the training command agree).
Adaptation runs batched over all tasks with ``maml.adapt`` (``vmap``), so 600 tasks take well under a second.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Mapping, Optional, Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from . import maml
from .batch_checks import check_batch, check_inner_loop
from .baselines import FineTuneCurves, FineTuningView
from .divergence import BLOWUP, blew_up, diverged_tasks, first_divergence
from .models import MLP
from .tasks import SinusoidTasks, Split, TaskBatch
from .train import load_checkpoint, shipped_checkpoint
from .validation import require_finite, require_float, require_int, require_params

EVAL_SEED = 2017
"""The seed of the fixed evaluation tasks (different from every training seed)."""

SINUSOID_CHECKPOINTS = {"maml": "sinusoid_maml.pt", "pretrained": "sinusoid_pretrained.pt"}
"""Shipped checkpoints (package data under ``metalearn_lite/checkpoints/``), by initialisation name."""

PAPER_TABLE = {
    "maml": {1: 0.67, 5: 0.38, 10: 0.35},
    "pretrained": {1: 2.41, 5: 2.23, 10: 2.19},
}
"""Mean squared error on new sinusoid tasks, K=5, after 1/5/10 gradient steps: Finn et al. (2017), Appendix C.1,
Table 2 ("5-shot mean squared error", arXiv:1703.03400v3)."""

PAPER_TOLERANCE = 0.15
"""The reproduction target: MAML within 15% of the paper's numbers, or better."""


@dataclass
class Evaluation:
    """Query MSE of one initialisation on a fixed set of tasks: ``query_losses[t, i]`` after ``i`` steps on task t."""

    name: str
    k_shot: int
    inner_lr: float
    query_losses: np.ndarray

    @property
    def n_tasks(self) -> int:
        return self.query_losses.shape[0]

    @property
    def inner_steps(self) -> int:
        return self.query_losses.shape[1] - 1

    def mean(self, steps: int) -> float:
        """Mean query MSE over the tasks after ``steps`` gradient steps."""
        return float(self.query_losses[:, steps].mean())

    def ci95(self, steps: int) -> float:
        """Half-width of the 95% confidence interval of ``mean(steps)`` (normal approximation, many tasks)."""
        column = self.query_losses[:, steps]
        return float(1.96 * column.std(ddof=1) / math.sqrt(len(column))) if len(column) > 1 else float("nan")

    def n_diverged(self, steps: int, blowup: float = BLOWUP) -> int:
        """Tasks whose error after ``steps`` steps blew up (the package's rule, ``divergence.blew_up``)."""
        return int(blew_up(self.query_losses[:, steps], self.query_losses[:, 0], blowup).sum())

    def diverged_tasks(self, blowup: float = BLOWUP) -> np.ndarray:
        """Indices of the tasks whose error blew up at any step (``divergence.diverged_tasks``)."""
        return np.flatnonzero(diverged_tasks(self.query_losses, blowup))

    def mean_without_diverged(self, steps: int, blowup: float = BLOWUP) -> float:
        """Mean query MSE after ``steps`` steps over the tasks where fine-tuning did not blow up."""
        keep = np.ones(self.n_tasks, dtype=bool)
        keep[self.diverged_tasks(blowup)] = False
        return float(self.query_losses[keep, steps].mean())

    def median(self, steps: int) -> float:
        """Median query MSE over the tasks after ``steps`` gradient steps (robust to a few blown-up tasks)."""
        return float(np.median(self.query_losses[:, steps]))

    @property
    def mean_curve(self) -> np.ndarray:
        """Mean query MSE at every step 0..inner_steps."""
        return self.query_losses.mean(axis=0)


def evaluation_tasks(n_tasks: int = 600, k_shot: int = 5, k_query: int = 100, seed: int = EVAL_SEED,
                     tasks: Optional[SinusoidTasks] = None, device=None) -> TaskBatch:
    """A fixed, seeded batch of new sinusoid tasks (K support points, ``k_query`` query points each)."""
    n_tasks = require_int("n_tasks", n_tasks, minimum=1)
    k_shot = require_int("k_shot", k_shot, minimum=1)
    k_query = require_int("k_query", k_query, minimum=1)
    generator = torch.Generator().manual_seed(require_int("seed", seed, minimum=0))
    batch = (tasks or SinusoidTasks()).sample(n_tasks, k_shot, k_query, generator=generator)
    return batch if device is None else batch.to(device)


def evaluate(model: nn.Module, params: Mapping[str, torch.Tensor], batch: TaskBatch, inner_lr: float = 0.01,
             inner_steps: int = 10, name: str = "") -> Evaluation:
    """Fine-tune ``params`` on each task's support set for ``inner_steps`` steps of size ``inner_lr``; record the
    query MSE after every step (batched over tasks with ``maml.adapt``)."""
    inner_lr = require_float("inner_lr", inner_lr, positive=True)
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    result = maml.adapt(model, dict(params), batch, inner_lr, inner_steps, "mse")
    return Evaluation(name, batch.support.X.shape[1], inner_lr, result.query_losses.detach().double().cpu().numpy())


def compare(model: nn.Module, starts: Mapping[str, Mapping[str, torch.Tensor]], k_shot: int = 5,
            inner_lr: float = 0.01, inner_steps: int = 10, n_tasks: int = 600, k_query: int = 100,
            seed: int = EVAL_SEED) -> Dict[str, Evaluation]:
    """Evaluate several initialisations (name -> parameter dict) on the same fixed tasks."""
    device = next(iter(next(iter(starts.values())).values())).device
    batch = evaluation_tasks(n_tasks, k_shot, k_query, seed, device=device)
    return {name: evaluate(model, params, batch, inner_lr, inner_steps, name) for name, params in starts.items()}


def checkpoint_path(name: str) -> Path:
    """Where the shipped sinusoid checkpoint ``name`` (``"maml"`` or ``"pretrained"``) lies in the package."""
    if name not in SINUSOID_CHECKPOINTS:
        raise ValueError(f"name must be one of {', '.join(map(repr, SINUSOID_CHECKPOINTS))}, got {name!r}")
    return shipped_checkpoint(SINUSOID_CHECKPOINTS[name])


def random_init(seed: int = 0, model: Optional[nn.Module] = None) -> Dict[str, torch.Tensor]:
    """A freshly initialised MLP 1-40-40-1 (PyTorch's default init), seeded: the "random initialisation" baseline."""
    state = torch.random.get_rng_state()
    try:
        torch.manual_seed(require_int("seed", seed, minimum=0))
        fresh = type(model)() if model is not None else MLP()
    finally:
        torch.random.set_rng_state(state)
    return {name: p.detach() for name, p in fresh.named_parameters()}


def sinusoid_starts(device=None, random_seed: int = 0) -> tuple:
    """The three initialisations of notebook 4: ``(model, {"maml": ..., "pretrained": ..., "random": ...}, meta)``.

    ``maml`` and ``pretrained`` come from the shipped checkpoints (``weights_only=True``); ``meta`` holds each
    checkpoint's metadata (command, seed, steps, wall time, git commit). ``device`` defaults to the CPU.
    """
    device = torch.device(device or "cpu")
    starts, meta, model = {}, {}, None
    for name in SINUSOID_CHECKPOINTS:
        loaded, payload = load_checkpoint(checkpoint_path(name))
        model = model or loaded
        starts[name] = {k: p.detach().to(device) for k, p in loaded.named_parameters()}
        meta[name] = payload["metadata"]
    starts["random"] = {k: p.to(device) for k, p in random_init(random_seed, model).items()}
    return model.to(device), starts, meta


def results_table(results: Mapping[str, Evaluation], steps: Sequence[int] = (1, 5, 10),
                  paper: Mapping[str, Mapping[int, float]] = PAPER_TABLE) -> str:
    """A plain-text table: mean MSE ± 95% CI after each step count, with the paper's value where it has one."""
    header = f"{'initialisation':<16}" + "".join(f"{f'{s} step' + ('s' if s != 1 else ''):>22}" for s in steps)
    lines = [header, "-" * len(header)]
    for name, result in results.items():
        lines.append(f"{name:<16}" + "".join(f"{_number(result.mean(s)) + ' ± ' + _number(result.ci95(s)):>22}"
                                             for s in steps))
        diverged = {s: result.n_diverged(s) for s in steps}
        if any(diverged.values()):
            lines.append(f"{'  diverged':<16}" + "".join(f"{f'{diverged[s]} of {result.n_tasks} tasks':>22}"
                                                          for s in steps))
        if name in paper:
            lines.append(f"{'  paper':<16}" + "".join(f"{paper[name][s]:>22.2f}" if s in paper[name]
                                                       else f"{'':>22}" for s in steps))
    return "\n".join(lines)


def _number(value: float) -> str:
    return f"{value:.2f}" if abs(value) < 1000 else f"{value:.1e}"


def within_paper(result: Evaluation, name: str = "maml", tolerance: float = PAPER_TOLERANCE,
                 steps: Sequence[int] = (1, 5, 10)) -> Dict[int, bool]:
    """For each step count: is the measured mean at most ``(1 + tolerance)`` times the paper's value?"""
    return {s: result.mean(s) <= (1 + tolerance) * PAPER_TABLE[name][s] for s in steps}


# ---------------------------------------------------------------------------------------------------------------
# Several initialisations at once: what the adaptation explorer computes on every slider move.


@dataclass
class StartsAdaptation:
    """Fine-tuning of several initialisations on the same tasks, computed in one batched pass.

    ``query_losses[i, t, s]`` / ``support_losses[i, t, s]``: start ``names[i]``, task ``t``, after ``s`` steps.
    ``predictions[i, t, s, n]``: the network's output on query point ``n`` (only with ``keep_predictions``).
    """

    names: list
    inner_lr: float
    support_losses: np.ndarray
    query_losses: np.ndarray
    predictions: Optional[np.ndarray]


def adapt_starts(model: nn.Module, starts: Mapping[str, Mapping[str, torch.Tensor]], batch: TaskBatch,
                 inner_lr: float, inner_steps: int, keep_predictions: bool = False) -> StartsAdaptation:
    """Plain gradient descent on each task's support set from each start, all (start, task) pairs at once.

    The same numbers as ``maml.adapt`` start by start (tested), but one forward/backward per step for every
    start and task together: the (start, task) pairs are stacked on a leading dimension, the forward pass is
    ``vmap``-ed over it and the engine's ``maml.inner_update`` differentiates the *sum* of the per-pair losses,
    whose gradient with respect to each pair's own parameters is that pair's own gradient.
    A diverging learning rate gives non-finite numbers here, never an exception.
    """
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    names, n_tasks = list(starts), batch.n_tasks
    if not names:
        raise ValueError("starts must name at least one initialisation (name -> parameter dict)")
    for name in names:
        require_finite(f"starts[{name!r}]", require_params(starts[name], model, f"starts[{name!r}]"))
    batch = check_batch(batch, model, starts[names[0]], "mse")
    params = {key: torch.stack([starts[name][key].detach() for name in names]).repeat_interleave(n_tasks, dim=0)
              for key in starts[names[0]]}
    tile = lambda t: t.repeat(len(names), *([1] * (t.dim() - 1)))  # noqa: E731  (start-major, like params)
    support_X, support_y, query_X, query_y = map(tile, maml.batch_tensors(batch))
    pairs = vmap(lambda p, x: functional_call(model, p, (x,)))  # every (start, task) pair with its own weights
    result = maml.adaptation_curves(model, params, Split(support_X, support_y), Split(query_X, query_y), inner_lr,
                                    inner_steps, "mse", forward=pairs, keep_predictions=keep_predictions)

    def by_start(values):  # (pairs, ...) -> (starts, tasks, ...)
        return _numpy(values).reshape(len(names), n_tasks, *values.shape[1:])

    predictions = None
    if keep_predictions:  # (steps, pairs, points, 1) -> (starts, tasks, steps, points)
        predictions = by_start(result.query_predictions[..., 0].transpose(0, 1))
    return StartsAdaptation(names, inner_lr, by_start(result.support_losses), by_start(result.query_losses),
                            predictions)


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().double().cpu().numpy()


@dataclass
class ExplorerView(FineTuningView):
    """What the sinusoid adaptation explorer draws (a ``baselines.FineTuningView`` plus the pre-update fits).

    ``fits[name]`` is the function after ``inner_steps`` steps (None when that start diverged);
    ``step_fits[name][s]`` the function after ``s`` steps (rows up to the blow-up only);
    ``curves[name].query_losses`` the error on the whole curve after each step (cut before a blow-up);
    ``diverged[name]`` says which starts blew up.
    """

    step_fits: Optional[Dict[str, np.ndarray]] = None
    inner_steps: int = 0
    k_shot: int = 0
    inner_lr: float = 0.0

    @property
    def initial_fits(self) -> Dict[str, np.ndarray]:
        """The function each start computes before any gradient step."""
        return {name: fits[0] for name, fits in self.step_fits.items()}


MAX_K_SHOT = 20


def explorer_data(model: nn.Module, starts: Mapping[str, Mapping[str, torch.Tensor]], inner_lr: float = 0.01,
                  inner_steps: int = 10, k_shot: int = 5, task_seed: int = 0, n_grid: int = 200,
                  tasks: Optional[SinusoidTasks] = None, blowup: float = BLOWUP) -> ExplorerView:
    """The adaptation explorer's plain function: one new sinusoid task, fine-tuned from every start.

    The task (amplitude, phase) and up to ``MAX_K_SHOT`` support inputs come from ``task_seed``; ``k_shot`` takes
    the first K of them, so more shots add points to the same task. The query set is a dense grid over the input
    range (the error on the whole curve). Computed on the device of ``starts`` (the GPU when they are there).
    A start counts as diverged when its support or query loss becomes non-finite or grows beyond ``blowup``
    times its initial value (the package's rule, ``divergence.first_divergence``).
    """
    k_shot = require_int("k_shot", k_shot, minimum=1, maximum=MAX_K_SHOT)
    task_seed = require_int("task_seed", task_seed, minimum=0)
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    tasks = tasks or SinusoidTasks()
    device = next(iter(next(iter(starts.values())).values())).device
    generator = torch.Generator().manual_seed(task_seed)
    task = tasks.sample(1, MAX_K_SHOT, 1, generator=generator)
    support = Split(task.support.X[:, :k_shot], task.support.y[:, :k_shot])
    x = torch.linspace(*tasks.x_range, n_grid).view(1, -1, 1)
    truth = tasks.target(x, task.info["amplitude"], task.info["phase"])
    batch = TaskBatch(support, Split(x, truth), task.info).to(device)
    result = adapt_starts(model, starts, batch, inner_lr, inner_steps, keep_predictions=True)
    curves, fits, step_fits = {}, {}, {}
    for i, name in enumerate(result.names):
        support_curve, query_curve = result.support_losses[i], result.query_losses[i]
        with np.errstate(invalid="ignore", over="ignore"):
            stops = [s for s in (first_divergence(c.mean(axis=0), blowup) for c in (support_curve, query_curve))
                     if s is not None]
        diverged_at = min(stops) if stops else None
        if diverged_at is not None:
            support_curve, query_curve = support_curve[:, :diverged_at], query_curve[:, :diverged_at]
        curves[name] = FineTuneCurves(inner_steps, inner_lr, support_curve, query_curve, diverged_at is not None,
                                      diverged_at, None)
        step_fits[name] = result.predictions[i, 0, :query_curve.shape[1]]
        fits[name] = None if diverged_at is not None else result.predictions[i, 0, -1]
    return ExplorerView(x[0, :, 0].numpy(), truth[0, :, 0].numpy(), support.X[0, :, 0].numpy(),
                        support.y[0, :, 0].numpy(), fits, curves, step_fits, inner_steps, k_shot, inner_lr)
