"""The two checks that catch a wrong MAML implementation (notebook 6's gallery of bugs).

1. **Does the meta-gradient reach the initialisation?** After the backward pass every parameter of the model (theta)
   must hold a gradient. A ``copy.deepcopy`` of the model with an inner optimiser, or a ``.detach()`` in the inner
   step, cuts the graph: theta's ``.grad`` stays None or zero and the outer update does nothing.
2. **Does it match finite differences of the MAML objective?** Along a few random directions d, the slope
   <g, d> of a claimed meta-gradient g must equal (F(theta + h d) - F(theta - h d)) / 2h, where F is the mean query
   loss after the inner loop (computed here in float64 by the package's engine). A first-order gradient (a forgotten
   ``create_graph=True``), a gradient taken at the adapted weights instead of theta, or a sum instead of a mean all
   fail this check, by an amount that says which.
"""

from __future__ import annotations

import copy
from typing import Dict, NamedTuple

import torch
from torch import nn

from .maml import parameters_of, query_loss_after_adaptation
from .tasks import Split, TaskBatch
from .validation import require_float, require_int

Params = Dict[str, torch.Tensor]


def reaches_initialisation(model: nn.Module) -> bool:
    """True when every parameter of ``model`` holds a non-zero ``.grad`` (check 1)."""
    return all(p.grad is not None and bool(p.grad.abs().sum()) for p in model.parameters())


def meta_objective(model: nn.Module, params: Params, batch: TaskBatch, inner_lr: float, inner_steps: int = 1,
                   loss: str = "mse") -> torch.Tensor:
    """F(theta): the mean over tasks of the query loss after ``inner_steps`` inner steps from ``params``."""
    losses = [query_loss_after_adaptation(model, params, Split(batch.support.X[t], batch.support.y[t]),
                                          Split(batch.query.X[t], batch.query.y[t]), inner_lr, inner_steps, loss)[0]
              for t in range(batch.n_tasks)]
    return torch.stack(losses).mean()


class GradientCheck(NamedTuple):
    """Slopes of a claimed meta-gradient and of finite differences along the same random directions."""

    claimed: torch.Tensor
    finite_differences: torch.Tensor
    relative_error: float

    @property
    def passed(self) -> bool:
        """Agreement to 1e-4 (float64 central differences are good to about 1e-8 here)."""
        return self.relative_error < 1e-4


def check_meta_gradient(model: nn.Module, grads: Params, batch: TaskBatch, inner_lr: float, inner_steps: int = 1,
                        loss: str = "mse", n_directions: int = 3, step: float = 1e-5,
                        seed: int = 0) -> GradientCheck:
    """Check 2: compare ``grads`` (a claimed meta-gradient at ``model``'s parameters) with central finite
    differences of ``meta_objective``, along ``n_directions`` seeded random unit directions, in float64."""
    n_directions = require_int("n_directions", n_directions, minimum=1)
    step = require_float("step", step, minimum=1e-12, maximum=1e-1)
    missing = sorted(set(dict(model.named_parameters())) - set(grads))
    if missing:
        raise ValueError(f"grads has no entry for {', '.join(missing)}: pass one gradient per parameter "
                         "(e.g. {name: p.grad for name, p in model.named_parameters()})")
    model64 = copy.deepcopy(model).double()
    theta = {name: p.double() for name, p in parameters_of(model).items()}
    batch64 = _in_float64(batch)
    generator = torch.Generator().manual_seed(seed)
    claimed, measured = [], []
    for _ in range(n_directions):
        direction = {name: torch.randn(p.shape, generator=generator, dtype=torch.float64) for name, p in theta.items()}
        norm = torch.sqrt(sum((d ** 2).sum() for d in direction.values()))
        direction = {name: d / norm for name, d in direction.items()}
        shifted = [{name: p + sign * step * direction[name] for name, p in theta.items()} for sign in (1, -1)]
        plus, minus = (meta_objective(model64, p, batch64, inner_lr, inner_steps, loss) for p in shifted)
        measured.append((plus - minus) / (2 * step))
        zero = torch.zeros((), dtype=torch.float64)
        claimed.append(sum(((grads[name].double() if grads[name] is not None else zero) * direction[name]).sum()
                           for name in theta))
    claimed, measured = torch.stack(claimed), torch.stack(measured)
    error = float((claimed - measured).abs().max() / measured.abs().max().clamp_min(1e-12))
    return GradientCheck(claimed, measured, error)


def _in_float64(batch: TaskBatch) -> TaskBatch:
    """The batch with float64 inputs (and float64 targets for regression; class labels stay integers)."""
    def convert(split: Split) -> Split:
        y = split.y.double() if split.y.is_floating_point() else split.y
        return Split(split.X.double(), y)
    return TaskBatch(convert(batch.support), convert(batch.query), batch.info)
