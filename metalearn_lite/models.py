"""The networks of the papers, as plain ``nn.Module``s (the MAML engine calls them functionally)."""

from __future__ import annotations

import copy
import math
import weakref
from typing import Dict, List, NamedTuple, Optional, Sequence, Tuple

import torch
from torch import nn
from torch.nn import functional as F

from .validation import require_int


class MLP(nn.Sequential):
    """Fully connected ReLU network; the default 1-40-40-1 is the MAML paper's sinusoid regressor."""

    def __init__(self, in_features: int = 1, hidden: tuple = (40, 40), out_features: int = 1):
        widths = [require_int("in_features", in_features, minimum=1)]
        widths += [require_int("hidden width", h, minimum=1) for h in hidden]
        layers = []
        for width_in, width_out in zip(widths[:-1], widths[1:]):
            layers += [nn.Linear(width_in, width_out), nn.ReLU()]
        layers.append(nn.Linear(widths[-1], require_int("out_features", out_features, minimum=1)))
        super().__init__(*layers)


class Conv4(nn.Module):
    """Four blocks of [3x3 conv, batch norm, ReLU, 2x2 max-pool] and a linear head (Vinyals et al.; MAML paper).

    Batch norm always uses the statistics of the batch it sees (``track_running_stats=False``), as in the MAML
    paper: there is no running state, so the network is a pure function of its parameters and inputs.
    """

    def __init__(self, n_way: int = 5, hidden_channels: int = 64, in_channels: int = 1, image_size: int = 28):
        super().__init__()
        n_way = require_int("n_way", n_way, minimum=2)
        hidden_channels = require_int("hidden_channels", hidden_channels, minimum=1)
        in_channels = require_int("in_channels", in_channels, minimum=1)
        self.image_size = image_size = require_int("image_size", image_size, minimum=16)  # for input checks
        channels = [in_channels] + [hidden_channels] * 4
        self.features = nn.Sequential(*[conv_block(c_in, c_out) for c_in, c_out in zip(channels, channels[1:])])
        side = image_size
        for _ in range(4):
            side //= 2
        self.head = nn.Linear(hidden_channels * side * side, n_way)

    def forward(self, x):
        return self.head(self.features(x).flatten(start_dim=1))


def pool_before_relu(model: nn.Module) -> nn.Module:
    """``model`` as the engine runs it: every ReLU that a max-pool directly follows (in an ``nn.Sequential``) is
    moved after the pool. The same module objects, parameters and names; only the order of those two changes.

    Why: ReLU and max are both monotone, so ``relu(max(window)) == max(relu(window))`` exactly, and the gradients
    are the same numbers too (both send a window's gradient to its first maximum when that maximum is positive,
    and nothing otherwise; second derivatives of both are zero). After the pool, ReLU and its backward touch a
    quarter of the elements: on Conv4's 28 x 28 activations they were a fifth of a meta-step's time. A model
    without such a pair is returned as it is. Built anew on every call (57 us for Conv4), so that a layer the
    user replaces later is never run from a stale copy. A plain ``nn.MaxPool2d`` runs as ``MaxPool2d`` (2x2
    windows the fast way, ``max_pool_2x2``; the same values and gradients).
    """
    return _pool_first(model)


def _pool_first(module: nn.Module) -> nn.Module:
    if type(module) is nn.MaxPool2d and _pools_2x2(module):   # runs as this file's (max_pool_2x2: the same numbers)
        shadow = copy.copy(module)
        shadow.__class__ = MaxPool2d
        return shadow
    names = list(module._modules)
    reordered = {name: _pool_first(child) if child is not None else None for name, child in module._modules.items()}
    if isinstance(module, nn.Sequential):   # only a Sequential runs its children in the order they are stored
        for i in range(len(names) - 1):
            if type(module._modules[names[i]]) is nn.ReLU and _pools_without_indices(module._modules[names[i + 1]]):
                names[i], names[i + 1] = names[i + 1], names[i]
    if names == list(module._modules) and all(reordered[n] is module._modules[n] for n in names):
        return module
    shadow = copy.copy(module)   # shares parameters, buffers and every unchanged child with ``module``
    shadow._modules = {name: reordered[name] for name in names}
    return shadow


def _pools_without_indices(layer: Optional[nn.Module]) -> bool:
    return isinstance(layer, nn.MaxPool2d) and not layer.return_indices


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution, batch norm with batch statistics, ReLU, 2x2 max-pool."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
        nn.BatchNorm2d(out_channels, track_running_stats=False),
        nn.ReLU(),
        MaxPool2d(2),
    )


def max_pool_2x2(h: torch.Tensor) -> torch.Tensor:
    """``F.max_pool2d(h, 2)``: the same values, and with gradients the same gradients, computed the fast way.

    Why: on a CPU, ``max_pool2d`` on the standard (channel by channel) layout runs one window at a time, and on
    Conv4's activations it was the slowest op of a forward pass (4.5 ms for 25 x 48 x 28 x 28, 20 ms for
    75 x 64 x 28 x 28, one thread), more than the convolutions. Without gradients the maximum of four strided views
    gives the values (0.6 ms for the first). With gradients, on a CPU outside ``torch.func`` transforms,
    ``MaxPoolWithIndices`` runs; elsewhere ``max_pool2d`` itself. (``torch.maximum``'s backward would split a tie's
    gradient between its inputs; ``max_pool2d``'s sends it to one.)"""
    if not torch.is_grad_enabled():
        h = h[..., :h.shape[-2] // 2 * 2, :h.shape[-1] // 2 * 2]   # floor mode: an odd last row/column is dropped
        return torch.maximum(torch.maximum(h[..., 0::2, 0::2], h[..., 1::2, 0::2]),
                             torch.maximum(h[..., 0::2, 1::2], h[..., 1::2, 1::2]))
    if h.dim() == 4 and h.device.type == "cpu" and not _wrapped_by_transform(h):
        return MaxPoolWithIndices.apply(h)
    return F.max_pool2d(h, 2, 2)


def _wrapped_by_transform(h: torch.Tensor) -> bool:
    wrapped = getattr(torch._C._functorch, "is_functorch_wrapped_tensor", None)
    return wrapped is None or wrapped(h)


class MaxPoolWithIndices(torch.autograd.Function):
    """``F.max_pool2d(h, 2)`` of a CPU batch ``(N, C, H, W)``, its values and its gradients to the bit.

    The forward pass finds each window's maximum and where it is on a channels-last copy of ``h`` (the values of one
    pixel side by side: vectorised, 20 -> about 8 ms with the copy for 75 x 64 x 28 x 28). The places are numbered
    within each channel's plane, whatever the layout, so the backward pass is ``max_pool2d``'s own on the standard
    layout, from those places (and double backward is that op's: MAML's second order works through it)."""

    @staticmethod
    def forward(ctx, h):
        pooled, places = F.max_pool2d(h.contiguous(memory_format=torch.channels_last), 2, 2, return_indices=True)
        ctx.save_for_backward(h)
        ctx.places = places.contiguous()
        return pooled.contiguous()

    @staticmethod
    def backward(ctx, grad):
        (h,) = ctx.saved_tensors
        return torch.ops.aten.max_pool2d_with_indices_backward(grad, h, [2, 2], [2, 2], [0, 0], [1, 1], False,
                                                               ctx.places)


class MaxPool2d(nn.MaxPool2d):
    """``nn.MaxPool2d`` (the same layer, the same repr and state), whose 2x2 case runs ``max_pool_2x2``."""

    def forward(self, x):
        return max_pool_2x2(x) if _pools_2x2(self) else super().forward(x)

    def _get_name(self):
        return "MaxPool2d"


def _pools_2x2(pool: nn.MaxPool2d) -> bool:
    """True for the 2x2, stride-2 pool without padding, dilation, ceil mode or indices that ``max_pool_2x2`` is."""
    return pool.kernel_size in (2, (2, 2)) and pool.stride in (2, (2, 2)) and pool.padding in (0, (0, 0)) \
        and pool.dilation in (1, (1, 1)) and not pool.ceil_mode and not pool.return_indices


class LinearModel(nn.Module):
    """``f(x) = x w`` without bias: the model whose MAML meta-gradient has a closed form on ``LinearTasks``."""

    def __init__(self, dim: int = 2):
        super().__init__()
        self.weight = nn.Parameter(nn.init.zeros_(nn.Linear(require_int("dim", dim, minimum=1), 1).weight.data[0]))

    def forward(self, x):
        return x @ self.weight.unsqueeze(-1)


def layer_shapes(model: nn.Module, example_shape: Sequence[int]) -> List[Tuple[nn.Module, tuple, tuple]]:
    """``(layer, input shape, output shape)`` of one example through the leaf layers of ``model``, in order.

    Worked out from the layers' settings, without running the network (a forward pass could draw random numbers,
    e.g. in dropout, and so change the results that follow). Exact for ``MLP``, ``Conv4`` and ``nn.Sequential``
    nets of linear, conv, pooling, batch-norm and elementwise layers; for other layers the shape is assumed to
    pass through unchanged, which is good enough for a memory estimate. Conv4's implicit flatten before its head
    is applied at the first linear layer that follows a convolution.
    """
    shape, shapes, after_conv = tuple(example_shape), [], False
    for layer in (m for m in model.modules() if not list(m.children())):
        before = shape
        if isinstance(layer, nn.Linear):
            if after_conv and len(shape) > 1:
                before = shape = (math.prod(shape),)
            shape, after_conv = shape[:-1] + (layer.out_features,), False
        elif isinstance(layer, nn.modules.conv._ConvNd):
            shape, after_conv = (layer.out_channels,) + _window_output(layer, shape[1:]), True
        elif isinstance(layer, (nn.modules.pooling._MaxPoolNd, nn.modules.pooling._AvgPoolNd)):
            shape = shape[:1] + _window_output(layer, shape[1:])
        elif isinstance(layer, nn.Flatten):
            shape = (math.prod(shape),)
        shapes.append((layer, before, shape))
    return shapes


def _window_output(layer: nn.Module, spatial: tuple) -> tuple:
    """Spatial output size of a convolution or pooling window (PyTorch's formula, floor mode)."""
    if layer.padding == "same":
        return tuple(spatial)
    dims = len(spatial)

    def per_dim(value):
        value = 0 if value == "valid" else value
        return tuple(value) if isinstance(value, (tuple, list)) else (value,) * dims
    kernel, stride = per_dim(layer.kernel_size), per_dim(layer.stride or layer.kernel_size)
    padding, dilation = per_dim(layer.padding), per_dim(getattr(layer, "dilation", 1))
    return tuple(max(0, (n + 2 * p - d * (k - 1) - 1) // s + 1)
                 for n, k, s, p, d in zip(spatial, kernel, stride, padding, dilation))


class Structure(NamedTuple):
    """What the input checks need to know about a network, gathered once (walking a module costs 10-100 us, a
    noticeable share of a small meta-step): parameter and buffer names, the leaf layers in order, and the layer
    shapes per example shape (filled on demand)."""

    token: tuple
    parameters: Tuple[str, ...]
    buffers: frozenset
    leaves: Tuple[Tuple[str, nn.Module], ...]
    first: Optional[nn.Module]
    shapes: Dict[tuple, list]


_STRUCTURES: weakref.WeakKeyDictionary[nn.Module, Structure] = weakref.WeakKeyDictionary()


def structure(model: nn.Module) -> Structure:
    """``model``'s ``Structure``, cached per model and rebuilt when its top-level layers or parameters change."""
    token = tuple(map(id, model._modules.values())) + tuple(map(id, model._parameters.values()))
    known = _STRUCTURES.get(model)
    if known is not None and known.token == token:
        return known
    leaves = tuple((name, m) for name, m in model.named_modules() if not list(m.children()))
    first = next((m for _, m in leaves if isinstance(m, (nn.Linear, nn.modules.conv._ConvNd))), None)
    made = Structure(token, tuple(name for name, _ in model.named_parameters()),
                     frozenset(name for name, _ in model.named_buffers()), leaves, first, {})
    _STRUCTURES[model] = made
    return made


def cached_layer_shapes(model: nn.Module, example_shape: Sequence[int]) -> list:
    """``layer_shapes`` through the per-model cache."""
    shapes = structure(model).shapes
    key = tuple(example_shape)
    if key not in shapes:
        shapes[key] = layer_shapes(model, key)
    return shapes[key]
