"""Closed-form MAML meta-gradient for a Conv4 whose linear head starts every inner loop at zero (one inner step).

Setting: ``Conv4`` = body ``phi_theta`` (``features``, batch norm with batch statistics) + head ``z = W phi + b``,
cross-entropy, ONE inner SGD step of size ``alpha`` on the support set S (``n`` examples, ``N`` classes), and
``W = 0``, ``b = 0`` (the "zero head"). Write ``phi_i`` for the support features (one batch: batch norm couples
them), ``p_i = softmax(z_i)``, ``r_i = p_i - onehot(y_i)``, and ``P = diag(p) - p p^T`` for the softmax Jacobian.

Why the general engine's numbers have a closed form here. At ``W = b = 0`` every ``p_i`` is uniform (``1/N``),
whatever the body, so ``P = (I - 11^T/N) / N`` is a constant. The inner gradient reaching the body,
``J_S^T W^T r / n``, passes through ``W = 0`` and vanishes: the adapted body is ``theta' = theta``, and its
derivative with respect to ``theta`` is the identity (every term of ``d g_theta / d theta`` carries a ``W``).
The adapted head is an explicit, differentiable function of the support features::

    W' = -alpha/n * sum_i r_i phi_i^T,     b' = -alpha/n * sum_i r_i,     r_i = 1/N - onehot(y_i).

With ``L_Q(theta, W', b')`` the query loss at the adapted weights, ``u = dL_Q/dtheta'`` (through the query
features only), ``G_W = dL_Q/dW'`` and ``G_b = dL_Q/db'`` (all first-order autograd), the exact meta-gradient is

* body: ``u + d/dtheta <G_W, W'(phi_S(theta))>``: backpropagating the query loss through the differentiable
  ``W'`` (one extra first-order backward pass through the support features). No double backward.
* head, from ``W' = W - alpha g_W(W, b)`` and ``theta' = theta - alpha g_theta(W)``, differentiated at zero:
  ``dW'/dW`` brings ``G_W`` minus the softmax term ``alpha/n P Z^T phi_S`` and ``db'/dW`` brings its share of
  it, where row ``i`` of ``Z`` is ``G_W phi_i + G_b`` (the query gradient read as a head on the support features);
  ``d theta'/dW`` (``theta' = theta - alpha/n J_S^T W^T r``) pairs with ``u`` into ``-alpha/n sum_i r_i (J_i u)^T``,
  the derivative of the adapted head ``W'(theta)`` along the body's query gradient ``u``: a forward-mode
  ``torch.func.jvp`` of the support features in direction ``u``::

      dF/dW = G_W - alpha/n * (P Z^T phi_S + R^T (J_S u)),      dF/db = G_b - alpha * P mean_i(Z_i).

First order (FOMAML) treats the inner gradients as constants: the meta-gradient is ``(u, G_W, G_b)``.

Tasks run one after the other: the body is shared by every task (it does not adapt), but ``u`` and the
forward-mode pass are per task. In a smoke run (Conv4-64, 16 tasks, 5-way 1-shot, float32, 2 busy cores) all tasks
at once in grouped convolutions (per-task weights, as in ``grouped.py``) were slower than this loop, and the loop
was about as fast as the engine's: with 5 support and 75 query images the support side it saves is small. Worker
threads would need a lock around the jvp: forward-AD levels are global to the process.
"""

from __future__ import annotations

from typing import Dict, List, Tuple

import torch
from torch import nn
from torch.func import functional_call, jvp
from torch.nn import functional as F

from .maml import MetaGradient
from .models import Conv4
from .tasks import TaskBatch

Params = Dict[str, torch.Tensor]
HEAD = ("head.weight", "head.bias")
BODY_PREFIX = "features."


def applies(model: nn.Module, params: Params, inner_steps: int, loss: str) -> bool:
    """True when the closed form gives the general engine's numbers: a ``Conv4`` whose head in ``params`` is
    exactly zero (weight and bias), one inner step, cross-entropy."""
    if not isinstance(model, Conv4) or loss != "cross_entropy" or inner_steps != 1 or isinstance(inner_steps, bool):
        return False
    head = [params.get(name) for name in HEAD]
    return all(isinstance(t, torch.Tensor) for t in head) and all(bool((t == 0).all()) for t in head)


def zero_head_meta_gradient(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float,
                            first_order: bool = False) -> MetaGradient:
    """MAML meta-gradient (mean over tasks), mean query loss and accuracy for a zero-head Conv4, one inner step.

    Equal to ``maml.meta_gradient(model, params, batch, inner_lr, 1, "cross_entropy", first_order)`` for every
    parameter (see the module docstring), with first-order autograd only.
    """
    if not applies(model, params, 1, "cross_entropy"):
        raise ValueError("zero_head_meta_gradient needs a Conv4 whose params hold an exactly zero head "
                         "(head.weight and head.bias); use maml.meta_gradient otherwise")
    if not isinstance(batch, TaskBatch):
        raise ValueError(f"batch must be a TaskBatch(support, query), got {type(batch).__name__}")
    n_way = params["head.weight"].shape[0]
    body = {name[len(BODY_PREFIX):]: p.detach() for name, p in params.items() if name.startswith(BODY_PREFIX)}
    per_task = [_task_meta_gradient(model.features, body, batch, t, float(inner_lr), n_way, first_order)
                for t in range(batch.n_tasks)]
    return _average(per_task, list(body), list(params))


def _task_meta_gradient(features: nn.Module, body: Params, batch: TaskBatch, t: int, inner_lr: float,
                        n_way: int, first_order: bool) -> tuple:
    """Task ``t``: body grads (in ``body`` order), head weight and bias grads, query loss, query accuracy."""
    support_X, support_y = batch.support.X[t], batch.support.y[t]
    leaves = {name: p.detach().requires_grad_(True) for name, p in body.items()}
    phi_S = _features(features, leaves, support_X)
    R = _residuals(support_y, n_way, phi_S.dtype)
    W1, b1 = _adapted_head(phi_S, R, inner_lr)
    head_W, head_b = W1.detach().requires_grad_(True), b1.detach().requires_grad_(True)
    logits = _features(features, leaves, batch.query.X[t]) @ head_W.T + head_b
    query_loss = F.cross_entropy(logits, batch.query.y[t])
    *u, G_W, G_b = torch.autograd.grad(query_loss, [*leaves.values(), head_W, head_b])
    accuracy = (logits.detach().argmax(dim=-1) == batch.query.y[t]).to(logits.dtype).mean()
    if first_order:
        return u, G_W, G_b, query_loss.detach(), accuracy
    through_head = torch.autograd.grad(W1, list(leaves.values()), grad_outputs=G_W)
    body_grads = [a + b for a, b in zip(u, through_head)]
    tangent = _support_feature_jvp(features, body, support_X, dict(zip(leaves, u)))
    grad_W, grad_b = _head_meta_gradient(phi_S.detach(), R, tangent, G_W, G_b, inner_lr)
    return body_grads, grad_W, grad_b, query_loss.detach(), accuracy


def _features(features: nn.Module, body: Params, X: torch.Tensor) -> torch.Tensor:
    """Body features ``(n, D)`` of one batch of images (batch norm over this batch, as in the engine)."""
    return functional_call(features, body, (X,)).flatten(start_dim=1)


def _residuals(y: torch.Tensor, n_way: int, dtype: torch.dtype) -> torch.Tensor:
    """``softmax(0) - onehot(y)``: the support residuals ``(n, N)`` of a zero head, whatever the body."""
    return 1.0 / n_way - F.one_hot(y, n_way).to(dtype)


def _adapted_head(phi_S: torch.Tensor, R: torch.Tensor, inner_lr: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Head after one inner step from zero: ``W' = -alpha/n R^T phi_S``, ``b' = -alpha mean_i r_i``."""
    return -inner_lr / phi_S.shape[0] * (R.T @ phi_S), -inner_lr * R.mean(dim=0)


def _support_feature_jvp(features: nn.Module, body: Params, X: torch.Tensor, direction: Params) -> torch.Tensor:
    """``J_S u``: forward-mode derivative of the support features ``(n, D)`` along ``direction`` (no graph)."""
    with torch.no_grad():
        return jvp(lambda p: _features(features, p, X), (body,), (direction,))[1]


def _center_classes(Z: torch.Tensor) -> torch.Tensor:
    """``P z`` for each row ``z``: the softmax Jacobian at uniform probabilities, ``(I - 11^T/N) / N``.

    (Rows of cross-entropy gradients already sum to zero over classes, so here ``P z = z / N``; kept explicit.)"""
    return (Z - Z.mean(dim=-1, keepdim=True)) / Z.shape[-1]


def _head_meta_gradient(phi_S: torch.Tensor, R: torch.Tensor, tangent: torch.Tensor, G_W: torch.Tensor,
                        G_b: torch.Tensor, inner_lr: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """Second-order head meta-gradient at ``W = b = 0`` (module docstring): the softmax terms of ``dW'/dW``,
    ``db'/dW`` and the body term ``-alpha/n R^T J_S u``."""
    n = phi_S.shape[0]
    PZ = _center_classes(phi_S @ G_W.T + G_b)  # (n, N): P (G_W phi_i + G_b)
    grad_W = G_W - inner_lr / n * (PZ.T @ phi_S + R.T @ tangent)
    grad_b = G_b - inner_lr * PZ.mean(dim=0)
    return grad_W, grad_b


def _average(per_task: list, body_names: List[str], names: List[str]) -> MetaGradient:
    """Mean over tasks, as a ``MetaGradient`` keyed by the full parameter names in the order of ``names``."""
    n_tasks = len(per_task)
    mean = {BODY_PREFIX + name: sum(task[0][i] for task in per_task) / n_tasks for i, name in enumerate(body_names)}
    mean["head.weight"] = sum(task[1] for task in per_task) / n_tasks
    mean["head.bias"] = sum(task[2] for task in per_task) / n_tasks
    losses = torch.stack([task[3] for task in per_task])
    accuracies = torch.stack([task[4] for task in per_task])
    return MetaGradient({name: mean[name] for name in names}, losses.mean(), accuracies.mean())
