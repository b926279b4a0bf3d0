"""Run a network on many tasks at once, each task with its own weights: grouped convolutions, batched matmuls.

After one inner step every task has different weights, so the tasks of a meta-batch cannot share one ordinary
convolution. Stacking the tasks along the channel axis and using ``groups=n_tasks`` runs all of them in a single
convolution call, with exactly the per-task arithmetic: batch norm still normalises each task's channels over that
task's own examples. On a CPU this beats both a Python loop over tasks and ``vmap`` of a convolution.

Dense layers of all tasks run as one batched matrix product (``baddbmm``) in the same way.

Supported: ``Conv4``; ``nn.Sequential`` conv nets of ``Conv2d``, ``BatchNorm2d`` (batch statistics), ``ReLU``,
``MaxPool2d``, ``Flatten``, ``Linear``; and ``nn.Sequential`` MLPs of ``Linear`` and ``ReLU`` (e.g. ``MLP``).
"""

from __future__ import annotations

from typing import Dict, Optional

import torch
from torch import nn
from torch.nn import functional as F

from .models import Conv4, pool_before_relu

Params = Dict[str, torch.Tensor]


def supports_grouped(model: nn.Module) -> bool:
    """True when every layer of ``model`` has a grouped implementation here."""
    leaves = [m for m in model.modules() if not list(m.children())]
    if not leaves or not isinstance(model, (Conv4, nn.Sequential)) or not all(map(_is_supported, leaves)):
        return False
    dense = all(isinstance(m, (nn.Linear, nn.ReLU)) for m in leaves)
    return isinstance(leaves[0], nn.Conv2d) or (dense and isinstance(leaves[0], nn.Linear))


def grouped_forward(model: nn.Module, params: Params, X: torch.Tensor,
                    statistics_from: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Outputs for every task: ``params`` have a leading task dim ``T``, ``X`` has shape ``(T, N, C, H, W)``
    (or ``(T, N, features)`` for a dense network). Returns ``(T, N, out_features)``.

    ``statistics_from``: other inputs of the same tasks, e.g. the support images ``(T, K, C, H, W)``; every batch
    norm then normalises ``X`` with *their* batch statistics instead of ``X``'s own (non-transductive evaluation:
    each query image is classified on its own).
    """
    n_tasks = X.shape[0]
    model = pool_before_relu(model)   # the same numbers, a quarter of the ReLU work (see there)
    if X.dim() == 3:  # a dense network on (T, N, features): per-task weights are batched matrix products
        return _run(model, "", params, _Activations(X, None), n_tasks).h
    h = _Activations(_stack_tasks(X), None if statistics_from is None else _stack_tasks(statistics_from))
    if isinstance(model, Conv4):
        h = _run(model.features, "features.", params, h, n_tasks)
        features = h.h.reshape(h.h.shape[0], n_tasks, -1).transpose(0, 1)  # back to (T, N, features)
        return _linear(params["head.weight"], params["head.bias"], features)
    return _run(model, "", params, h, n_tasks).h


class _Activations:
    """The activations ``h`` on their way through the network, and those of the reference batch whose batch
    statistics normalise them (None: ``h``'s own)."""

    def __init__(self, h: torch.Tensor, reference: Optional[torch.Tensor]):
        self.h, self.reference = h, reference

    def map(self, layer) -> "_Activations":
        return _Activations(layer(self.h), None if self.reference is None else layer(self.reference))


def _stack_tasks(X: torch.Tensor) -> torch.Tensor:
    """(T, N, C, H, W) -> (N, T*C, H, W): task t owns channels [t*C, (t+1)*C)."""
    return X.transpose(0, 1).reshape(X.shape[1], X.shape[0] * X.shape[2], *X.shape[3:])


def _run(module: nn.Module, prefix: str, params: Params, h: _Activations, n_tasks: int) -> _Activations:
    for name, child in module.named_children():
        path = f"{prefix}{name}."
        if isinstance(child, nn.Sequential):
            h = _run(child, path, params, h, n_tasks)
        elif isinstance(child, nn.BatchNorm2d):
            h = _batch_norm(h, params[path + "weight"].reshape(-1), params[path + "bias"].reshape(-1), child.eps)
        else:
            h = h.map(_layer(child, path, params, n_tasks))
    return h


def _layer(child: nn.Module, path: str, params: Params, n_tasks: int):
    """The function one layer applies to the task-stacked activations."""
    if isinstance(child, nn.Conv2d):
        weight = params[path + "weight"]
        w, b = weight.reshape(-1, *weight.shape[2:]), params[path + "bias"].reshape(-1)
        return lambda h: F.conv2d(h, w, b, stride=child.stride, padding=child.padding, groups=n_tasks)
    if isinstance(child, nn.ReLU):
        return F.relu
    if isinstance(child, nn.MaxPool2d):   # per channel: the task-stacked channels pool as they are
        return child
    if isinstance(child, nn.Flatten):
        return lambda h: h.reshape(h.shape[0], n_tasks, -1).transpose(0, 1)
    if isinstance(child, nn.Linear):
        return lambda h: _linear(params[path + "weight"], params[path + "bias"], h)
    raise TypeError(f"no grouped implementation of {type(child).__name__}")


def _batch_norm(h: _Activations, gamma: torch.Tensor, beta: torch.Tensor, eps: float) -> _Activations:
    """Batch norm with batch statistics: of ``h`` itself, or of its reference batch when there is one."""
    if h.reference is None:
        return _Activations(F.batch_norm(h.h, None, None, gamma, beta, training=True, eps=eps), None)
    var, mean = torch.var_mean(h.reference, dim=(0, 2, 3), unbiased=False)
    return _Activations(F.batch_norm(h.h, mean, var, gamma, beta, training=False, eps=eps),
                        F.batch_norm(h.reference, None, None, gamma, beta, training=True, eps=eps))


def _linear(weight: torch.Tensor, bias: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Per-task affine map: ``h`` (T, N, in), ``weight`` (T, out, in), ``bias`` (T, out)."""
    return torch.baddbmm(bias.unsqueeze(1), h, weight.transpose(1, 2))


def _is_supported(module: nn.Module) -> bool:
    if isinstance(module, nn.BatchNorm2d):
        return not module.track_running_stats
    if isinstance(module, nn.Conv2d):
        return module.groups == 1 and module.dilation == (1, 1) and module.bias is not None
    if isinstance(module, nn.MaxPool2d):
        return module.padding == 0 and module.dilation == 1
    return isinstance(module, (nn.ReLU, nn.Flatten, nn.Linear))
