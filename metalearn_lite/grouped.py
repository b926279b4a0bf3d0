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

from typing import Dict

import torch
from torch import nn
from torch.nn import functional as F

from .models import Conv4

Params = Dict[str, torch.Tensor]


def supports_grouped(model: nn.Module) -> bool:
    """True when every layer of ``model`` has a grouped implementation here."""
    leaves = [m for m in model.modules() if not list(m.children())]
    if not leaves or not isinstance(model, (Conv4, nn.Sequential)) or not all(map(_is_supported, leaves)):
        return False
    dense = all(isinstance(m, (nn.Linear, nn.ReLU)) for m in leaves)
    return isinstance(leaves[0], nn.Conv2d) or (dense and isinstance(leaves[0], nn.Linear))


def grouped_forward(model: nn.Module, params: Params, X: torch.Tensor) -> torch.Tensor:
    """Outputs for every task: ``params`` have a leading task dim ``T``, ``X`` has shape ``(T, N, C, H, W)``.

    Returns ``(T, N, out_features)``.
    """
    n_tasks, n_examples = X.shape[:2]
    if X.dim() == 3:  # a dense network on (T, N, features): per-task weights are batched matrix products
        return _run(model, "", params, X, n_tasks)
    # (T, N, C, H, W) -> (N, T*C, H, W): task t owns channels [t*C, (t+1)*C).
    h = X.transpose(0, 1).reshape(n_examples, n_tasks * X.shape[2], *X.shape[3:])
    if isinstance(model, Conv4):
        h = _run(model.features, "features.", params, h, n_tasks)
        h = h.reshape(n_examples, n_tasks, -1).transpose(0, 1)  # back to (T, N, features)
        return _linear(params["head.weight"], params["head.bias"], h)
    return _run(model, "", params, h, n_tasks)


def _run(module: nn.Module, prefix: str, params: Params, h: torch.Tensor, n_tasks: int) -> torch.Tensor:
    for name, child in module.named_children():
        path = f"{prefix}{name}."
        if isinstance(child, nn.Sequential):
            h = _run(child, path, params, h, n_tasks)
        elif isinstance(child, nn.Conv2d):
            weight = params[path + "weight"]
            h = F.conv2d(h, weight.reshape(-1, *weight.shape[2:]), params[path + "bias"].reshape(-1),
                         stride=child.stride, padding=child.padding, groups=n_tasks)
        elif isinstance(child, nn.BatchNorm2d):
            h = F.batch_norm(h, None, None, params[path + "weight"].reshape(-1), params[path + "bias"].reshape(-1),
                             training=True, eps=child.eps)
        elif isinstance(child, nn.ReLU):
            h = F.relu(h)
        elif isinstance(child, nn.MaxPool2d):
            h = F.max_pool2d(h, child.kernel_size, child.stride)
        elif isinstance(child, nn.Flatten):
            h = h.reshape(h.shape[0], n_tasks, -1).transpose(0, 1)
        elif isinstance(child, nn.Linear):
            h = _linear(params[path + "weight"], params[path + "bias"], h)
    return h


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
