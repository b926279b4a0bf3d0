"""The meta-learners by name: build one for a training command's ``--method``, rebuild one from its checkpoint,
and score any of them on the same seeded few-shot episodes (notebook 6's side-by-side comparison).

Methods: ``maml`` (second order), ``fomaml`` (first order), ``reptile``, ``anil``, ``meta_sgd``, ``protonet``.
"""

from __future__ import annotations

import concurrent.futures
import os
from typing import Optional, Sequence

import torch
from torch import nn

from . import anil, few_shot, meta_sgd, protonet, reptile
from .data.challenge import ChallengeResult, ChallengeRun, runs_as_task_batch
from .maml import MAML, parameters_of
from .validation import require_choice, require_float, require_int

METHODS = ("maml", "fomaml", "reptile", "anil", "meta_sgd", "protonet")
INNER_STEPS = {"reptile": 5}
"""Default inner steps where a method needs other than MAML's one (Reptile with one step is joint training)."""


def make_learner(method: str, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 1,
                 loss: str = "mse", strategy: str = "auto", first_order: bool = False):
    """The learner of ``method`` around ``model``; each has ``meta_step(batch, optimizer)``, ``inner_lr``,
    ``model`` and ``adapt(batch)``, so ``train.meta_train`` trains it. ``first_order`` applies to maml, anil
    and meta_sgd (``fomaml`` is maml with it)."""
    method = require_choice("method", method, METHODS)
    if method in ("maml", "fomaml"):
        return MAML(model, inner_lr, inner_steps, first_order or method == "fomaml", loss, strategy)
    if method == "reptile":
        return reptile.Reptile(model, inner_lr, inner_steps, loss)
    if method == "anil":
        return anil.ANIL(model, inner_lr, inner_steps, first_order, loss, strategy)
    if method == "meta_sgd":
        return meta_sgd.MetaSGD(model, inner_lr, inner_steps, first_order, loss, strategy)
    return protonet.ProtoNet(model)


def method_of(learner) -> str:
    """The method name of ``learner``."""
    if isinstance(learner, anil.ANIL):
        return "anil"
    if isinstance(learner, MAML):
        return "fomaml" if learner.first_order else "maml"
    return {reptile.Reptile: "reptile", meta_sgd.MetaSGD: "meta_sgd", protonet.ProtoNet: "protonet"}[type(learner)]


def learner_from_checkpoint(model: nn.Module, payload: dict, loss: Optional[str] = None):
    """The learner a training command trained, rebuilt from ``train.load_checkpoint``'s ``(model, payload)``:
    its method, inner settings and (Meta-SGD) learned rates. Checkpoints from before ``--method`` are MAML."""
    metadata = payload.get("metadata", {})
    settings = metadata.get("settings", {})
    method = metadata.get("method", "maml")
    method = "fomaml" if method == "maml" and settings.get("first_order") else method
    loss = loss or ("cross_entropy" if metadata.get("task_family") == "omniglot" else "mse")
    learner = make_learner(method, model, settings.get("inner_lr", 0.01), settings.get("inner_steps", 1), loss)
    if method == "meta_sgd":
        learner.load_inner_lrs(metadata["inner_lrs"])
    return learner


def rates_for_n_way(inner_lrs: dict, n_way: int) -> dict:
    """Meta-SGD rates for a zero head of ``n_way`` classes: each head rate is the mean of the trained head's rates
    over the classes (classes are exchangeable, as a zero head's rows are)."""
    out = dict(inner_lrs)
    for name in ("head.weight", "head.bias"):
        rate = inner_lrs[name].detach()
        out[name] = rate.mean(dim=0, keepdim=True).expand(n_way, *rate.shape[1:]).clone()
    return out


def episode_accuracies(learner, batch, inner_lr: Optional[float] = None, inner_steps: Optional[int] = None,
                       zero_head: bool = True) -> torch.Tensor:
    """Query accuracy ``(n_tasks,)`` of each classification task of ``batch`` after the learner's own adaptation
    (MAML, FOMAML, Reptile: every weight; ANIL: the head; Meta-SGD: the learned rates; ProtoNet: prototypes).

    ``zero_head``: start from a zero head sized for the batch's classes (``few_shot.params_for_n_way``), else the
    trained head (which must fit). Adaptation defaults to the learner's training ``inner_lr`` and ``inner_steps``.
    """
    return accuracy_curves(learner, batch, inner_lr, inner_steps, zero_head, record_curve=False)[:, -1]


def accuracy_curves(learner, batch, inner_lr: Optional[float] = None, inner_steps: Optional[int] = None,
                    zero_head: bool = True, record_curve: bool = True) -> torch.Tensor:
    """Query accuracy ``(n_tasks, inner_steps + 1)`` after 0, 1, ... steps of the learner's own adaptation
    (notebook 6's explorer; ``episode_accuracies`` for the last step only). ProtoNet has no steps: its accuracy is
    the same at every step. Meta-SGD adapts with its learned rates (``inner_lr`` is not used)."""
    if isinstance(learner, protonet.ProtoNet):
        steps = 0 if inner_steps is None else require_int("inner_steps", inner_steps, minimum=0)
        return learner.adapt(batch).query_accuracies[:, -1:].expand(-1, steps + 1)
    inner_lr = learner.inner_lr if inner_lr is None else inner_lr
    inner_steps = learner.inner_steps if inner_steps is None else require_int("inner_steps", inner_steps, minimum=0)
    params = starting_params(learner, batch, zero_head)
    model = learner.model
    if isinstance(learner, anil.ANIL):
        curves = anil.adapt(model, params, batch, inner_lr, inner_steps, "cross_entropy", learner.head)
    elif isinstance(learner, meta_sgd.MetaSGD):
        curves = meta_sgd.adapt(model, params, step_sizes(learner, batch, inner_lr, zero_head), batch, inner_steps,
                                "cross_entropy")
    else:
        curve = few_shot.adapt_tasks(model, params, batch, inner_lr, inner_steps, record_curve=record_curve)
        return curve.query_accuracies if record_curve else curve.query_accuracies[:, -1:]
    return curves.query_accuracies


def starting_params(learner, batch, zero_head: bool = True) -> dict:
    """The initialisation a learner adapts from on ``batch``: its weights, with a zero head sized for the batch's
    classes (``zero_head``) or its trained head."""
    return few_shot.fit_head(parameters_of(learner.model), protonet.n_way_of(batch), zero_head)


def fine_tunes_every_weight(learner) -> bool:
    """MAML, FOMAML, Reptile and Meta-SGD: gradient steps on every weight (``few_shot.adaptation_steps``) at test
    time; Meta-SGD's with its learned rates (``step_sizes``)."""
    return not isinstance(learner, (anil.ANIL, protonet.ProtoNet))


def step_sizes(learner, batch, inner_lr: float, zero_head: bool = True):
    """The inner step size a learner adapts with on ``batch``: ``inner_lr``, or Meta-SGD's learned rates (their
    head rates sized for the batch's classes when the head is a zero head)."""
    if not isinstance(learner, meta_sgd.MetaSGD):
        return inner_lr
    return rates_for_n_way(learner.inner_lrs, protonet.n_way_of(batch)) if zero_head else learner.inner_lrs


def challenge_result(learner, runs: Sequence[ChallengeRun], inner_lr: Optional[float] = None,
                     inner_steps: Optional[int] = None, zero_head: bool = True) -> ChallengeResult:
    """The 20-run one-shot challenge for any learner: each run is one 20-way 1-shot task (its 20 query images
    are the query set), adapted the learner's own way as in ``episode_accuracies``; a run's error is the
    fraction of its queries classified wrong. For MAML this is ``data.evaluate_challenge`` with
    ``few_shot.challenge_classifier``, all runs at once."""
    if not runs:
        raise ValueError("runs must hold at least one challenge run (data.load_challenge_runs())")
    device = next(learner.model.parameters()).device
    accuracies = episode_accuracies(learner, runs_as_task_batch(runs).to(device), inner_lr, inner_steps, zero_head)
    errors = tuple(round(1 - float(accuracy), 6) for accuracy in accuracies.cpu())   # float32 accuracies: 6 digits
    return ChallengeResult(errors, sum(errors) / len(errors))


def evaluate_episodes(learner, sampler, n_episodes: int = 600, inner_lr: Optional[float] = None,
                      inner_steps: Optional[int] = None, zero_head: bool = True,
                      chunk: int = 50) -> few_shot.AccuracyEstimate:
    """Mean query accuracy over ``n_episodes`` seeded episodes of ``sampler`` with a 95% CI, for any learner.

    MAML, FOMAML and Reptile go through ``few_shot.evaluate_episodes`` (the numbers notebook 5 reports); the
    others adapt their own way (``episode_accuracies``). Batch norm: the query batch's statistics (transductive).
    """
    if type(learner) in (MAML, reptile.Reptile):
        return few_shot.evaluate_episodes(learner.model, parameters_of(learner.model), sampler, n_episodes,
                                          learner.inner_lr if inner_lr is None else inner_lr,
                                          learner.inner_steps if inner_steps is None else inner_steps,
                                          "query", zero_head, chunk)
    n_episodes = require_int("n_episodes", n_episodes, minimum=2)
    device = next(learner.model.parameters()).device
    per_episode, saved_size = [], sampler.meta_batch_size
    try:
        while len(per_episode) < n_episodes:
            sampler.meta_batch_size = min(chunk, n_episodes - len(per_episode))
            batch = sampler.sample().to(device)
            per_episode.extend(episode_accuracies(learner, batch, inner_lr, inner_steps, zero_head).tolist())
    finally:
        sampler.meta_batch_size = saved_size
    return few_shot.mean_with_ci(per_episode)


def comparison_data(learners: dict, chosen, episode: int, inner_lr: float, inner_steps: int, characters,
                    n_way: int = 5, k_shot: int = 1, k_query: int = 5, episodes: int = 1,
                    cache: Optional[dict] = None, workers: Optional[int] = None) -> dict:
    """Notebook 6's explorer: query accuracy against inner steps of each ``chosen`` learner on the same episodes.

    ``learners``: name -> ``(learner, zero_head)``; ``chosen``: the names to adapt. Every method sees the same
    ``episodes`` seeded episodes (seeds ``episode``, ``episode + 1``, ...); the curve is their mean. Meta-SGD uses
    its learned rates and ProtoNet has no inner steps (a flat line). ``cache`` (a dict kept between calls) holds
    each method's longest curve per setting (``curve_key``), so that choosing one more method adapts only that one,
    fewer steps are a prefix of a longer curve, and a learning-rate move leaves Meta-SGD and ProtoNet alone.
    ``workers``: how many methods adapt at the same time (default: one per CPU core, at most the methods to adapt;
    each keeps the torch thread setting, so the numbers are those of one method at a time).
    Returns ``{"steps", "curves": name -> (inner_steps + 1,) array, "n_way", "k_shot", "inner_lr", "episode",
    "episodes"}``.
    """
    import numpy as np

    from .data import EpisodeSampler
    chosen = [require_choice("method", name, list(learners)) for name in chosen]
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    inner_lr = require_float("inner_lr", inner_lr, minimum=0.0)
    cache = {} if cache is None else cache
    keys = {name: curve_key(name, learners[name][0], episode, episodes, n_way, k_shot, k_query, inner_lr)
            for name in chosen}
    missing = [name for name in chosen if needs_adaptation(cache.get(keys[name]), learners[name][0], inner_steps)]
    if missing:   # one episode batch for all of them; the methods adapt side by side, one per core
        batch = EpisodeSampler(characters, n_way, k_shot, k_query, meta_batch_size=episodes, seed=int(episode)).sample()

        def curve_of(name):
            learner, zero_head = learners[name]
            return extended_curve(cache.get(keys[name]), learner, batch, inner_lr, inner_steps, zero_head)
        for name, curve in zip(missing, map_side_by_side(curve_of, missing, workers)):
            cache.pop(keys[name], None)   # re-inserted last: the cache's order is from least to most recent
            cache[keys[name]] = curve
            keep_latest_adaptations(cache, name)
    curves = {}
    for name in chosen:
        cached = cache[keys[name]].values
        if len(cached) < inner_steps + 1:   # ProtoNet: the same accuracy at every step
            cached = np.full(inner_steps + 1, cached[-1])
        curves[name] = cached[:inner_steps + 1]
    return {"steps": np.arange(inner_steps + 1), "curves": curves, "n_way": n_way, "k_shot": k_shot,
            "inner_lr": inner_lr, "episode": episode, "episodes": episodes}


ADAPTATIONS_KEPT = 4
"""Adaptations kept alive per method in the explorer's cache (each holds its episodes' adapted weights, about
0.5 MB an episode for Conv4-48): a student going back to a recent setting and adding steps only pays for the new
steps."""


def keep_latest_adaptations(cache: dict, name: str, kept: int = ADAPTATIONS_KEPT) -> None:
    """Let go of the adapted weights of all but ``name``'s ``kept`` most recent settings (their curves stay)."""
    alive = [curve for key, curve in cache.items() if key[0] == name and curve.steps is not None]
    for curve in alive[:-kept]:
        curve.steps = None


class CurveSoFar:
    """A method's explorer curve for one setting: ``values``, the mean query accuracy after 0, 1, ... steps; and,
    for a method that fine-tunes every weight, ``steps``: its ``few_shot.adaptation_steps``, which continue from
    the last step when more are asked for (None: more steps mean adapting again from the start)."""

    def __init__(self, values, steps=None):
        self.values, self.steps = values, steps


def extended_curve(cached: Optional[CurveSoFar], learner, batch, inner_lr: float, inner_steps: int,
                   zero_head: bool = True) -> CurveSoFar:
    """The curve to ``inner_steps`` steps: ``cached`` continued where its adaptation stopped, else adapted anew
    (``accuracy_curves``; MAML, FOMAML, Reptile and Meta-SGD through ``few_shot.adaptation_steps``, kept to
    continue)."""
    import numpy as np

    def mean_accuracy(state) -> float:
        return state.query_accuracies.mean().item()

    if cached is not None and cached.steps is not None:
        more = [mean_accuracy(next(cached.steps)) for _ in range(inner_steps + 1 - len(cached.values))]
        return CurveSoFar(np.concatenate([cached.values, np.asarray(more, dtype=cached.values.dtype)]), cached.steps)
    if fine_tunes_every_weight(learner):
        steps = few_shot.adaptation_steps(learner.model, starting_params(learner, batch, zero_head), batch,
                                          step_sizes(learner, batch, inner_lr, zero_head))
        return CurveSoFar(np.asarray([mean_accuracy(next(steps)) for _ in range(inner_steps + 1)], np.float32), steps)
    return CurveSoFar(accuracy_curves(learner, batch, inner_lr, inner_steps, zero_head).mean(dim=0).numpy())


def needs_adaptation(cached: Optional[CurveSoFar], learner, inner_steps: int) -> bool:
    """True when the cache has no curve for this setting, or a shorter one (ProtoNet's flat line is never short)."""
    return cached is None or (len(cached.values) < inner_steps + 1 and not isinstance(learner, protonet.ProtoNet))


def map_side_by_side(function, items: list, workers: Optional[int] = None) -> list:
    """``[function(item) for item in items]``, with up to ``workers`` (default: the CPU cores) running at once in
    threads: torch releases the interpreter lock in its kernels, so independent adaptations overlap on the cores."""
    workers = min(len(items), workers or os.cpu_count() or 1)
    if workers <= 1:
        return [function(item) for item in items]
    with concurrent.futures.ThreadPoolExecutor(workers) as pool:
        return list(pool.map(function, items))


def curve_key(name: str, learner, episode: int, episodes: int, n_way: int, k_shot: int, k_query: int,
              inner_lr: float) -> tuple:
    """What a method's explorer curve depends on: Meta-SGD's rates are learned (no ``inner_lr``), ProtoNet has no
    inner loop (neither ``inner_lr`` nor steps; its flat curve is stretched to any length)."""
    uses_inner_lr = not isinstance(learner, (protonet.ProtoNet, meta_sgd.MetaSGD))
    return (name, int(episode), int(episodes), n_way, k_shot, k_query, float(inner_lr) if uses_inner_lr else None)


def load_learner(path) -> tuple:
    """``(learner, zero_head)`` from an Omniglot checkpoint of any method (``train.load_checkpoint``, weights only)."""
    from .train import load_checkpoint
    model, payload = load_checkpoint(path, task_family="omniglot")
    return learner_from_checkpoint(model, payload), payload["metadata"]["settings"]["zero_head"]


def query_loss_curves(learner, batch, inner_steps: Optional[int] = None,
                      inner_lr: Optional[float] = None) -> torch.Tensor:
    """Query loss ``(n_tasks, inner_steps + 1)`` after 0, 1, ... steps of the learner's own adaptation on a
    regression batch (notebook 6's sinusoid table): MAML, FOMAML and Reptile adapt every weight, ANIL the head,
    Meta-SGD with its learned rates (``inner_lr`` is not used there)."""
    inner_lr = learner.inner_lr if inner_lr is None else inner_lr
    inner_steps = learner.inner_steps if inner_steps is None else require_int("inner_steps", inner_steps, minimum=0)
    model, params = learner.model, parameters_of(learner.model)
    if isinstance(learner, anil.ANIL):
        return anil.adapt(model, params, batch, inner_lr, inner_steps, learner.loss, learner.head).query_losses
    if isinstance(learner, meta_sgd.MetaSGD):
        return meta_sgd.adapt(model, params, learner.inner_lrs, batch, inner_steps, learner.loss).query_losses
    if isinstance(learner, protonet.ProtoNet):
        raise ValueError("prototypical networks classify; query_loss_curves is for regression learners")
    from .maml import adapt
    return adapt(model, params, batch, inner_lr, inner_steps, getattr(learner, "loss", "mse")).query_losses
