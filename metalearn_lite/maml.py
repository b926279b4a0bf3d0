"""The MAML engine, written functionally on ``torch.func`` (Finn, Abbeel & Levine, 2017).

For one task T with support set S and query set Q, MAML adapts the shared initialisation theta by a few steps of
gradient descent on S,

    theta' = theta - inner_lr * grad_theta L_S(f_theta)          (repeated inner_steps times),

and scores the adapted parameters on Q. The meta-objective is the average query loss over tasks,
min_theta E_T[ L_Q(f_theta') ], and its gradient flows *through* the inner updates (second order).
First-order MAML treats the inner gradients as constants, dropping the second-derivative term.

A model's parameters are a plain ``dict`` of tensors and the network is called with
``torch.func.functional_call``, so adaptation never mutates the module.
"""

from __future__ import annotations

import copy
import math
import warnings
from concurrent.futures import ThreadPoolExecutor
from typing import Dict, NamedTuple, Optional

import torch
from torch import nn
from torch.func import functional_call, grad, grad_and_value, vmap

from . import validation
from .grouped import grouped_forward, supports_grouped
from .losses import accuracy, check_loss_name, task_loss, task_loss_per_example
from .models import cached_layer_shapes, structure
from .tasks import Split, TaskBatch
from .validation import first_nonfinite, require_choice, require_finite, require_float, require_int, require_params

Params = Dict[str, torch.Tensor]
STRATEGIES = ("auto", "vmap", "loop", "threads", "grouped")


class Adaptation(NamedTuple):
    """Result of an inner loop over a batch of tasks.

    ``params``: adapted parameters, each with a leading task dimension. The curves have shape
    ``(n_tasks, inner_steps + 1)``; entry ``[:, i]`` is measured after ``i`` inner steps (0 = the initialisation).
    ``query_accuracies`` is NaN for regression.
    """

    params: Params
    support_losses: torch.Tensor
    query_losses: torch.Tensor
    query_accuracies: torch.Tensor


class MetaGradient(NamedTuple):
    """Meta-gradient averaged over the task batch, with the mean query loss and accuracy that produced it."""

    grads: Params
    loss: torch.Tensor
    accuracy: torch.Tensor


def parameters_of(model: nn.Module) -> Params:
    """The model's parameters as a detached ``dict`` (the functional view the engine works on)."""
    return {name: p.detach() for name, p in model.named_parameters()}


def loss_on(model: nn.Module, params: Params, data: Split, loss: str = "mse") -> torch.Tensor:
    """Loss of the network with ``params`` on one task's ``data`` (no task dimension)."""
    return task_loss(loss, functional_call(model, params, (data.X,)), data.y)


def sgd_step(params: Params, grads: Params, inner_lr: float) -> Params:
    """One plain gradient-descent step ``theta - inner_lr * grad``, parameter by parameter."""
    return {name: p - inner_lr * grads[name] for name, p in params.items()}


def inner_loop(model: nn.Module, params: Params, support: Split, inner_lr: float, inner_steps: int,
               loss: str = "mse", first_order: bool = False) -> Params:
    """Adapt ``params`` to one task by ``inner_steps`` gradient steps on its support set; differentiable.

    With ``first_order=True`` each inner gradient is treated as a constant (no second derivatives).
    """
    def support_loss(p):
        return loss_on(model, p, support, loss)

    for _ in range(inner_steps):
        grads = grad(support_loss)(params)
        if first_order:
            grads = {name: g.detach() for name, g in grads.items()}
        params = sgd_step(params, grads, inner_lr)
    return params


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
        support, query = Split(sX, sy), Split(qX, qy)
        p, support_losses, query_losses, query_accs = params, [], [], []
        for step in range(inner_steps + 1):
            query_pred = functional_call(model, p, (query.X,))
            query_losses.append(task_loss(loss, query_pred, query.y))
            query_accs.append(accuracy(loss, query_pred, query.y))
            grads, value = grad_and_value(lambda q: loss_on(model, q, support, loss))(p)
            support_losses.append(value)
            if step < inner_steps:
                p = sgd_step(p, grads, inner_lr)
        return p, torch.stack(support_losses), torch.stack(query_losses), torch.stack(query_accs)

    with torch.no_grad():
        adapted, support_losses, query_losses, query_accs = vmap(one_task)(*_tensors(batch))
    return Adaptation(adapted, support_losses, query_losses, query_accs)


def meta_gradient(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float = 0.01,
                  inner_steps: int = 1, loss: str = "mse", first_order: bool = False,
                  strategy: str = "auto") -> MetaGradient:
    """Gradient of the MAML meta-loss (mean query loss after adaptation) with respect to ``params``.

    ``strategy`` chooses how tasks are batched; every strategy computes the same numbers:
    ``"vmap"`` vectorises ``grad(task objective)`` over tasks; ``"loop"`` runs plain autograd task by task;
    ``"threads"`` runs the loop's tasks on worker threads (one per core); ``"grouped"`` runs all tasks at once
    with per-task weights in grouped convolutions and batched matrix products (``grouped.py``);
    ``"auto"`` picks the fastest for the model on a CPU (measured by ``benchmarks/maml_speed.py``).

    Settings whose autograd graph would not fit in memory raise ValueError before any work (``check_graph_memory``);
    a non-finite meta-loss or gradient (a diverging ``inner_lr``) gives a RuntimeWarning.
    """
    loss = check_loss_name(loss)
    inner_lr, inner_steps = check_inner_loop(inner_lr, inner_steps)
    strategy = resolve_strategy(model, strategy)
    params = require_params(params, model)
    check_task_batch(batch, model, loss, params)
    check_graph_memory(model, params, batch, inner_steps, first_order, strategy)
    batch = check_batch(batch, model, params, loss, shapes_checked=True)
    engines = {"vmap": _meta_gradient_vmap, "loop": _meta_gradient_loop, "threads": _meta_gradient_threads,
               "grouped": _meta_gradient_grouped}
    result = engines[strategy](model, params, batch, inner_lr, inner_steps, loss, first_order)
    _warn_if_not_finite(result, params, inner_lr, inner_steps)
    return result


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


def _meta_gradient_vmap(model, params, batch, inner_lr, inner_steps, loss, first_order) -> MetaGradient:
    # The outer gradient is taken with torch.func.grad *inside* vmap. Differentiating vmap(task_loss) with
    # ordinary autograd instead gives a wrong second-order gradient for batch norm (measured: ~4e-3 rel. error).
    def task_objective(p, sX, sy, qX, qy):
        adapted = inner_loop(model, p, Split(sX, sy), inner_lr, inner_steps, loss, first_order)
        prediction = functional_call(model, adapted, (qX,))
        query_loss = task_loss(loss, prediction, qy)
        return query_loss, (query_loss.detach(), accuracy(loss, prediction.detach(), qy))

    detached = {name: p.detach() for name, p in params.items()}
    per_task_grads, (losses, accs) = vmap(grad(task_objective, has_aux=True), in_dims=(None, 0, 0, 0, 0))(
        detached, *_tensors(batch))
    grads = {name: g.mean(dim=0) for name, g in per_task_grads.items()}
    return MetaGradient(grads, losses.mean(), accs.mean())


def _meta_gradient_loop(model, params, batch, inner_lr, inner_steps, loss, first_order) -> MetaGradient:
    # Plain autograd, one task at a time: the reference implementation the batched paths are tested against.
    leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
    per_task = [_task_meta_gradient(model, leaves, batch, t, inner_lr, inner_steps, loss, first_order)
                for t in range(batch.n_tasks)]
    return _average_tasks(leaves, per_task)


def _meta_gradient_threads(model, params, batch, inner_lr, inner_steps, loss, first_order) -> MetaGradient:
    # The per-task loop, with tasks spread over worker threads that each run single-threaded kernels. Small
    # conv-net kernels use two cores poorly; two tasks at once use them well. Results are summed in task order,
    # so the numbers are those of the loop.
    leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
    workers = min(batch.n_tasks, max(1, torch.get_num_threads()))
    # functional_call swaps a module's tensors while it runs, so each worker needs a module of its own.
    chunks = [(copy.deepcopy(model), range(w, batch.n_tasks, workers)) for w in range(workers)]

    def run_chunk(chunk):
        worker_model, tasks = chunk
        return {t: _task_meta_gradient(worker_model, leaves, batch, t, inner_lr, inner_steps, loss, first_order)
                for t in tasks}

    previous_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            by_task = {t: result for done in pool.map(run_chunk, chunks) for t, result in done.items()}
    finally:
        torch.set_num_threads(previous_threads)
    return _average_tasks(leaves, [by_task[t] for t in range(batch.n_tasks)])


def _task_meta_gradient(model, leaves, batch, t, inner_lr, inner_steps, loss, first_order) -> tuple:
    """Meta-gradient of task ``t``'s query loss with respect to ``leaves``, with its loss and accuracy."""
    support = Split(batch.support.X[t], batch.support.y[t])
    fast = dict(leaves)
    for _ in range(inner_steps):
        inner = torch.autograd.grad(loss_on(model, fast, support, loss), list(fast.values()),
                                    create_graph=not first_order)
        fast = sgd_step(fast, dict(zip(fast, inner)), inner_lr)
    prediction = functional_call(model, fast, (batch.query.X[t],))
    query_loss = task_loss(loss, prediction, batch.query.y[t])
    grads = torch.autograd.grad(query_loss, list(leaves.values()))
    return grads, query_loss.detach(), accuracy(loss, prediction.detach(), batch.query.y[t])


def _average_tasks(leaves: Params, per_task: list) -> MetaGradient:
    n_tasks = len(per_task)
    grads = {name: sum(task[0][i] for task in per_task) / n_tasks for i, name in enumerate(leaves)}
    losses = torch.stack([task[1] for task in per_task])
    accs = torch.stack([task[2] for task in per_task])
    return MetaGradient(grads, losses.mean(), accs.mean())


def _meta_gradient_grouped(model, params, batch, inner_lr, inner_steps, loss, first_order) -> MetaGradient:
    # Every task gets its own copy of the weights (an expand: no memory), and all tasks run in one grouped
    # convolution. Summing the task losses keeps tasks independent, so the gradient with respect to the expanded
    # weights is each task's own inner gradient.
    leaves = {name: p.detach().requires_grad_(True) for name, p in params.items()}
    n_tasks = batch.n_tasks
    fast = {name: p.expand(n_tasks, *p.shape) for name, p in leaves.items()}
    for _ in range(inner_steps):
        support_losses = _grouped_task_losses(model, fast, batch.support, loss)[0]
        inner = torch.autograd.grad(support_losses.sum(), list(fast.values()), create_graph=not first_order)
        fast = sgd_step(fast, dict(zip(fast, inner)), inner_lr)
    query_losses, predictions = _grouped_task_losses(model, fast, batch.query, loss)
    meta_loss = query_losses.mean()
    grads = dict(zip(leaves, torch.autograd.grad(meta_loss, list(leaves.values()))))
    accs = torch.stack([accuracy(loss, predictions[t].detach(), batch.query.y[t]) for t in range(n_tasks)])
    return MetaGradient(grads, meta_loss.detach(), accs.mean())


def _grouped_task_losses(model, params, split: Split, loss: str):
    """Per-task mean losses ``(T,)`` and predictions ``(T, N, ...)`` for task-stacked ``params``."""
    predictions = grouped_forward(model, params, split.X)
    flat = predictions.reshape(-1, *predictions.shape[2:])
    per_example = task_loss_per_example(loss, flat, split.y.reshape(-1, *split.y.shape[2:]))
    return per_example.reshape(split.y.shape[0], -1).mean(dim=1), predictions


class MAML:
    """MAML around a model: meta-gradient, meta-training step and adaptation, with the paper's defaults.

    Parameters
    ----------
    model: the network; its parameters are the meta-learned initialisation theta.
    inner_lr, inner_steps: step size alpha and number of inner gradient steps (paper: 0.01 and 1 for sinusoids).
    first_order: drop the second-order term (FOMAML).
    loss: ``"mse"`` for regression or ``"cross_entropy"`` for classification.
    strategy: how to batch tasks, ``"auto"``, ``"vmap"`` or ``"loop"`` (same numbers, different speed).
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, inner_steps: int = 1, first_order: bool = False,
                 loss: str = "mse", strategy: str = "auto"):
        self.inner_lr, self.inner_steps = check_inner_loop(inner_lr, inner_steps)
        self.model = model
        self.first_order = bool(first_order)
        self.loss = check_loss_name(loss)
        self.strategy = resolve_strategy(model, strategy)

    def meta_gradient(self, batch: TaskBatch) -> MetaGradient:
        """Meta-gradient of the mean query loss over ``batch`` at the model's current parameters."""
        return meta_gradient(self.model, parameters_of(self.model), batch, self.inner_lr, self.inner_steps,
                             self.loss, self.first_order, self.strategy)

    def meta_step(self, batch: TaskBatch, optimizer: torch.optim.Optimizer) -> MetaGradient:
        """One outer update: compute the meta-gradient, store it in ``.grad``, and step ``optimizer``."""
        result = self.meta_gradient(batch)
        for name, p in self.model.named_parameters():
            p.grad = result.grads[name]
        optimizer.step()
        return result

    def adapt(self, batch: TaskBatch, inner_steps: Optional[int] = None,
              inner_lr: Optional[float] = None) -> Adaptation:
        """Adapt to each task in ``batch`` (defaults: the training ``inner_lr`` and ``inner_steps``)."""
        return adapt(self.model, parameters_of(self.model), batch,
                     self.inner_lr if inner_lr is None else inner_lr,
                     self.inner_steps if inner_steps is None else inner_steps, self.loss)


def check_inner_loop(inner_lr, inner_steps) -> tuple:
    """Validate the inner-loop settings; return them as ``(float, int)``."""
    return (require_float("inner_lr", inner_lr, positive=True),
            require_int("inner_steps", inner_steps, minimum=0))


def check_task_batch(batch: TaskBatch, model: Optional[nn.Module] = None, loss: Optional[str] = None,
                     params: Optional[Params] = None) -> None:
    """Raise ValueError if the support/query tensors of ``batch`` do not fit together (or do not fit ``model``,
    the ``loss``'s targets and the output size of ``params``). Shapes only: nothing is computed."""
    if not isinstance(batch, TaskBatch):
        raise ValueError(f"batch must be a TaskBatch(support, query), got {type(batch).__name__}")
    n_tasks = batch.support.X.shape[0] if batch.support.X.dim() else 0
    n_outputs = _n_outputs(model, params) if model is not None else None
    for split_name, split in (("support", batch.support), ("query", batch.query)):
        X, y = split
        if X.dim() < 3 or X.shape[0] != n_tasks:
            raise ValueError(f"batch.{split_name}.X must have shape (n_tasks, n_examples, ...) with a leading task "
                             f"dimension (n_tasks={n_tasks}; one task: X.unsqueeze(0)), got {tuple(X.shape)}")
        if model is not None:
            _check_input_fits(model, X, f"batch.{split_name}.X")
        if y.shape[:2] != X.shape[:2]:
            raise ValueError(f"batch.{split_name}.y must start with the same (n_tasks, n_examples) as X = "
                             f"{tuple(X.shape[:2])}, got {tuple(y.shape)}")
        if loss is not None:
            _check_targets(f"batch.{split_name}.y", y, loss, n_outputs)
    if batch.query.X.shape[2:] != batch.support.X.shape[2:]:
        raise ValueError(f"batch.query.X must have the same example shape as batch.support.X "
                         f"{tuple(batch.support.X.shape[2:])}, got {tuple(batch.query.X.shape[2:])}")


def check_batch(batch: TaskBatch, model: nn.Module, params: Params, loss: str,
                shapes_checked: bool = False) -> TaskBatch:
    """``batch`` checked against ``model``, ``params`` and ``loss``, ready for the engine.

    Floating inputs of another precision are converted to the weights' dtype (with a one-time warning);
    class labels must be integers in ``[0, n_outputs)`` (other integer dtypes become int64). Anything else
    raises ValueError naming the tensor, what was expected and what was given.
    """
    if not shapes_checked:
        check_task_batch(batch, model, loss, params)
    reference = next((p for p in params.values() if p.is_floating_point()), None)
    if reference is None:
        return batch
    n_outputs = _n_outputs(model, params)
    splits, converted = [], []
    for split_name, (X, y) in (("support", batch.support), ("query", batch.query)):
        if X.device != reference.device:
            raise ValueError(f"batch.{split_name}.X is on {X.device} but the parameters are on "
                             f"{reference.device}: move the batch with batch.to({str(reference.device)!r})")
        new_X = validation.as_dtype(f"batch.{split_name}.X", X, reference.dtype)
        if new_X is not X:
            converted.append(f"batch.{split_name}.X")
        if loss == "cross_entropy":
            y = validation.require_labels(f"batch.{split_name}.y", y, n_outputs)
        elif new_X is not X and y.is_floating_point():
            y = y.to(reference.dtype)  # targets in the inputs' (wrong) precision follow them
        splits.append(Split(new_X, y))
    if converted:
        validation.warn_converted(converted, batch.support.X.dtype if converted[0].endswith("support.X")
                                  else batch.query.X.dtype, reference.dtype)
    if all(new.X is old.X and new.y is old.y for new, old in zip(splits, (batch.support, batch.query))):
        return batch
    return TaskBatch(splits[0], splits[1], batch.info)


def _check_targets(what: str, y: torch.Tensor, loss: str, n_outputs: Optional[int]) -> None:
    if loss == "cross_entropy" and y.dim() != 2:
        raise ValueError(f"{what} must have shape (n_tasks, n_examples) of class labels for "
                         f"loss='cross_entropy', got {tuple(y.shape)}")
    if loss == "mse":
        # A (n_tasks, n_examples) target against (n_tasks, n_examples, 1) predictions would broadcast to an
        # (n, n) matrix of differences: a wrong loss with only a warning from torch.
        expected = f"{tuple(y.shape[:2]) + (n_outputs,)}" if n_outputs else "(n_tasks, n_examples, n_outputs)"
        if y.dim() < 3 or (n_outputs is not None and (y.dim() != 3 or y.shape[2] != n_outputs)):
            raise ValueError(f"{what} must have shape {expected} like the model's predictions for loss='mse', "
                             f"got {tuple(y.shape)}")


def _n_outputs(model: nn.Module, params: Optional[Params]) -> Optional[int]:
    """Outputs per example when the network ends in a linear layer (from ``params``: a zero head may be resized)."""
    leaves = structure(model).leaves
    if not leaves or not isinstance(leaves[-1][1], nn.Linear):
        return None
    name, last = leaves[-1]
    weight = (params or {}).get(f"{name}.weight" if name else "weight")
    return int(weight.shape[0]) if weight is not None and weight.dim() == 2 else last.out_features


def _check_input_fits(model: nn.Module, X: torch.Tensor, what: str) -> None:
    first = structure(model).first
    if isinstance(first, nn.Linear):
        if X.dim() != 3:
            raise ValueError(f"{what} must have shape (n_tasks, n_examples, {first.in_features}) for this model, "
                             f"got {tuple(X.shape)}")
        if X.shape[-1] != first.in_features:
            raise ValueError(f"{what} has {X.shape[-1]} features per example, but the model expects "
                             f"{first.in_features} (shape (n_tasks, n_examples, {first.in_features}))")
    if isinstance(first, nn.modules.conv._ConvNd):
        if X.dim() != 5 or X.shape[2] != first.in_channels:
            raise ValueError(f"{what} must have shape (n_tasks, n_examples, {first.in_channels}, height, width) "
                             f"for this model (a leading task dimension; one task: X.unsqueeze(0)), "
                             f"got {tuple(X.shape)}")
        _check_image_size(model, X, what)


def _check_image_size(model: nn.Module, X: torch.Tensor, what: str) -> None:
    """Images must reach the linear head with the number of features it was built for."""
    size = getattr(model, "image_size", None)
    expected = f"{size}x{size} images (shape (n_tasks, n_examples, {X.shape[2]}, {size}, {size}))" if size else ""
    for layer, before, _ in cached_layer_shapes(model, tuple(X.shape[2:])):
        if isinstance(layer, nn.Linear):
            if math.prod(before) != layer.in_features:
                expected = expected or f"images that give {layer.in_features} features at the linear head"
                raise ValueError(f"{what} has {X.shape[3]}x{X.shape[4]} images, but {type(model).__name__} expects "
                                 f"{expected}, got {tuple(X.shape)}")
            return
        if len(before) > 1 and 0 in before:
            raise ValueError(f"{what} has {X.shape[3]}x{X.shape[4]} images, too small for "
                             f"{type(model).__name__}: expected {expected or 'larger images'}, got {tuple(X.shape)}")


# ---------------------------------------------------------------------------------------------------------------
# Memory: second-order MAML keeps every inner step's graph until the outer backward pass.

GRAPH_CHECK_FLOOR = 256 * 1024 ** 2
"""Estimates below this are always allowed, without asking the system (keeps the check free on every call)."""

GRAPH_FACTOR = 8
"""Copies of the parameters and of the support activations that one inner step keeps per task. Measured
(benchmarks-style peak RSS, float32): vmap keeps about 7.5x the parameters per task and step on the MLP and 5-6x the
activations on Conv4; loop and grouped keep less. 8 is the conservative round number above all of them."""


def graph_memory(model: nn.Module, params: Params, batch: TaskBatch, inner_steps: int, first_order: bool,
                 strategy: str) -> int:
    """Estimated bytes of autograd graph that ``meta_gradient`` keeps alive at its peak (a conservative bound).

    Per task held at once: ``GRAPH_FACTOR`` x (parameters + support activations) for every inner step (second
    order; first order keeps only ~2 parameter copies per step), plus the query forward pass. Tasks held at once:
    all of them for ``vmap``/``grouped``, one for ``loop``, one per worker thread for ``threads``.
    """
    n_params = sum(p.numel() for p in params.values())
    element = max((p.element_size() for p in params.values()), default=4)
    per_example = sum(math.prod(out) for _, _, out in cached_layer_shapes(model, tuple(batch.support.X.shape[2:])))
    n_tasks, n_support, n_query = batch.n_tasks, batch.support.X.shape[1], batch.query.X.shape[1]
    at_once = {"loop": 1, "threads": min(n_tasks, max(1, torch.get_num_threads()))}.get(strategy, n_tasks)
    step = GRAPH_FACTOR * (n_params + n_support * per_example)
    kept = (2 * n_params * inner_steps + step) if first_order else step * inner_steps
    return element * at_once * (kept + GRAPH_FACTOR * n_query * per_example + 4 * n_params)


def check_graph_memory(model: nn.Module, params: Params, batch: TaskBatch, inner_steps: int, first_order: bool,
                       strategy: str) -> None:
    """Raise ValueError, before any work, when ``meta_gradient``'s graph would not fit in the available memory."""
    estimate = graph_memory(model, params, batch, inner_steps, first_order, strategy)
    if estimate < GRAPH_CHECK_FLOOR:
        return
    device = next(iter(params.values()), torch.empty(0)).device
    available = validation.available_memory(device)
    if estimate <= available:
        return
    one_step = graph_memory(model, params, batch, 1, first_order, strategy)
    per_step = max(1, one_step - graph_memory(model, params, batch, 0, first_order, strategy))
    fitting_steps = max(0, (available - (one_step - per_step)) // per_step)
    advice = [f"at most about {fitting_steps} inner_steps"]
    if not first_order:
        first = graph_memory(model, params, batch, inner_steps, True, strategy)
        if first <= available:
            advice.insert(0, f"first_order=True (about {validation.format_bytes(first)})")
    raise ValueError(
        f"inner_steps={inner_steps} with {batch.n_tasks} tasks of {batch.support.X.shape[1]} support and "
        f"{batch.query.X.shape[1]} query examples ({'first' if first_order else 'second'} order, "
        f"strategy={strategy!r}) would need about {validation.format_bytes(estimate)} of memory for the autograd "
        f"graph, but only {validation.format_bytes(available)} is available on {device}: use "
        f"{' or '.join(advice)}, or fewer tasks (meta_batch_size) or examples per task")


def _warn_if_not_finite(result: MetaGradient, params: Params, inner_lr: float, inner_steps: int) -> None:
    """RuntimeWarning when the meta-loss is NaN/inf, naming the likely cause.

    Only the loss is looked at (one scalar; checking every gradient tensor costs ~100 us, a few percent of a
    sinusoid meta-step): a gradient that blows up while the loss is finite makes the weights, and so the next
    call's loss, non-finite, and that call's warning names the tensor.
    """
    if bool(torch.isfinite(result.loss)):
        return
    bad = first_nonfinite(params)
    if bad is not None:
        cause = (f"params[{bad!r}] already holds non-finite values (an earlier meta-step diverged: lower meta_lr "
                 f"or inner_lr)")
    else:
        cause = (f"the inner loop diverged with inner_lr={inner_lr:g} over {inner_steps} step(s): use a smaller "
                 f"inner_lr (the MAML paper: 0.01 for sinusoids, 0.4 for Omniglot)")
    warnings.warn(f"meta_gradient: the meta-loss is not finite ({float(result.loss):g}); {cause}",
                  RuntimeWarning, stacklevel=3)


def _tensors(batch: TaskBatch):
    return batch.support.X, batch.support.y, batch.query.X, batch.query.y
