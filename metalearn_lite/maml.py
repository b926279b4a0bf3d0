"""The MAML engine, written functionally on ``torch.func`` (Finn, Abbeel & Levine, 2017).

For one task T with support set S and query set Q, MAML adapts the shared initialisation theta by a few steps of
gradient descent on S,

    theta' = theta - inner_lr * grad_theta L_S(f_theta)          (repeated inner_steps times),

and scores the adapted parameters on Q. The meta-objective is the average query loss over tasks,
min_theta E_T[ L_Q(f_theta') ], and its gradient flows *through* the inner updates (second order).
First-order MAML treats the inner gradients as constants, dropping the second-derivative term.

A model's parameters are a plain ``dict`` of tensors and the network is called with
``torch.func.functional_call``, so adaptation never mutates the module.

This file is the whole algorithm, and every adaptation in the package runs through ``inner_update``: the
meta-gradient of every strategy, the adaptation curves, fine-tuning baselines, few-shot evaluation and the
explorers. How tasks are batched for speed (``vmap``, grouped convolutions, worker threads) lives in
``batching.py``; it only chooses the ``forward`` pass the inner loop calls, never another copy of the update.
"""

from __future__ import annotations

from functools import partial
from typing import Callable, Dict, Mapping, NamedTuple, Optional, Union

import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from . import batching
from .batch_checks import check_batch, check_graph_memory, check_inner_loop, check_task_batch, warn_if_not_finite
from .losses import check_loss_name, task_accuracies, task_losses
from .models import pool_before_relu
from .tasks import Split, TaskBatch
from .validation import require_finite, require_params

Params = Dict[str, torch.Tensor]
Forward = Callable[[Params, torch.Tensor], torch.Tensor]
"""``forward(params, X) -> predictions``: the network as a function of its parameters (the inner loop's seam)."""
InnerLR = Union[float, Mapping[str, torch.Tensor]]
"""One step size for every parameter, or one tensor per parameter of the same shape (Meta-SGD's learned rates)."""


class Adaptation(NamedTuple):
    """Result of an inner loop over a batch of tasks.

    ``params``: adapted parameters, each with a leading task dimension. The curves have shape
    ``(n_tasks, inner_steps + 1)``; entry ``[:, i]`` is measured after ``i`` inner steps (0 = the initialisation).
    ``query_accuracies`` is NaN for regression. ``query_predictions`` ``(inner_steps + 1, n_tasks, n_query, ...)``:
    the network's outputs on the query set after each step, when asked for (``keep_predictions``), else None.
    """

    params: Params
    support_losses: torch.Tensor
    query_losses: torch.Tensor
    query_accuracies: torch.Tensor
    query_predictions: Optional[torch.Tensor] = None


class MetaGradient(NamedTuple):
    """Meta-gradient averaged over the task batch, with the mean query loss and accuracy that produced it."""

    grads: Params
    loss: torch.Tensor
    accuracy: torch.Tensor


def parameters_of(model: nn.Module) -> Params:
    """The model's parameters as a detached ``dict`` (the functional view the engine works on)."""
    return {name: p.detach() for name, p in model.named_parameters()}


def model_forward(model: nn.Module) -> Forward:
    """The plain forward pass of ``model`` for one task: ``functional_call`` with the given parameters (of the
    model with each ReLU-then-max-pool run as max-pool-then-ReLU: the same numbers, ``models.pool_before_relu``)."""
    runnable = pool_before_relu(model)
    return lambda params, X: functional_call(runnable, params, (X,))


def loss_on(model: nn.Module, params: Params, data: Split, loss: str = "mse") -> torch.Tensor:
    """Loss of the network with ``params`` on one task's ``data`` (no task dimension)."""
    return task_losses(loss, functional_call(model, params, (data.X,)), data.y)


def sgd_step(params: Params, grads: Params, inner_lr: InnerLR) -> Params:
    """One plain gradient-descent step ``theta - inner_lr * grad``, parameter by parameter.

    ``inner_lr``: a number, or a dict with a tensor for each parameter (``alpha``, shaped like it): then the step
    is the elementwise ``theta - alpha * grad`` of Meta-SGD (Li et al. 2017, arXiv:1707.09835).
    """
    if isinstance(inner_lr, Mapping):
        return {name: p - inner_lr[name] * grads[name] for name, p in params.items()}
    return {name: p - inner_lr * grads[name] for name, p in params.items()}


def inner_update(model: nn.Module, params: Params, support: Split, inner_lr: InnerLR, loss: str = "mse",
                 first_order: bool = False, forward: Optional[Forward] = None) -> tuple:
    """One inner step ``theta - inner_lr * grad L_S(f_theta)``; returns ``(new params, L_S(f_theta))``.

    Differentiable: the new parameters carry the graph of the step unless ``first_order``, where the gradient
    is treated as a constant. ``forward`` defaults to the model's own forward pass on one task; with tasks
    stacked on a leading dimension (``batching``), the support loss is the *sum* of the task losses, whose
    gradient with respect to each task's own parameters is that task's gradient. ``params`` may be a subset of
    the model's parameters when ``forward`` supplies the rest (ANIL adapts the head only); ``inner_lr`` may be a
    dict of per-parameter rates (``sgd_step``).
    """
    forward = forward or model_forward(model)

    def support_loss(p):
        losses = task_losses(loss, forward(p, support.X), support.y)
        return losses.sum(), losses.detach()

    if _in_autograd_graph(params):
        # Meta-training outside torch.func transforms: ordinary autograd, the same gradient at half the dispatch
        # cost of torch.func.grad (which matters for the sinusoid MLP, where every op is tiny).
        total, losses = support_loss(params)
        grads = dict(zip(params, torch.autograd.grad(total, list(params.values()), create_graph=not first_order)))
    else:
        grads, losses = grad(support_loss, has_aux=True)(params)
    if first_order:
        grads = {name: g.detach() for name, g in grads.items()}
    return sgd_step(params, grads, inner_lr), losses


def _in_autograd_graph(params: Params) -> bool:
    """True when every parameter is an ordinary tensor tracked by autograd (not inside ``vmap``/``grad``)."""
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    if wrapped is None:  # cannot tell on this torch: torch.func.grad is right everywhere
        return False
    return torch.is_grad_enabled() and all(p.requires_grad and not wrapped(p) for p in params.values())


def inner_loop(model: nn.Module, params: Params, support: Split, inner_lr: InnerLR, inner_steps: int,
               loss: str = "mse", first_order: bool = False, forward: Optional[Forward] = None) -> Params:
    """Adapt ``params`` to one task by ``inner_steps`` gradient steps on its support set; differentiable.

    With ``first_order=True`` each inner gradient is treated as a constant (no second derivatives).
    """
    for _ in range(inner_steps):
        params, _ = inner_update(model, params, support, inner_lr, loss, first_order, forward)
    return params


def query_loss_after_adaptation(model: nn.Module, params: Params, support: Split, query: Split, inner_lr: InnerLR,
                                inner_steps: int, loss: str = "mse", first_order: bool = False,
                                forward: Optional[Forward] = None) -> tuple:
    """The MAML objective of a task: ``L_Q(f_theta')`` after the inner loop; returns ``(loss, accuracy)``.

    Scalars for one task; per-task ``(T,)`` tensors for tasks stacked by ``batching``. The loss is differentiable
    with respect to ``params`` (the meta-gradient); the accuracy is not.
    """
    forward = forward or model_forward(model)
    adapted = inner_loop(model, params, support, inner_lr, inner_steps, loss, first_order, forward)
    prediction = forward(adapted, query.X)
    return task_losses(loss, prediction, query.y), task_accuracies(loss, prediction.detach(), query.y)


def adaptation_curves(model: nn.Module, params: Params, support: Split, query: Split, inner_lr: InnerLR,
                      inner_steps: int, loss: str = "mse", forward: Optional[Forward] = None,
                      keep_predictions: bool = False) -> Adaptation:
    """The inner loop with its curves: support loss, query loss and accuracy after 0, 1, ..., ``inner_steps``.

    No gradient flows out (an evaluation, not training). ``keep_predictions``: also return the query outputs of
    every step (the explorers draw the fitted functions).
    """
    forward = forward or model_forward(model)
    support_losses, query_losses, query_accs, predictions = [], [], [], []
    with torch.no_grad():
        for step in range(inner_steps + 1):
            prediction = forward(params, query.X)
            query_losses.append(task_losses(loss, prediction, query.y))
            query_accs.append(task_accuracies(loss, prediction, query.y))
            predictions.append(prediction)
            if step < inner_steps:
                params, losses = inner_update(model, params, support, inner_lr, loss, True, forward)
            else:  # the last point of the curve needs the loss only, not another gradient
                losses = task_losses(loss, forward(params, support.X), support.y)
            support_losses.append(losses)
    stack = partial(torch.stack, dim=-1)
    kept = torch.stack(predictions) if keep_predictions else None
    return Adaptation(params, stack(support_losses), stack(query_losses), stack(query_accs), kept)


def adapt(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float, inner_steps: int,
          loss: str = "mse") -> Adaptation:
    """Adapt to every task of ``batch`` and record the adaptation curves (batched over tasks with ``vmap``).

    This is the evaluation view of the inner loop: what the widgets plot and the tables report. A learning rate
    that diverges gives non-finite curves here, without a warning: the explorers draw them as "diverged".
    """
    loss = check_loss_name(loss)
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    params = require_params(params, model)
    require_finite("params", params)
    batch = check_batch(batch, model, params, loss)

    def one_task(sX, sy, qX, qy):
        return tuple(adaptation_curves(model, params, Split(sX, sy), Split(qX, qy), inner_lr, inner_steps, loss)[:4])

    return Adaptation(*vmap(one_task)(*batch_tensors(batch)))


def meta_gradient(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float = 0.01,
                  inner_steps: int = 1, loss: str = "mse", first_order: bool = False,
                  strategy: str = "auto") -> MetaGradient:
    """Gradient of the MAML meta-loss (mean query loss after adaptation) with respect to ``params``.

    ``strategy`` chooses how tasks are batched (``batching.py``); every strategy computes the same numbers:
    ``"loop"`` runs plain autograd task by task; ``"threads"`` runs the loop's tasks on worker threads;
    ``"vmap"`` vectorises ``grad(task objective)`` over tasks; ``"grouped"`` runs all tasks at once with
    per-task weights in grouped convolutions and batched matrix products; ``"auto"`` picks the fastest for the
    model (measured by ``benchmarks/maml_speed.py``).

    Settings whose autograd graph would not fit in memory raise ValueError before any work (``check_graph_memory``);
    a non-finite meta-loss (a diverging ``inner_lr``) gives a RuntimeWarning.
    """
    loss = check_loss_name(loss)
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    strategy = batching.resolve_strategy(model, strategy)
    params = require_params(params, model)
    check_task_batch(batch, model, loss, params)
    check_graph_memory(model, params, batch, inner_steps, first_order, strategy)
    batch = check_batch(batch, model, params, loss, shapes_checked=True)
    objective = partial(query_loss_after_adaptation, inner_lr=inner_lr, inner_steps=inner_steps, loss=loss,
                        first_order=first_order)
    grads, losses, accs = batching.per_task_meta_gradients(strategy, objective, model, params, batch)
    result = MetaGradient(grads, losses.mean(), accs.mean())
    warn_if_not_finite(result.loss, params, inner_lr, inner_steps)
    return result


class MAML:
    """MAML around a model: meta-gradient, meta-training step and adaptation, with the paper's defaults.

    Parameters
    ----------
    model: the network; its parameters are the meta-learned initialisation theta.
    inner_lr, inner_steps: step size alpha and number of inner gradient steps (paper: 0.01 and 1 for sinusoids).
    first_order: drop the second-order term (FOMAML).
    loss: ``"mse"`` for regression or ``"cross_entropy"`` for classification.
    strategy: how to batch tasks: ``"auto"``, ``"loop"``, ``"threads"``, ``"vmap"`` or ``"grouped"``
        (``batching.STRATEGIES``; the same numbers, different speed).
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 1, first_order: bool = False,
                 loss: str = "mse", strategy: str = "auto"):
        self.inner_lr, self.inner_steps = check_inner_loop(inner_lr, inner_steps)
        self.model = model
        self.first_order = bool(first_order)
        self.loss = check_loss_name(loss)
        self.strategy = batching.resolve_strategy(model, strategy)

    def meta_gradient(self, batch: TaskBatch) -> MetaGradient:
        """Meta-gradient of the mean query loss over ``batch`` at the model's current parameters."""
        return meta_gradient(self.model, parameters_of(self.model), batch, self.inner_lr, self.inner_steps,
                             self.loss, self.first_order, self.strategy)

    def meta_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> MetaGradient:
        """One outer update: compute the meta-gradient, store it in ``.grad``, and step ``optimizer``."""
        return step_along(self.model, self.meta_gradient(batch), optimizer)

    def adapt(self, batch: TaskBatch, inner_steps: Optional[int] = None,
              inner_lr: Optional[float] = None) -> Adaptation:
        """Adapt to each task in ``batch`` (defaults: the training ``inner_lr`` and ``inner_steps``)."""
        return adapt(self.model, parameters_of(self.model), batch,
                     self.inner_lr if inner_lr is None else inner_lr,
                     self.inner_steps if inner_steps is None else inner_steps, self.loss)


def step_along(model: nn.Module, result: MetaGradient, optimizer: torch.optim.Optimizer) -> MetaGradient:
    """Store ``result.grads`` in the model's ``.grad`` and step ``optimizer`` (every learner's outer update)."""
    for name, p in model.named_parameters():
        p.grad = result.grads[name]
    optimizer.step()
    return result


def batch_tensors(batch: TaskBatch) -> tuple:
    """``(support X, support y, query X, query y)`` of ``batch``."""
    return batch.support.X, batch.support.y, batch.query.X, batch.query.y
