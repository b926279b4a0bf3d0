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
from itertools import count, islice
from typing import Dict, Iterator, Mapping, NamedTuple, Optional, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

from . import maml
from .batch_checks import check_batch
from .data import EpisodeSampler
from .divergence import BLOWUP, blew_up
from .grouped import grouped_forward
from .losses import task_losses
from .maml import InnerLR
from .meta_sgd import check_inner_lrs
from .models import Conv4
from .tasks import Split, TaskBatch
from .validation import require_choice, require_finite, require_float, require_int, require_params

Params = Dict[str, torch.Tensor]
BN_MODES = ("query", "support")


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


def adaptation_steps(model: Conv4, params: Params, batch: TaskBatch, inner_lr: InnerLR, bn: str = "query",
                     measure_queries: bool = True, blowup: float = BLOWUP) -> Iterator[AdaptationStep]:
    """Yield the state after 0, 1, 2, ... plain SGD steps (``maml.inner_update``, first order) on each task's
    support set, endlessly.

    ``inner_lr``: one step size, or Meta-SGD's learned rates (a tensor per parameter, ``meta_sgd.check_inner_lrs``).
    Each state is computed when it is asked for (the explorer continues a cached generator when a student adds
    steps). Everything is checked here, when called, not at the first step.
    """
    bn = require_choice("bn", bn, BN_MODES)
    params = require_params(params, model)
    require_finite("params", params)
    if isinstance(inner_lr, Mapping):
        inner_lr = {name: rate.detach() for name, rate in check_inner_lrs(inner_lr, params).items()}
    else:
        inner_lr = require_float("inner_lr", inner_lr, positive=True)
    batch = check_batch(batch, model, params, "cross_entropy")
    return _adaptation_steps(model, params, batch, inner_lr, bn, measure_queries, blowup)


def _adaptation_steps(model, params, batch, inner_lr, bn, measure_queries, blowup) -> Iterator[AdaptationStep]:
    tracker = _DivergenceTracker(batch.n_tasks, batch.support.X.device, blowup)
    fast = task_copies(params, batch.n_tasks)
    for step in count():
        predictions = accuracies = None
        if measure_queries:
            predictions, accuracies = tracker.score_queries(query_logits(model, fast, batch, bn), batch.query.y)
        adapted, losses = first_order_step(model, fast, batch.support, inner_lr)
        yield AdaptationStep(step, fast, predictions, accuracies, tracker.support(losses), tracker.diverged.clone())
        fast = adapted


def first_order_step(model: Conv4, params: Params, support, inner_lr: InnerLR) -> tuple:
    """``maml.inner_update`` at test time (first order, task-stacked ``params``), on ordinary autograd leaves.

    Why leaves: the detached parameters would send the step through ``torch.func.grad``, whose dispatch costs
    about 1.5 ms of a 6.5 ms Conv4-48 step; autograd computes the same gradient. The new parameters are detached,
    so a long adaptation keeps no chain of graphs alive."""
    with torch.enable_grad():
        leaves = {name: p.detach().requires_grad_() for name, p in params.items()}
        adapted, losses = maml.inner_update(model, leaves, support, inner_lr, "cross_entropy", True,
                                            stacked_forward(model))
    return {name: p.detach() for name, p in adapted.items()}, losses


def adapt_tasks(model: Conv4, params: Params, batch: TaskBatch, inner_lr: float, inner_steps: int,
                bn: str = "query", record_curve: bool = True, blowup: float = BLOWUP) -> FewShotCurve:
    """Adapt a Conv4 initialisation to every task of ``batch`` with ``inner_steps`` plain SGD steps (first order).

    Parameters
    ----------
    params: the initialisation (a dict without task dimension), head already of size ``n_way``.
    bn: ``"query"`` (transductive) or ``"support"`` batch statistics for the query images (module docstring).
    record_curve: measure query accuracy after every step (``False``: only after the last one, faster).
    blowup: a task whose support loss exceeds ``blowup * max(first loss, 1)`` is marked diverged (``divergence``).
    """
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    if record_curve:
        states = list(islice(adaptation_steps(model, params, batch, inner_lr, bn, True, blowup), inner_steps + 1))
        return FewShotCurve(torch.stack([state.query_accuracies for state in states], dim=1),
                            torch.stack([state.support_losses for state in states], dim=1), states[-1].predictions,
                            states[-1].diverged)
    # Only the last step is scored: the inner loop, then one forward on each set (no gradient after the last step).
    inner_lr = require_float("inner_lr", inner_lr, positive=True)
    bn = require_choice("bn", bn, BN_MODES)
    params = require_params(params, model)
    require_finite("params", params)
    batch = check_batch(batch, model, params, "cross_entropy")
    tracker = _DivergenceTracker(batch.n_tasks, batch.support.X.device, blowup)
    fast, support_losses = task_copies(params, batch.n_tasks), []
    for _ in range(inner_steps):
        fast, losses = first_order_step(model, fast, batch.support, inner_lr)
        support_losses.append(tracker.support(losses))
    with torch.no_grad():
        losses = task_losses("cross_entropy", stacked_forward(model)(fast, batch.support.X), batch.support.y)
    support_losses.append(tracker.support(losses))
    predictions, accuracies = tracker.score_queries(query_logits(model, fast, batch, bn), batch.query.y)
    return FewShotCurve(accuracies.unsqueeze(1), torch.stack(support_losses, dim=1), predictions, tracker.diverged)


class _DivergenceTracker:
    """Which tasks have diverged so far (the package's rule, ``divergence.blew_up``, on the support loss, and
    non-finite query logits); their numbers become NaN."""

    def __init__(self, n_tasks: int, device, blowup: float):
        self.diverged = torch.zeros(n_tasks, dtype=torch.bool, device=device)
        self.start, self.blowup = None, blowup

    def support(self, losses: torch.Tensor) -> torch.Tensor:
        self.start = losses if self.start is None else self.start
        self.diverged = self.diverged | blew_up(losses, self.start, self.blowup)
        return torch.where(self.diverged, torch.full_like(losses, float("nan")), losses)

    def score_queries(self, logits: torch.Tensor, y: torch.Tensor) -> tuple:
        predictions = logits.argmax(dim=-1)
        self.diverged = self.diverged | ~torch.isfinite(logits).all(dim=-1).all(dim=-1)
        correct = (predictions == y).float().mean(dim=1)
        return predictions, torch.where(self.diverged, torch.full_like(correct, float("nan")), correct)


def task_copies(params: Params, n_tasks: int) -> Params:
    """``params`` repeated along a new leading task dimension (each task adapts its own copy)."""
    return {name: p.detach().unsqueeze(0).repeat(n_tasks, *([1] * p.dim())) for name, p in params.items()}


def stacked_forward(model: Conv4):
    """The engine's forward pass for task-stacked parameters: all tasks in one grouped Conv4 (``grouped.py``)."""
    return lambda params, X: grouped_forward(model, params, X)


def query_logits(model: Conv4, params: Params, batch: TaskBatch, bn: str = "query") -> torch.Tensor:
    """Logits ``(n_tasks, n_query, n_way)`` of the query images for task-stacked ``params`` (no gradient)."""
    with torch.no_grad():
        if bn == "query":
            return grouped_forward(model, params, batch.query.X)
        return grouped_forward(model, params, batch.query.X, statistics_from=batch.support.X)


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
    """Path of the Omniglot checkpoint shipped inside the package (``train.shipped_checkpoint``)."""
    from .train import shipped_checkpoint
    return shipped_checkpoint(name)


# ---------------------------------------------------------------------------------------------------------------
# One episode, step by step: what the episode explorer of notebook 5 computes on every slider move.


def sample_episode(characters, episode: int, n_way: int = 5, k_shot: int = 1, k_query: int = 5):
    """Episode number ``episode`` (a seed) of ``characters``, as a ``TaskBatch`` of one task."""
    return EpisodeSampler(characters, n_way, k_shot, k_query, meta_batch_size=1, seed=int(episode)).sample()


def episode_adaptation(inner_lr: float, inner_steps: int, episode: int, model, params: Dict[str, torch.Tensor],
                       characters, n_way: int = 5, k_shot: int = 1, k_query: int = 5, bn: str = "query",
                       zero_head: bool = True, cache: Optional[dict] = None) -> dict:
    """Adapt ``params`` to one episode; return what the explorer draws.

    Returns a dict with ``batch`` (the episode), ``predictions`` (query labels after ``inner_steps``),
    ``steps`` and ``accuracies`` (query accuracy after 0..inner_steps steps, NaN after divergence),
    ``support_losses``, ``accuracy`` (final, NaN if diverged), ``diverged`` and the settings.
    ``cache``: a dict kept between calls (the explorer's); moving only the steps slider then continues or slices
    the adaptation already computed instead of starting again.
    """
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    key = (int(episode), float(inner_lr), n_way, k_shot, k_query, bn, zero_head, id(params), id(characters))
    entry = None if cache is None else cache.get(key)
    if entry is None:
        batch = sample_episode(characters, episode, n_way, k_shot, k_query)
        steps = adaptation_steps(model, fit_head(params, n_way, zero_head), batch, inner_lr, bn=bn)
        entry = {"batch": batch, "generator": steps, "states": []}
        if cache is not None:
            cache.clear()  # one adaptation at a time: the explorer only ever continues the current one
            cache[key] = entry
    while len(entry["states"]) <= inner_steps:
        entry["states"].append(next(entry["generator"]))
    states = entry["states"][:inner_steps + 1]
    accuracies = np.array([float(state.query_accuracies[0]) for state in states])
    diverged = bool(states[-1].diverged[0])
    return {"batch": entry["batch"], "predictions": states[-1].predictions[0], "steps": np.arange(inner_steps + 1),
            "accuracies": accuracies, "support_losses": np.array([float(s.support_losses[0]) for s in states]),
            "accuracy": float("nan") if diverged else float(accuracies[-1]), "diverged": diverged,
            "inner_lr": float(inner_lr), "inner_steps": int(inner_steps), "episode": int(episode),
            "n_way": n_way, "k_shot": k_shot}
