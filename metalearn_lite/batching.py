"""How the MAML engine runs a batch of tasks fast: the strategies behind ``maml.meta_gradient``.

Every strategy runs the same per-task objective (``maml.query_loss_after_adaptation``, passed in as
``objective``) and so the same inner loop; a strategy only decides how tasks are arranged and which ``forward``
pass the inner loop calls. All compute the same numbers (tested against each other and finite differences):

- ``"loop"``: plain autograd, one task at a time; the reference.
- ``"threads"``: the loop's tasks spread over worker threads that each run single-threaded kernels (small conv-net
  kernels use two cores poorly; two tasks at once use them well).
- ``"vmap"``: ``torch.func.vmap`` of ``grad(objective)`` over tasks.
- ``"grouped"``: all tasks at once, each with its own copy of the weights, in grouped convolutions and batched
  matrix products (``grouped.py``); the task losses are summed, so each task's gradient is its own.
- ``"auto"``: the fastest that applies (``preferred_strategy``, measured by ``benchmarks/maml_speed.py``).
"""

from __future__ import annotations

import copy
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict

import torch
from torch import nn
from torch.func import grad, vmap

from .grouped import grouped_forward, supports_grouped
from .tasks import Split, TaskBatch
from .validation import require_choice

Params = Dict[str, torch.Tensor]
STRATEGIES = ("auto", "vmap", "loop", "threads", "grouped")
Objective = Callable[..., tuple]
"""``objective(model, params, support, query, forward=None) -> (query loss, query accuracy)`` of one task, or of
stacked tasks when ``forward`` runs them all (then both are ``(T,)``)."""


def resolve_strategy(model: nn.Module, strategy: str) -> str:
    """Check ``strategy`` and replace ``"auto"`` by the fastest one that applies to ``model``."""
    strategy = require_choice("strategy", strategy, STRATEGIES)
    if strategy == "auto":
        return preferred_strategy(model)
    if strategy == "grouped" and not supports_grouped(model):
        raise ValueError(f"strategy='grouped' supports Conv4 and nn.Sequential conv nets and MLPs, not "
                         f"{type(model).__name__}; use strategy='vmap' or 'loop'")
    return strategy


def preferred_strategy(model: nn.Module) -> str:
    """The fastest strategy on a CPU, as measured by ``benchmarks/maml_speed.py``.

    Dense networks (e.g. the sinusoid MLP): ``"grouped"``, all tasks in batched matrix products, about twice as
    fast as ``vmap``. Conv nets: ``vmap`` and grouped convolutions are slower than a plain per-task loop on a CPU,
    so the loop runs, spread over the cores (``"threads"``) when there are several. Anything else: ``"vmap"``.
    On a GPU, where one large kernel beats many small ones, ``"grouped"`` wherever it applies, else ``"vmap"``.
    """
    on_gpu = any(p.is_cuda for p in model.parameters())
    if on_gpu:
        return "grouped" if supports_grouped(model) else "vmap"
    has_conv = any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())
    if has_conv:
        return "threads" if torch.get_num_threads() > 1 else "loop"
    return "grouped" if supports_grouped(model) else "vmap"


def per_task_meta_gradients(strategy: str, objective: Objective, model: nn.Module, params: Params,
                            batch: TaskBatch) -> tuple:
    """``(grads averaged over tasks, per-task query losses, per-task accuracies)`` with ``strategy``."""
    run = {"loop": _loop, "threads": _threads, "vmap": _vmap, "grouped": _grouped}[strategy]
    return run(objective, model, params, batch)


def _loop(objective, model, params, batch) -> tuple:
    leaves = _leaves(params)
    total, losses, accs = _zeros_like(leaves), [], []
    for t in range(batch.n_tasks):
        grads, loss, accuracy = _one_task(objective, model, leaves, batch, t)
        _add_to(total, grads)   # at once: see _zeros_like
        losses.append(loss)
        accs.append(accuracy)
    return _mean(total, leaves, batch.n_tasks), torch.stack(losses), torch.stack(accs)


def _threads(objective, model, params, batch) -> tuple:
    # Results are summed in task order, so the numbers are those of the loop.
    leaves = _leaves(params)
    workers = min(batch.n_tasks, max(1, torch.get_num_threads()))
    # functional_call swaps a module's tensors while it runs, so each worker needs a module of its own.
    chunks = [(copy.deepcopy(model), range(w, batch.n_tasks, workers)) for w in range(workers)]

    # Each task's gradients go into a slot allocated before any activation (see _zeros_like).
    slots = [_zeros_like(leaves) for _ in range(batch.n_tasks)]
    losses, accs = [None] * batch.n_tasks, [None] * batch.n_tasks

    def run_chunk(chunk):
        worker_model, tasks = chunk
        for t in tasks:
            grads, losses[t], accs[t] = _one_task(objective, worker_model, leaves, batch, t)
            _add_to(slots[t], grads)

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(run_chunk, chunks))
    finally:
        torch.set_num_threads(previous_threads)
    total = _zeros_like(leaves)
    for task_grads in slots:   # in task order: the loop's sum, to the bit
        _add_to(total, task_grads.values())
    return _mean(total, leaves, batch.n_tasks), torch.stack(losses), torch.stack(accs)


def _vmap(objective, model, params, batch) -> tuple:
    # The outer gradient is taken with torch.func.grad *inside* vmap. Differentiating vmap(objective) with
    # ordinary autograd instead gives a wrong second-order gradient for batch norm (measured: ~4e-3 rel. error).
    def task_objective(p, sX, sy, qX, qy):
        query_loss, accuracy = objective(model, p, Split(sX, sy), Split(qX, qy))
        return query_loss, (query_loss.detach(), accuracy)

    detached = {name: p.detach() for name, p in params.items()}
    per_task, (losses, accs) = vmap(grad(task_objective, has_aux=True), in_dims=(None, 0, 0, 0, 0))(
        detached, batch.support.X, batch.support.y, batch.query.X, batch.query.y)
    return {name: g.mean(dim=0) for name, g in per_task.items()}, losses, accs


def _grouped(objective, model, params, batch) -> tuple:
    # Every task gets its own copy of the weights (an expand: no memory), and all tasks run in one grouped forward.
    leaves = _leaves(params)
    stacked = {name: p.expand(batch.n_tasks, *p.shape) for name, p in leaves.items()}
    forward = lambda p, X: grouped_forward(model, p, X)  # noqa: E731
    losses, accs = objective(model, stacked, batch.support, batch.query, forward=forward)
    grads = dict(zip(leaves, torch.autograd.grad(losses.mean(), list(leaves.values()))))
    return grads, losses.detach(), accs


def _one_task(objective, model, leaves: Params, batch: TaskBatch, t: int) -> tuple:
    """Task ``t``'s meta-gradient with respect to ``leaves``, its query loss and accuracy."""
    support = Split(batch.support.X[t], batch.support.y[t])
    query = Split(batch.query.X[t], batch.query.y[t])
    query_loss, accuracy = objective(model, leaves, support, query)
    return torch.autograd.grad(query_loss, list(leaves.values())), query_loss.detach(), accuracy


def _zeros_like(leaves: Params) -> Params:
    """A gradient sum, allocated before the tasks run. Why: kept per task until the end, each task's small gradient
    tensors sat in memory between the freed activations of the next tasks, and the allocator could no longer
    reuse or return that memory. Measured on W2 (Conv4-64, meta-batch 16, 8 meta-steps): peak 357 MiB above the
    start, against 146 MiB summing as the tasks finish."""
    return {name: torch.zeros_like(p) for name, p in leaves.items()}


def _add_to(total: Params, grads) -> None:
    for sum_so_far, grad_of_task in zip(total.values(), grads):
        sum_so_far.add_(grad_of_task)


def _mean(total: Params, leaves: Params, n_tasks: int) -> Params:
    return {name: total[name].detach() / n_tasks for name in leaves}


def _leaves(params: Params) -> Params:
    return {name: p.detach().requires_grad_(True) for name, p in params.items()}
