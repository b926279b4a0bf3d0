"""Channels-last: how the engine lays out a conv net's images and activations on a CPU, and the one fix it needs.

PyTorch stores an image batch ``(N, C, H, W)`` channel by channel ("NCHW"). Stored channels-last ("NHWC"), the
``C`` values of one pixel sit together, and on a CPU batch norm and max-pool run several times faster that way
(Conv4's 75 x 64 x 28 x 28 activations, one thread: max-pool 20 -> 1.3 ms, batch norm 8.5 -> 3.2 ms; a forward
and backward pass of Conv4-64 on 75 images 101 -> 64 ms). The layout is a storage order only: every tensor keeps
its shape and values, and the network computes the same function. With its weights stored channels-last, a
convolution returns that layout, and every later layer keeps it, so the engine converts the weights and nothing
else (``channels_last``).

The fix: PyTorch's channels-last batch norm sums each channel's values one after another in float32, where the
standard layout sums pairwise. With activations whose mean is large against their spread, that cost accuracy:
Conv4's float32 meta-gradient was 30 times further from its float64 value (1.5e-4 against 4.8e-6). Batch norm
does not change when a constant is subtracted from a channel, so ``centred_batch_norm`` subtracts one first, the
first example's channel mean (no gradient flows into it; the outputs and gradients are the same functions), and
the sums then run over values near zero: the error is back to 5.2e-6.
"""

from __future__ import annotations

import copy
from typing import Dict

import torch
from torch import nn

Params = Dict[str, torch.Tensor]


def channels_last_pays(params: Params, X: torch.Tensor) -> bool:
    """True for images on a CPU fed to a network with convolution weights, outside ``torch.func`` transforms
    (``vmap`` hides the storage order of what it batches). On a GPU cuDNN chooses layouts of its own."""
    return X.dim() == 4 and X.device.type == "cpu" and _outside_transforms(X) and any(p.dim() == 4 for p in params.values())


def channels_last(params: Params) -> Params:
    """``params`` with every 4-d (convolution) weight stored channels-last; a differentiable copy, whose gradient
    reaches the original tensor. (``.to``, not ``.contiguous``: a one-channel weight counts as contiguous in both
    layouts, and ``.contiguous`` would keep its old storage order.)"""
    return {name: p.to(memory_format=torch.channels_last) if p.dim() == 4 else p for name, p in params.items()}


class CentredBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` with batch statistics that, given a channels-last input, first subtracts the first
    example's mean of each channel (see the module docstring). Other inputs run as in ``nn.BatchNorm2d``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if is_channels_last(x):
            x = x - x[:1].detach().mean(dim=(0, 2, 3), keepdim=True)
        return super().forward(x)

    def _get_name(self):
        return "BatchNorm2d"


def is_channels_last(x: torch.Tensor) -> bool:
    """True for a 4-d tensor stored channels-last and not also in the standard order (e.g. one channel)."""
    return x.dim() == 4 and _outside_transforms(x) and x.is_contiguous(memory_format=torch.channels_last) \
        and not x.is_contiguous()


def _outside_transforms(x: torch.Tensor) -> bool:
    """True when ``x`` is an ordinary tensor, not one wrapped by ``vmap`` or ``grad`` (False on a torch too old to
    tell)."""
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return wrapped is not None and not wrapped(x)


def centred_batch_norm(model: nn.Module) -> nn.Module:
    """``model`` with each batch norm that always uses batch statistics run as ``CentredBatchNorm2d``: the same
    module objects, parameters and names otherwise (a shallow view, built anew on every call). A batch norm with
    running statistics is left as it is: its running mean would record the shifted values."""
    return _with_centred_batch_norm(model)


def _with_centred_batch_norm(module: nn.Module) -> nn.Module:
    if type(module) is nn.BatchNorm2d and not module.track_running_stats:
        shadow = copy.copy(module)   # shares the parameter dict: functional_call's tensors reach it
        shadow.__class__ = CentredBatchNorm2d
        return shadow
    children = {name: _with_centred_batch_norm(child) if child is not None else None
                for name, child in module._modules.items()}
    if all(children[name] is child for name, child in module._modules.items()):
        return module
    shadow = copy.copy(module)
    shadow._modules = children
    return shadow
