"""Checks of what the MAML engine is given, before any work: settings, task batches, and the memory a
second-order autograd graph would need.

Each check raises ValueError naming the parameter or tensor, what was expected and what was given (never a
traceback from deep inside torch), or converts what can safely be converted (with a warning).
"""

from __future__ import annotations

import math
import warnings
from typing import Dict, Optional

import torch
from torch import nn

from . import validation
from .models import cached_layer_shapes, structure
from .tasks import Split, TaskBatch
from .validation import first_nonfinite, require_float, require_int

Params = Dict[str, torch.Tensor]


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


def warn_if_not_finite(loss: torch.Tensor, params: Params, inner_lr: float, inner_steps: int) -> None:
    """RuntimeWarning when the meta-loss is NaN/inf, naming the likely cause.

    Only the loss is looked at (one scalar; checking every gradient tensor costs ~100 us, a few percent of a
    sinusoid meta-step): a gradient that blows up while the loss is finite makes the weights, and so the next
    call's loss, non-finite, and that call's warning names the tensor.
    """
    if bool(torch.isfinite(loss)):
        return
    bad = first_nonfinite(params)
    if bad is not None:
        cause = (f"params[{bad!r}] already holds non-finite values (an earlier meta-step diverged: lower meta_lr "
                 f"or inner_lr)")
    else:
        cause = (f"the inner loop diverged with inner_lr={inner_lr:g} over {inner_steps} step(s): use a smaller "
                 f"inner_lr (the MAML paper: 0.01 for sinusoids, 0.4 for Omniglot)")
    warnings.warn(f"meta_gradient: the meta-loss is not finite ({float(loss):g}); {cause}",
                  RuntimeWarning, stacklevel=3)
