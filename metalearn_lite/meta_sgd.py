"""Meta-SGD: learned per-parameter inner learning rates (Li, Zhou, Chen & Li 2017, arXiv:1707.09835).

MAML with a vector ``alpha`` of step sizes, one per parameter entry (the same shapes as the parameters), learned
together with the initialisation:

    theta' = theta - alpha * grad_theta L_S(f_theta)        (elementwise product; inner_steps times)

    min over (theta, alpha) of  E_T[ L_Q(f_theta') ].

The rates set both the direction and the size of the inner step (an entry may even become negative). No new update
rule: the engine's ``maml.inner_update`` takes a dict of tensors as ``inner_lr`` (``maml.sgd_step``), and the
meta-gradient with respect to ``alpha`` flows through it like the one with respect to ``theta``. Tasks are batched by
MAML's strategies (``batching.py``): the rates ride along as extra entries of the parameter dict.
"""

from __future__ import annotations

from functools import partial
from typing import Dict, Iterator, Mapping, NamedTuple, Optional

import torch
from torch import nn
from torch.func import vmap

from . import batching, maml
from .batch_checks import check_batch, check_graph_memory, check_task_batch, warn_if_not_finite
from .losses import check_loss_name
from .maml import Adaptation, Params, batch_tensors, parameters_of
from .tasks import Split, TaskBatch
from .validation import require_finite, require_float, require_int, require_params

RATE = "inner_lr:"
"""Prefix of the rates' keys when they travel with the parameters through ``batching`` (``inner_lr:<name>``)."""


class MetaSGDGradient(NamedTuple):
    """Meta-gradient with respect to the initialisation (``grads``) and the rates (``inner_lr_grads``), averaged
    over the task batch, with the mean query loss and accuracy."""

    grads: Params
    inner_lr_grads: Params
    loss: torch.Tensor
    accuracy: torch.Tensor


def initial_inner_lrs(params: Params, inner_lr: float = 0.01) -> Params:
    """Rates of the shapes of ``params``, every entry ``inner_lr`` (at the start, Meta-SGD is MAML)."""
    inner_lr = require_float("inner_lr", inner_lr)
    return {name: torch.full_like(p.detach(), inner_lr) for name, p in params.items()}


def check_inner_lrs(inner_lrs, params: Params) -> Params:
    """``inner_lrs`` as a dict with a finite floating tensor of each parameter's shape; ValueError otherwise."""
    if not isinstance(inner_lrs, Mapping):
        raise ValueError(f"inner_lrs must be a dict of parameter name -> tensor of that parameter's shape "
                         f"(e.g. meta_sgd.initial_inner_lrs(params, 0.01)), got {type(inner_lrs).__name__}")
    missing = [k for k in params if k not in inner_lrs]
    unknown = [k for k in inner_lrs if k not in params]
    if missing or unknown:
        raise ValueError(f"inner_lrs must have exactly the keys of params: missing {missing}, unknown {unknown}")
    for name, p in params.items():
        rate = inner_lrs[name]
        if not isinstance(rate, torch.Tensor) or rate.shape != p.shape or not rate.is_floating_point():
            shape = tuple(rate.shape) if isinstance(rate, torch.Tensor) else type(rate).__name__
            raise ValueError(f"inner_lrs[{name!r}] must be a floating tensor of the parameter's shape "
                             f"{tuple(p.shape)}, got {shape}")
        if rate.device != p.device:
            raise ValueError(f"inner_lrs[{name!r}] is on {rate.device} but the parameter is on {p.device}")
    require_finite("inner_lrs", inner_lrs)
    return {name: inner_lrs[name] for name in params}


def query_loss_after_adaptation(model: nn.Module, params_and_rates: Params, support: Split, query: Split,
                                inner_steps: int, loss: str = "mse", first_order: bool = False,
                                forward: Optional[maml.Forward] = None) -> tuple:
    """The Meta-SGD objective of a task: ``maml.query_loss_after_adaptation`` with the rates in the dict
    (keys ``RATE + name``) as the inner step sizes; ``(loss, accuracy)``, differentiable in both."""
    params = {k: v for k, v in params_and_rates.items() if not k.startswith(RATE)}
    rates = {k: params_and_rates[RATE + k] for k in params}
    query_loss, accuracy = maml.query_loss_after_adaptation(model, params, support, query, rates, inner_steps, loss,
                                                            first_order, forward)
    # Ties every rate into the graph: with no inner step (inner_steps=0) their gradient is zero, not an error.
    unused = sum((0.0 * rate).sum() for rate in rates.values())
    return query_loss + unused, accuracy


def meta_gradient(model: nn.Module, params: Params, inner_lrs: Params, batch: TaskBatch, inner_steps: int = 1,
                  loss: str = "mse", first_order: bool = False, strategy: str = "auto") -> MetaSGDGradient:
    """Gradient of the Meta-SGD meta-loss with respect to the initialisation ``params`` and the rates ``inner_lrs``.

    The other arguments are those of ``maml.meta_gradient`` (same checks, same batching strategies).
    ``first_order``: the inner gradients are constants; the rates still get their gradient
    ``-grad L_S * dL_Q/dtheta'`` (they multiply the constant inner gradient).
    """
    loss = check_loss_name(loss)
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    strategy = batching.resolve_strategy(model, strategy)
    params = require_params(params, model)
    inner_lrs = check_inner_lrs(inner_lrs, params)
    check_task_batch(batch, model, loss, params)
    check_graph_memory(model, params, batch, inner_steps, first_order, strategy)
    batch = check_batch(batch, model, params, loss, shapes_checked=True)
    objective = partial(query_loss_after_adaptation, inner_steps=inner_steps, loss=loss, first_order=first_order)
    together = {**params, **{RATE + k: v for k, v in inner_lrs.items()}}
    grads, losses, accs = batching.per_task_meta_gradients(strategy, objective, model, together, batch)
    result = MetaSGDGradient({k: grads[k] for k in params}, {k: grads[RATE + k] for k in params}, losses.mean(),
                             accs.mean())
    if not bool(torch.isfinite(result.loss)):
        warn_if_not_finite(result.loss, params, mean_rate(inner_lrs), inner_steps)
    return result


def mean_rate(inner_lrs: Params) -> float:
    """The mean of all rates (one number to print)."""
    total = sum(float(r.detach().sum()) for r in inner_lrs.values())
    return total / max(1, sum(r.numel() for r in inner_lrs.values()))


def adapt(model: nn.Module, params: Params, inner_lrs: Params, batch: TaskBatch, inner_steps: int,
          loss: str = "mse") -> Adaptation:
    """Adapt to every task of ``batch`` with the learned rates and record the curves (as ``maml.adapt``)."""
    loss = check_loss_name(loss)
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    params = require_params(params, model)
    require_finite("params", params)
    inner_lrs = {k: v.detach() for k, v in check_inner_lrs(inner_lrs, params).items()}
    batch = check_batch(batch, model, params, loss)

    def one_task(sX, sy, qX, qy):
        return tuple(maml.adaptation_curves(model, params, Split(sX, sy), Split(qX, qy), inner_lrs, inner_steps,
                                            loss)[:4])

    return Adaptation(*vmap(one_task)(*batch_tensors(batch)))


class MetaSGD:
    """Meta-SGD around a model: the initialisation is the model's parameters, the rates ``inner_lrs`` live here.

    Parameters
    ----------
    model: the network (its parameters: the meta-learned initialisation theta).
    inner_lr: the initial value of every rate (Meta-SGD starts as MAML with this step size); kept as the
        ``inner_lr`` attribute (what ``train.meta_train`` names when a run diverges).
    inner_steps: inner gradient steps (Li et al.: one).
    first_order, loss, strategy: as for ``maml.MAML``.

    Training: ``train.meta_train(MetaSGD(model), sample_batch, ...)``. ``meta_step`` stores both gradients and
    steps the optimiser; when the optimiser does not hold the rates yet (``meta_train``'s default Adam over
    ``model.parameters()``), they are added to it as a parameter group of their own, with its settings.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 1, first_order: bool = False,
                 loss: str = "mse", strategy: str = "auto", inner_lrs: Optional[Params] = None):
        self.inner_lr = require_float("inner_lr", inner_lr)
        self.inner_steps = require_int("inner_steps", inner_steps, minimum=0)
        self.model = model
        self.first_order = bool(first_order)
        self.loss = check_loss_name(loss)
        self.strategy = batching.resolve_strategy(model, strategy)
        params = parameters_of(model)
        rates = initial_inner_lrs(params, self.inner_lr) if inner_lrs is None else check_inner_lrs(inner_lrs,
                                                                                                   params)
        self.inner_lrs: Dict[str, nn.Parameter] = {k: nn.Parameter(v.detach().clone()) for k, v in rates.items()}

    def parameters(self) -> Iterator[torch.Tensor]:
        """Everything meta-learned: the model's parameters, then the rates (for an optimiser)."""
        yield from self.model.parameters()
        yield from self.inner_lrs.values()

    def meta_gradient(self, batch: TaskBatch) -> MetaSGDGradient:
        """Meta-gradient with respect to the model's parameters and the rates, at their current values."""
        return meta_gradient(self.model, parameters_of(self.model), {k: v.detach() for k, v in self.inner_lrs.items()},
                             batch, self.inner_steps, self.loss, self.first_order, self.strategy)

    def meta_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> MetaSGDGradient:
        """One outer update of the initialisation and the rates; returns the meta-gradient."""
        result = self.meta_gradient(batch)
        for name, p in self.model.named_parameters():
            p.grad = result.grads[name]
        for name, rate in self.inner_lrs.items():
            rate.grad = result.inner_lr_grads[name]
        held = {id(p) for group in optimizer.param_groups for p in group["params"]}
        missing = [rate for rate in self.inner_lrs.values() if id(rate) not in held]
        if missing:
            optimizer.add_param_group({"params": missing})
        optimizer.step()
        return result

    def adapt(self, batch: TaskBatch, inner_steps: Optional[int] = None) -> Adaptation:
        """Adapt to each task in ``batch`` with the learned rates (default: the training ``inner_steps``)."""
        return adapt(self.model, parameters_of(self.model), self.inner_lrs, batch,
                     self.inner_steps if inner_steps is None else inner_steps, self.loss)

    def inner_lrs_as_lists(self) -> dict:
        """The rates as nested lists of numbers (what a checkpoint's metadata can hold)."""
        return {name: rate.detach().cpu().tolist() for name, rate in self.inner_lrs.items()}

    def load_inner_lrs(self, inner_lrs: Mapping) -> None:
        """Set the rates from tensors or nested lists (``inner_lrs_as_lists``), checked against the model."""
        params = parameters_of(self.model)
        tensors = {k: torch.as_tensor(v, dtype=params[k].dtype, device=params[k].device) if k in params else v
                   for k, v in inner_lrs.items()}
        for name, value in check_inner_lrs(tensors, params).items():
            with torch.no_grad():
                self.inner_lrs[name].copy_(value)
