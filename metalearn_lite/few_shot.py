"""Few-shot classification with a meta-learned Conv4: fast batched adaptation, accuracy with a 95% confidence
interval over seeded episodes, and a classifier for the original Omniglot challenge.

Evaluation needs no second-order gradients, so tasks are adapted all at once with the grouped-convolution forward
of ``grouped.py`` and plain first-order autograd (each task's loss only touches its own copy of the weights, so
one backward pass gives every task its own gradient). It computes the same numbers as ``maml.adapt`` and is much
faster on a CPU.

Batch-norm modes (the network always normalises with batch statistics; the question is *which* batch):
  - ``"query"`` (transductive, as in the MAML paper's code): the query images are normalised with the statistics
    of the query batch; the predictions for one query image depend on the other query images of the episode.
  - ``"support"`` (non-transductive): query images are normalised with the statistics of the support set, so each
    query image is classified on its own.

The "zero head": a checkpoint meta-trained with ``zero_head=True`` keeps the linear head at zero. The first
inner step then sets class ``c``'s weights to ``inner_lr / N * sum_i (1[y_i = c] - p_c) phi(x_i)``, a prototype of
class ``c``'s support features, so the same initialisation works for any number of classes (5-way or 20-way):
``params_for_n_way`` gives it a zero head of the right size.
"""

from __future__ import annotations

import math
import warnings
from itertools import islice
from typing import Dict, Iterator, NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch.nn import functional as F
from tqdm.auto import tqdm

from .grouped import grouped_forward
from .maml import check_batch
from .models import Conv4
from .tasks import Split, TaskBatch
from .validation import require_choice, require_finite, require_float, require_int, require_params

Params = Dict[str, torch.Tensor]
BN_MODES = ("query", "support")
BLOWUP = 100.0
"""A support loss this many times above its start (at least 1 nat) or non-finite counts as diverged: at chance a
cross-entropy is log(n_way), about 1.6 nats for 5 classes, so 100x means wildly confident wrong predictions."""


class FewShotCurve(NamedTuple):
    """Adaptation of a batch of classification tasks, step by step.

    ``query_accuracies``/``support_losses``: ``(n_tasks, inner_steps + 1)``, entry ``[:, i]`` after ``i`` steps
    (NaN once a task has diverged; ``query_accuracies`` has one column, the last step, without ``record_curve``).
    ``predictions``: ``(n_tasks, n_query)`` labels after the last step.
    ``diverged``: ``(n_tasks,)`` bool, True where the support loss or the weights became non-finite.
    """

    query_accuracies: torch.Tensor
    support_losses: torch.Tensor
    predictions: torch.Tensor
    diverged: torch.Tensor


class AccuracyEstimate(NamedTuple):
    """Mean accuracy over episodes with the half-width of its 95% confidence interval (1.96 standard errors)."""

    mean: float
    ci95: float
    n_episodes: int

    def __str__(self) -> str:
        return f"{self.mean:.1%} ± {self.ci95:.1%} ({self.n_episodes} episodes)"


def params_for_n_way(params: Params, n_way: int) -> Params:
    """The parameters with a zero linear head of ``n_way`` outputs (the "zero head" initialisation)."""
    n_way = require_int("n_way", n_way, minimum=2)
    out = dict(params)
    out["head.weight"] = params["head.weight"].new_zeros(n_way, params["head.weight"].shape[1])
    out["head.bias"] = params["head.bias"].new_zeros(n_way)
    return out


def fit_head(params: Params, n_way: int, zero_head: bool) -> Params:
    """``params`` ready for ``n_way`` classes: a zero head when asked, else the trained head (sizes must match)."""
    if zero_head:
        return params_for_n_way(params, n_way)
    if params["head.weight"].shape[0] != n_way:
        raise ValueError(f"this initialisation has a {params['head.weight'].shape[0]}-way head; use zero_head=True "
                         f"to evaluate it {n_way}-way")
    return params


class AdaptationStep(NamedTuple):
    """The state of a batch of tasks after ``step`` inner steps (see ``adaptation_steps``).

    ``predictions`` ``(n_tasks, n_query)`` and ``query_accuracies`` ``(n_tasks,)`` are None when queries were not
    measured at this step; ``support_losses`` ``(n_tasks,)``; both are NaN for diverged tasks.
    """

    step: int
    params: Params
    predictions: Optional[torch.Tensor]
    query_accuracies: Optional[torch.Tensor]
    support_losses: torch.Tensor
    diverged: torch.Tensor


def adaptation_steps(model: Conv4, params: Params, batch: TaskBatch, inner_lr: float, bn: str = "query",
                     measure_queries: bool = True, blowup: float = BLOWUP) -> Iterator[AdaptationStep]:
    """Yield the state after 0, 1, 2, ... plain SGD steps on each task's support set (first order), endlessly.

    The gradient for step ``i + 1`` is only computed when the next state is asked for, so taking ``k + 1`` states
    costs exactly ``k`` steps (the explorer continues a cached generator when a student adds steps).
    Everything is checked here, when called, not at the first step.
    """
    inner_lr = require_float("inner_lr", inner_lr, positive=True)
    bn = require_choice("bn", bn, BN_MODES)
    params = require_params(params, model)
    require_finite("params", params)
    batch = check_batch(batch, model, params, "cross_entropy")
    return _adaptation_steps(model, params, batch, inner_lr, bn, measure_queries, blowup)


def _adaptation_steps(model, params, batch, inner_lr, bn, measure_queries, blowup) -> Iterator[AdaptationStep]:
    n_tasks, device = batch.n_tasks, batch.support.X.device
    nan = torch.full((n_tasks,), float("nan"), device=device)
    fast = {name: p.detach().unsqueeze(0).repeat(n_tasks, *([1] * p.dim())) for name, p in params.items()}
    diverged = torch.zeros(n_tasks, dtype=torch.bool, device=device)
    limit = None
    step = 0
    while True:
        predictions = accuracies = None
        if measure_queries:
            with torch.no_grad():
                logits = query_logits(model, fast, batch, bn)
            predictions = logits.argmax(dim=-1)
            diverged = diverged | ~torch.isfinite(logits).all(dim=-1).all(dim=-1)
            accuracies = torch.where(diverged, nan, (predictions == batch.query.y).float().mean(dim=1))
        leaves = {name: p.requires_grad_(True) for name, p in fast.items()}
        with torch.enable_grad():
            logits = grouped_forward(model, leaves, batch.support.X)
            per_task = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), batch.support.y.reshape(-1),
                                       reduction="none").reshape(n_tasks, -1).mean(dim=1)
        losses = per_task.detach()
        limit = blowup * losses.clamp(min=1.0) if limit is None else limit
        diverged = diverged | ~torch.isfinite(losses) | (losses > limit)
        yield AdaptationStep(step, {name: p.detach() for name, p in leaves.items()}, predictions, accuracies,
                             torch.where(diverged, nan, losses), diverged.clone())
        grads = torch.autograd.grad(per_task.sum(), list(leaves.values()))
        fast = {name: (p - inner_lr * g).detach() for (name, p), g in zip(leaves.items(), grads)}
        step += 1


def adapt_tasks(model: Conv4, params: Params, batch: TaskBatch, inner_lr: float, inner_steps: int,
                bn: str = "query", record_curve: bool = True, blowup: float = BLOWUP) -> FewShotCurve:
    """Adapt a Conv4 initialisation to every task of ``batch`` with ``inner_steps`` plain SGD steps (first order).

    Parameters
    ----------
    params: the initialisation (a dict without task dimension), head already of size ``n_way``.
    bn: ``"query"`` (transductive) or ``"support"`` batch statistics for the query images (module docstring).
    record_curve: measure query accuracy after every step (``False``: only after the last one, faster).
    blowup: a task whose support loss exceeds ``blowup * max(first loss, 1)`` is marked diverged (``BLOWUP``).
    """
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    states = list(islice(adaptation_steps(model, params, batch, inner_lr, bn, record_curve, blowup),
                         inner_steps + 1))
    last = states[-1]
    if record_curve:
        predictions = last.predictions
        accuracies = torch.stack([state.query_accuracies for state in states], dim=1)
    else:
        with torch.no_grad():
            logits = query_logits(model, last.params, batch, bn)
        predictions = logits.argmax(dim=-1)
        correct = (predictions == batch.query.y).float().mean(dim=1)
        accuracies = torch.where(last.diverged, torch.full_like(correct, float("nan")), correct).unsqueeze(1)
    return FewShotCurve(accuracies, torch.stack([state.support_losses for state in states], dim=1), predictions,
                        last.diverged)


def query_logits(model: Conv4, params: Params, batch: TaskBatch, bn: str = "query") -> torch.Tensor:
    """Logits ``(n_tasks, n_query, n_way)`` of the query images for task-stacked ``params``."""
    if bn == "query":
        return grouped_forward(model, params, batch.query.X)
    return _support_statistics_forward(model, params, batch.support.X, batch.query.X)


def _support_statistics_forward(model: Conv4, params: Params, support_X: torch.Tensor,
                                query_X: torch.Tensor) -> torch.Tensor:
    """Grouped Conv4 forward in which every batch norm normalises the query with the support set's statistics."""
    n_tasks = support_X.shape[0]

    def stack(X):  # (T, N, C, H, W) -> (N, T*C, H, W)
        return X.transpose(0, 1).reshape(X.shape[1], n_tasks * X.shape[2], *X.shape[3:])

    h_s, h_q = stack(support_X), stack(query_X)
    for index, block in enumerate(model.features):
        conv, norm = block[0], block[1]
        prefix = f"features.{index}."
        weight = params[prefix + "0.weight"]
        w, b = weight.reshape(-1, *weight.shape[2:]), params[prefix + "0.bias"].reshape(-1)
        h_s = F.conv2d(h_s, w, b, padding=conv.padding, groups=n_tasks)
        h_q = F.conv2d(h_q, w, b, padding=conv.padding, groups=n_tasks)
        var, mean = torch.var_mean(h_s, dim=(0, 2, 3), unbiased=False)
        gamma, beta = params[prefix + "1.weight"].reshape(-1), params[prefix + "1.bias"].reshape(-1)
        h_s = F.batch_norm(h_s, None, None, gamma, beta, training=True, eps=norm.eps)
        h_q = F.batch_norm(h_q, mean, var, gamma, beta, training=False, eps=norm.eps)
        h_s, h_q = F.max_pool2d(F.relu(h_s), 2), F.max_pool2d(F.relu(h_q), 2)
    h_q = h_q.reshape(h_q.shape[0], n_tasks, -1).transpose(0, 1)
    return torch.baddbmm(params["head.bias"].unsqueeze(1), h_q, params["head.weight"].transpose(1, 2))


def evaluate_episodes(model: Conv4, params: Params, sampler, n_episodes: int = 600, inner_lr: float = 0.4,
                      inner_steps: int = 10, bn: str = "query", zero_head: bool = True,
                      chunk: int = 50, adapt_chunk: int = 10, progress: bool = False) -> AccuracyEstimate:
    """Mean query accuracy after adaptation over ``n_episodes`` episodes from ``sampler``, with a 95% CI.

    ``sampler`` is an ``EpisodeSampler`` (its seed fixes the episodes); its ``meta_batch_size`` is ignored:
    episodes are drawn ``chunk`` at a time (which episodes a seed gives depends on it) and adapted ``adapt_chunk`` at
    a time (memory only: every episode is adapted on its own, so the result does not depend on it), on the device of
    ``params`` (the GPU when they are there). ``progress``: a ``tqdm`` bar over the episodes (for long cells).
    """
    n_episodes = require_int("n_episodes", n_episodes, minimum=2)
    chunk = require_int("chunk", chunk, minimum=1)
    adapt_chunk = require_int("adapt_chunk", adapt_chunk, minimum=1)
    require_finite("params", require_params(params, model))  # before any episode is drawn
    params = fit_head(params, sampler.n_way, zero_head)
    device = params["head.weight"].device
    per_episode, n_diverged = [], 0
    saved_size = sampler.meta_batch_size
    bar = tqdm(total=n_episodes, desc="episodes", disable=not progress, mininterval=0.5, leave=False)
    try:
        while len(per_episode) < n_episodes:
            sampler.meta_batch_size = min(chunk, n_episodes - len(per_episode))
            batch = sampler.sample().to(device)
            for start in range(0, batch.n_tasks, adapt_chunk):
                part = batch.subset(start, start + adapt_chunk)
                curve = adapt_tasks(model, params, part, inner_lr, inner_steps, bn, record_curve=False)
                per_episode.extend((curve.predictions == part.query.y).float().mean(dim=1).tolist())
                n_diverged += int(curve.diverged.sum())
                bar.update(part.n_tasks)
    finally:
        sampler.meta_batch_size = saved_size
        bar.close()
    if n_diverged:  # their predictions come from non-finite or exploded logits: the estimate is not meaningful
        warnings.warn(f"evaluate_episodes: adaptation diverged in {n_diverged} of {n_episodes} episodes with "
                      f"inner_lr={inner_lr:g}, inner_steps={inner_steps}: use a smaller inner_lr", RuntimeWarning,
                      stacklevel=2)
    return mean_with_ci(per_episode)


def mean_with_ci(values: Sequence[float]) -> AccuracyEstimate:
    """Mean and the half-width of the normal-approximation 95% confidence interval, 1.96 * std / sqrt(n)."""
    values = np.asarray(values, dtype=np.float64)
    if len(values) < 2:
        raise ValueError("need at least two values for a confidence interval")
    return AccuracyEstimate(float(values.mean()), float(1.96 * values.std(ddof=1) / math.sqrt(len(values))),
                            len(values))


def challenge_classifier(model: Conv4, params: Params, inner_lr: float = 0.4, inner_steps: int = 10,
                         bn: str = "query", zero_head: bool = True):
    """A classifier for ``data.evaluate_challenge``: 20-way 1-shot MAML adaptation on each run's support images.

    Returns ``classifier(support_X, query_X) -> predicted support index per query image`` (on the CPU; the
    adaptation runs on the device of ``params``).
    """
    require_finite("params", require_params(params, model))
    device = params["head.weight"].device

    def classifier(support_X: torch.Tensor, query_X: torch.Tensor) -> torch.Tensor:
        n_way = support_X.shape[0]
        batch = TaskBatch(Split(support_X.unsqueeze(0), torch.arange(n_way).unsqueeze(0)),
                          Split(query_X.unsqueeze(0), torch.zeros(1, query_X.shape[0], dtype=torch.int64)))
        curve = adapt_tasks(model, fit_head(params, n_way, zero_head), batch.to(device), inner_lr, inner_steps,
                            bn, record_curve=False)
        return curve.predictions[0].cpu()

    return classifier


def load_initialisation(path) -> tuple:
    """Load an Omniglot checkpoint; return ``(model, params, payload)`` (``params`` detached, no task dim)."""
    from .train import load_checkpoint
    model, payload = load_checkpoint(path, task_family="omniglot")
    return model, {name: p.detach() for name, p in model.named_parameters()}, payload


def default_checkpoint(name: str = "omniglot_maml_5way1shot.pt"):
    """Path of a checkpoint shipped inside the package."""
    from pathlib import Path
    return Path(__file__).resolve().parent / "checkpoints" / name
