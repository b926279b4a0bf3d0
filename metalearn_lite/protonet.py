"""Prototypical networks (Snell, Swersky & Zemel 2017, arXiv:1703.05175): the metric-based contrast to MAML.

No inner loop at all. An embedding network ``f`` (the Conv4 body, without its head) maps every image to a vector;
each class ``c`` of a task is represented by the mean of its support embeddings, the prototype
``c_k = 1/|S_k| sum_{x in S_k} f(x)``; a query ``x`` is classified by a softmax over the negative squared Euclidean
distances,

    logits_k(x) = -|| f(x) - c_k ||^2 ,

and the embedding is trained by cross-entropy on the query set (the paper's episodic training).

Batch norm uses batch statistics (``models.Conv4``): each task's support and query images are embedded together,
as one batch, as in the authors' code. The ``meta_step(batch, optimizer)`` interface is MAML's, so
``train.meta_train`` trains it; the head parameters of a ``Conv4`` are not used and get no gradient.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch
from torch import nn
from torch.func import functional_call
from torch.nn import functional as F

from .batch_checks import check_batch
from .maml import Adaptation, MetaGradient, Params, parameters_of
from .models import Conv4
from .tasks import Split, TaskBatch
from .validation import require_finite, require_params

Embed = Callable[[Params, torch.Tensor], torch.Tensor]


def embedding(model: nn.Module) -> Embed:
    """``embed(params, X) -> (n, dim)``: a ``Conv4``'s body, flattened (its head is left out); any other model's
    own output."""
    if isinstance(model, Conv4):
        prefix = "features."

        def embed(params, X):
            body = {k[len(prefix):]: v for k, v in params.items() if k.startswith(prefix)}
            return functional_call(model.features, body, (X,)).flatten(start_dim=1)
        return embed
    return lambda params, X: functional_call(model, params, (X,)).flatten(start_dim=1)


def prototypes(support_embeddings: torch.Tensor, support_y: torch.Tensor, n_way: int) -> torch.Tensor:
    """``(n_way, dim)``: the mean support embedding of each class ``0..n_way-1`` (ValueError if one has none)."""
    one_hot = F.one_hot(support_y, n_way).to(support_embeddings.dtype)          # (n, n_way)
    counts = one_hot.sum(dim=0)
    if bool((counts == 0).any()):
        empty = [int(c) for c in torch.nonzero(counts == 0).flatten()]
        raise ValueError(f"support_y has no example of class(es) {empty} of n_way={n_way}: every class needs at "
                         f"least one support example")
    return one_hot.T @ support_embeddings / counts.unsqueeze(1)


def prototype_logits(query_embeddings: torch.Tensor, prototypes_: torch.Tensor) -> torch.Tensor:
    """``(n_query, n_way)``: minus the squared Euclidean distance of each query embedding to each prototype."""
    return -((query_embeddings.unsqueeze(1) - prototypes_.unsqueeze(0)) ** 2).sum(dim=-1)


def task_logits(model: nn.Module, params: Params, support: Split, query: Split, n_way: int,
                embed: Optional[Embed] = None) -> tuple:
    """``(query logits, support logits)`` of one task: support and query embedded as one batch, prototypes from
    the support embeddings (the support logits: each support example against the prototypes)."""
    embed = embed or embedding(model)
    n_support = support.X.shape[0]
    z = embed(params, torch.cat([support.X, query.X]))
    centres = prototypes(z[:n_support], support.y, n_way)
    return prototype_logits(z[n_support:], centres), prototype_logits(z[:n_support], centres)


def n_way_of(batch: TaskBatch) -> int:
    """The number of classes of the batch's tasks (one more than the largest support label)."""
    return int(batch.support.y.max()) + 1


def episode_losses(model: nn.Module, params: Params, batch: TaskBatch) -> tuple:
    """``(query losses, query accuracies, support losses)``, each ``(n_tasks,)``; the query losses are
    differentiable with respect to ``params``."""
    embed, n_way = embedding(model), n_way_of(batch)
    query_losses, accuracies, support_losses = [], [], []
    for t in range(batch.n_tasks):
        support = Split(batch.support.X[t], batch.support.y[t])
        query = Split(batch.query.X[t], batch.query.y[t])
        logits, support_logits = task_logits(model, params, support, query, n_way, embed)
        query_losses.append(F.cross_entropy(logits, query.y))
        accuracies.append((logits.detach().argmax(dim=-1) == query.y).to(logits.dtype).mean())
        support_losses.append(F.cross_entropy(support_logits.detach(), support.y))
    return torch.stack(query_losses), torch.stack(accuracies), torch.stack(support_losses)


def check_episodes(model: nn.Module, params: Params, batch: TaskBatch) -> TaskBatch:
    """The batch checked as the engine checks classification batches (labels, shapes, dtype, device)."""
    params = require_params(params, model)
    require_finite("params", params)
    if isinstance(model, Conv4):   # the labels may exceed a Conv4's unused head: check against a head of n_way
        n_way = n_way_of(batch) if isinstance(batch, TaskBatch) else 2
        sized = dict(params)
        sized["head.weight"] = params["head.weight"].new_zeros(max(n_way, 2), params["head.weight"].shape[1])
        return check_batch(batch, model, sized, "cross_entropy")
    return check_batch(batch, model, params, "cross_entropy")


def meta_gradient(model: nn.Module, params: Params, batch: TaskBatch) -> MetaGradient:
    """Gradient of the mean query cross-entropy over ``batch`` with respect to the embedding's parameters
    (a ``Conv4``'s head gets none: its entries are left out of ``grads``)."""
    batch = check_episodes(model, params, batch)
    leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
    losses, accuracies, _ = episode_losses(model, leaves, batch)
    used = {k: v for k, v in leaves.items() if not (isinstance(model, Conv4) and k.startswith("head."))}
    grads = dict(zip(used, torch.autograd.grad(losses.mean(), list(used.values()))))
    return MetaGradient(grads, losses.detach().mean(), accuracies.mean())


class ProtoNet:
    """A prototypical network around an embedding model (``Conv4``: its body), with MAML's training interface.

    ``inner_lr`` is 0.0 and ``inner_steps`` 0: there is no inner loop (``train.meta_train`` reads ``inner_lr``
    only to name it when a run diverges). Train with ``train.meta_train(ProtoNet(model), sample_batch, ...)``;
    the paper used Adam at 1e-3 (halved every 2,000 episodes) and more classes per training episode than at test
    time (60-way for Omniglot).
    """

    inner_lr, inner_steps, first_order, loss = 0.0, 0, True, "cross_entropy"

    def __init__(self, model: nn.Module):
        self.model = model

    def meta_gradient(self, batch: TaskBatch) -> MetaGradient:
        """Gradient of the mean query loss over ``batch`` at the model's current parameters."""
        return meta_gradient(self.model, parameters_of(self.model), batch)

    def meta_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> MetaGradient:
        """One update of the embedding: store the gradient in ``.grad`` (the unused head: None) and step."""
        result = self.meta_gradient(batch)
        for name, p in self.model.named_parameters():
            p.grad = result.grads.get(name)
        optimizer.step()
        return result

    def adapt(self, batch: TaskBatch) -> Adaptation:
        """Classify each task's queries by its prototypes (no gradient): an ``Adaptation`` with one column (0 steps)
        and empty ``params``, comparable with the other methods' curves."""
        batch = check_episodes(self.model, parameters_of(self.model), batch)
        with torch.no_grad():
            losses, accuracies, support_losses = episode_losses(self.model, parameters_of(self.model), batch)
        return Adaptation({}, support_losses.unsqueeze(1), losses.unsqueeze(1), accuracies.unsqueeze(1))
