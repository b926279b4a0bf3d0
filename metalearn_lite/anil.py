"""ANIL, "almost no inner loop" (Raghu, Raghu, Bengio & Vinyals 2020, arXiv:1909.09157).

MAML whose inner loop adapts the head only: for one task, with body parameters ``theta_b`` and head ``theta_h``,

    theta_h' = theta_h - inner_lr * grad_{theta_h} L_S(f_{theta_b, theta_h})      (inner_steps times),

and the meta-objective is ``L_Q(f_{theta_b, theta_h'})``. The body is frozen in the inner loop (its inner gradient is
never computed, let alone applied) but meta-learned in the outer loop: the meta-gradient reaches ``theta_b`` through
the query features *and* through the support features the head was adapted on (second order, unless
``first_order``).

No new update rule: the engine's ``maml.inner_loop`` runs on the head's parameters alone, with a ``forward`` that
puts the body back in (the "subset of parameters" seam of ``maml.inner_update``). Tasks are batched by the same
strategies as MAML (``batching.py``).

The zero head of notebook 5 is a special case: with the head at zero the body's inner gradient is zero, so one
MAML step *is* an ANIL step.
"""

from __future__ import annotations

from collections import OrderedDict
from functools import partial
from typing import Optional, Sequence, Tuple

import torch
from torch import nn
from torch.func import functional_call, vmap

from . import batching, maml
from .batch_checks import check_batch, check_graph_memory, check_inner_loop, check_task_batch, warn_if_not_finite
from .losses import check_loss_name, task_accuracies, task_losses
from .maml import Adaptation, MetaGradient, Params, batch_tensors, model_forward, parameters_of
from .models import Conv4, structure
from .tasks import Split, TaskBatch
from .validation import require_finite, require_params


def head_names(model: nn.Module) -> Tuple[str, ...]:
    """The parameter names of ``model``'s last layer, which must be ``nn.Linear`` (``MLP``: its output layer,
    ``Conv4``: ``head.weight``, ``head.bias``)."""
    leaves = structure(model).leaves
    if not leaves or not isinstance(leaves[-1][1], nn.Linear):
        raise ValueError(f"head: {type(model).__name__} does not end in an nn.Linear layer; name the head's "
                         f"parameters explicitly (head=[...])")
    name, layer = leaves[-1]
    return tuple(f"{name}.{p}" if name else p for p, _ in layer.named_parameters())


def check_head(model: nn.Module, head: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """``head`` as a tuple of parameter names of ``model`` (None: ``head_names(model)``); ValueError otherwise."""
    if head is None:
        return head_names(model)
    if isinstance(head, str):
        head = (head,)
    head = tuple(head)
    known = structure(model).parameters
    unknown = [name for name in head if name not in known]
    if not head or unknown:
        raise ValueError(f"head must name one or more parameters of {type(model).__name__} ({', '.join(known)}), "
                         f"got {list(head)!r}")
    return head


def split_head(params: Params, head: Sequence[str]) -> tuple:
    """``(body, head)`` parameter dicts."""
    return ({k: v for k, v in params.items() if k not in head}, {k: params[k] for k in head})


def head_forward(forward: maml.Forward, body: Params) -> maml.Forward:
    """``forward`` as a function of the head's parameters alone, with ``body`` fixed in it."""
    return lambda head_params, X: forward({**body, **head_params}, X)


def body_forward(model: nn.Module, head: Sequence[str]) -> Optional[maml.Forward]:
    """``(body params, X) -> features``, the input of the head, where the network splits there: a ``Conv4``
    (its ``features``, flattened) or an ``nn.Sequential`` ending in its head (``MLP``), with the default ``head``.
    None otherwise (the body is then run inside the head's forward at every step)."""
    if tuple(head) != head_names(model):
        return None
    if isinstance(model, Conv4):
        body_module, flatten = model.features, True
    elif isinstance(model, nn.Sequential):
        # A plain Sequential of all but the last layer, with the same names (MLP's own constructor takes sizes).
        body_module, flatten = nn.Sequential(OrderedDict(list(model.named_children())[:-1])), False
    else:
        return None
    prefix = "features." if flatten else ""

    def features(body: Params, X):
        out = functional_call(body_module, {k[len(prefix):]: v for k, v in body.items()}, (X,))
        return out.flatten(start_dim=1) if flatten else out
    return features


def linear_head(head: Sequence[str]) -> maml.Forward:
    """The head as a function of its own parameters on body features (weight and bias of an ``nn.Linear``)."""
    weight = next(name for name in head if name.endswith("weight"))
    bias = next((name for name in head if name.endswith("bias")), None)
    return lambda head_params, Z: torch.nn.functional.linear(Z, head_params[weight], head_params.get(bias))


def query_loss_after_head_adaptation(model: nn.Module, params: Params, support: Split, query: Split,
                                     inner_lr: float, inner_steps: int, loss: str = "mse",
                                     first_order: bool = False, forward: Optional[maml.Forward] = None,
                                     head: Sequence[str] = ()) -> tuple:
    """The ANIL objective of a task: ``L_Q`` after adapting the ``head`` parameters only; ``(loss, accuracy)``.

    Differentiable with respect to every parameter (body included); per-task ``(T,)`` for stacked tasks.
    """
    forward = forward or model_forward(model)
    body, head_params = split_head(params, head)
    adapted = maml.inner_loop(model, head_params, support, inner_lr, inner_steps, loss, first_order,
                              head_forward(forward, body))
    prediction = forward({**body, **adapted}, query.X)
    return task_losses(loss, prediction, query.y), task_accuracies(loss, prediction.detach(), query.y)


def meta_gradient(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float = 0.01,
                  inner_steps: int = 1, loss: str = "mse", first_order: bool = False, strategy: str = "auto",
                  head: Optional[Sequence[str]] = None) -> MetaGradient:
    """Gradient of the ANIL meta-loss (mean query loss after head-only adaptation) with respect to all ``params``.

    ``head``: the names of the parameters adapted in the inner loop (default: the last linear layer's). The
    other arguments are those of ``maml.meta_gradient`` (same checks, same batching strategies).
    """
    loss = check_loss_name(loss)
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    head = check_head(model, head)
    strategy = batching.resolve_strategy(model, strategy)
    params = require_params(params, model)
    check_task_batch(batch, model, loss, params)
    check_graph_memory(model, params, batch, inner_steps, first_order, strategy)
    batch = check_batch(batch, model, params, loss, shapes_checked=True)
    objective = partial(query_loss_after_head_adaptation, inner_lr=inner_lr, inner_steps=inner_steps, loss=loss,
                        first_order=first_order, head=head)
    grads, losses, accs = batching.per_task_meta_gradients(strategy, objective, model, params, batch)
    result = MetaGradient(grads, losses.mean(), accs.mean())
    warn_if_not_finite(result.loss, params, inner_lr, inner_steps)
    return result


def adapt(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float, inner_steps: int,
          loss: str = "mse", head: Optional[Sequence[str]] = None) -> Adaptation:
    """Adapt the head to every task of ``batch`` and record the curves (``maml.adapt`` with a frozen body).

    ``Adaptation.params`` holds the whole network per task (the body repeated, the adapted head). The body is
    frozen, so where the network splits at the head (``body_forward``) its features are computed once per task and
    the inner loop runs on the head alone (the same numbers as running the whole network at every step).
    """
    loss = check_loss_name(loss)
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    head = check_head(model, head)
    params = require_params(params, model)
    require_finite("params", params)
    batch = check_batch(batch, model, params, loss)
    body, head_params = split_head(params, head)
    features = body_forward(model, head)
    if features is None:
        forward, features = head_forward(model_forward(model), body), (lambda _, X: X)
    else:
        forward = linear_head(head)

    def one_task(sX, sy, qX, qy):
        support, query = Split(features(body, sX), sy), Split(features(body, qX), qy)
        return tuple(maml.adaptation_curves(model, head_params, support, query, inner_lr, inner_steps, loss,
                                            forward)[:4])

    adapted, *curves = vmap(one_task)(*batch_tensors(batch))
    whole = {k: (adapted[k] if k in adapted else v.expand(batch.n_tasks, *v.shape)) for k, v in params.items()}
    return Adaptation(whole, *curves)


class ANIL(maml.MAML):
    """ANIL around a model: MAML (``maml.MAML``, same arguments and ``meta_step``) whose inner loop adapts the head.

    ``head``: the parameter names adapted in the inner loop (default: the last linear layer's, ``head_names``).
    Train it with ``train.meta_train(ANIL(model, ...), sample_batch, ...)`` as MAML.
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 1, first_order: bool = False,
                 loss: str = "mse", strategy: str = "auto", head: Optional[Sequence[str]] = None):
        super().__init__(model, inner_lr, inner_steps, first_order, loss, strategy)
        self.head = check_head(model, head)

    def meta_gradient(self, batch: TaskBatch) -> MetaGradient:
        """Meta-gradient of the mean query loss after head-only adaptation, at the model's current parameters."""
        return meta_gradient(self.model, parameters_of(self.model), batch, self.inner_lr, self.inner_steps,
                             self.loss, self.first_order, self.strategy, self.head)

    def adapt(self, batch: TaskBatch, inner_steps: Optional[int] = None,
              inner_lr: Optional[float] = None) -> Adaptation:
        """Adapt the head to each task in ``batch`` (defaults: the training ``inner_lr`` and ``inner_steps``)."""
        return adapt(self.model, parameters_of(self.model), batch,
                     self.inner_lr if inner_lr is None else inner_lr,
                     self.inner_steps if inner_steps is None else inner_steps, self.loss, self.head)

