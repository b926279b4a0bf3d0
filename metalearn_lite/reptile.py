"""Reptile (Nichol, Achiam & Schulman 2018, "On First-Order Meta-Learning Algorithms", arXiv:1803.02999).

For each task of a batch, run ``inner_steps`` plain gradient steps on its support set from the initialisation
theta, giving ``phi_i``; then move the initialisation towards the adapted weights,

    theta <- theta + epsilon * (1/n) sum_i (phi_i - theta)           (the paper's batched version).

No second derivatives and no query loss in the update: only the adapted weights. The inner loop is the engine's
(``maml.inner_loop``, first order; all tasks at once with the grouped forward of ``grouped.py`` where the model has
one, else ``vmap``).

How ``meta_step(batch, optimizer)`` maps to the paper: it stores ``theta - mean_i phi_i`` in ``.grad`` and lets the
optimiser step. With ``torch.optim.SGD(model.parameters(), lr=epsilon)`` that is exactly the update above
(``theta - epsilon * (theta - mean phi)``). With Adam (``train.meta_train``'s default) it is the variant the paper
mentions, the difference treated as a gradient for an adaptive optimiser; ``meta_lr`` is then Adam's step size, not
epsilon. With ``inner_steps=1`` Reptile's direction is ``inner_lr`` times the gradient of the support loss at theta:
joint training on all tasks (the paper's remark), so Reptile needs several inner steps.

The loss that ``meta_step`` reports (and ``meta_train`` logs) is the mean query loss after the inner loop, measured
without a gradient: the same number MAML reports, so the two curves can be compared.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import nn
from torch.func import vmap

from . import maml
from .batch_checks import check_batch, check_inner_loop
from .few_shot import task_copies
from .grouped import grouped_forward, supports_grouped
from .losses import check_loss_name, task_accuracies, task_losses
from .maml import Adaptation, MetaGradient, Params, parameters_of
from .tasks import Split, TaskBatch
from .validation import require_finite, require_int, require_params


def adapted_weights(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float, inner_steps: int,
                    loss: str = "mse") -> tuple:
    """``(phi, query losses, query accuracies)``: every task's weights after ``inner_steps`` first-order inner
    steps on its support set (``phi``: a leading task dimension) and its query loss and accuracy there (no
    gradient)."""
    with torch.no_grad():
        if supports_grouped(model):
            forward = lambda p, X: grouped_forward(model, p, X)  # noqa: E731
            phi = maml.inner_loop(model, task_copies(params, batch.n_tasks), batch.support, inner_lr, inner_steps,
                                  loss, True, forward)
            prediction = forward(phi, batch.query.X)
        else:
            def one_task(sX, sy, qX):
                adapted = maml.inner_loop(model, params, Split(sX, sy), inner_lr, inner_steps, loss, True)
                return adapted, maml.model_forward(model)(adapted, qX)

            phi, prediction = vmap(one_task)(batch.support.X, batch.support.y, batch.query.X)
        return phi, task_losses(loss, prediction, batch.query.y), task_accuracies(loss, prediction, batch.query.y)


def reptile_direction(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float = 0.01,
                      inner_steps: int = 5, loss: str = "mse") -> MetaGradient:
    """``theta - mean_i phi_i`` (what ``meta_step`` stores as ``.grad``), with the mean query loss and accuracy
    after adaptation."""
    loss = check_loss_name(loss)
    inner_lr, inner_steps = check_reptile_inner_loop(inner_lr, inner_steps)
    params = require_params(params, model)
    require_finite("params", params)
    batch = check_batch(batch, model, params, loss)
    phi, losses, accs = adapted_weights(model, params, batch, inner_lr, inner_steps, loss)
    grads = {name: p - phi[name].mean(dim=0) for name, p in params.items()}
    return MetaGradient(grads, losses.mean(), accs.mean())


def check_reptile_inner_loop(inner_lr, inner_steps) -> tuple:
    """``check_inner_loop``, and at least one inner step (with none, phi = theta: Reptile would not move)."""
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    return inner_lr, require_int("inner_steps", inner_steps, minimum=1)


class Reptile:
    """Reptile around a model, with the interface of ``maml.MAML`` (``meta_step``, ``adapt``, ``inner_lr``).

    Parameters
    ----------
    model: the network; its parameters are the meta-learned initialisation theta.
    inner_lr, inner_steps: the inner loop's plain SGD (the paper's inner loop used Adam and minibatches; here it
        is the engine's full-batch gradient descent on the support set). Defaults: 0.01 and 5 steps (the paper's
        Omniglot runs used 5 inner iterations).
    loss: ``"mse"`` or ``"cross_entropy"``.

    Training: ``train.meta_train(Reptile(model, ...), sample_batch, ...)``; pass
    ``optimizer=torch.optim.SGD(model.parameters(), lr=epsilon)`` for the paper's exact outer update.
    """

    first_order = True   # Reptile uses no second derivatives

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 5, loss: str = "mse"):
        self.inner_lr, self.inner_steps = check_reptile_inner_loop(inner_lr, inner_steps)
        self.model = model
        self.loss = check_loss_name(loss)

    def meta_gradient(self, batch: TaskBatch) -> MetaGradient:
        """Reptile's direction ``theta - mean phi`` at the model's current parameters (``reptile_direction``)."""
        return reptile_direction(self.model, parameters_of(self.model), batch, self.inner_lr, self.inner_steps,
                                 self.loss)

    def meta_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> MetaGradient:
        """One outer update: store ``theta - mean phi`` in ``.grad`` and step ``optimizer``."""
        return maml.step_along(self.model, self.meta_gradient(batch), optimizer)

    def adapt(self, batch: TaskBatch, inner_steps: Optional[int] = None,
              inner_lr: Optional[float] = None) -> Adaptation:
        """Adapt to each task in ``batch`` (``maml.adapt``: Reptile's initialisation is fine-tuned the same way)."""
        return maml.adapt(self.model, parameters_of(self.model), batch,
                          self.inner_lr if inner_lr is None else inner_lr,
                          self.inner_steps if inner_steps is None else inner_steps, self.loss)
