"""The Gaussian MLP policy of the MAML reinforcement-learning experiments (Finn, Abbeel & Levine, 2017, section 5.3).

pi_theta(a | s) = N(a; mu_theta(s), diag(exp(log_std))^2): a ReLU network 2-100-100-2 gives the mean and a learned,
state-independent ``log_std`` vector gives the spread, as rllab's ``GaussianMLPPolicy`` (the authors' code:
cbfinn/maml_rl, ``MAMLGaussianMLPPolicy`` with ``hidden_sizes=(100, 100)``, ``hidden_nonlinearity=relu``,
``init_std=1``). rllab initialises the dense layers Xavier-uniform with zero biases; so does ``GaussianPolicy``.

Like the rest of the package the module is a plain ``nn.Module`` used functionally: ``policy_distribution`` calls it
with ``torch.func.functional_call`` and a plain ``dict`` of parameters, either shared by all tasks (each tensor
shaped like the module's) or one set per task (a leading task dimension, after adaptation; ``vmap`` over tasks).
"""

from __future__ import annotations

import math
from typing import Dict, Sequence, Tuple

import torch
from torch import nn
from torch.func import functional_call, vmap

from .validation import require_float, require_int

Params = Dict[str, torch.Tensor]


class GaussianPolicy(nn.Module):
    """Gaussian policy with an MLP mean and a learned state-independent log standard deviation.

    Parameters
    ----------
    obs_dim, action_dim: sizes of observations and actions (2 and 2 for the 2-D navigation task).
    hidden: widths of the ReLU hidden layers (paper: 100, 100).
    init_std: the standard deviation before training (rllab: 1.0, in the policy's [-1, 1] action units).
    """

    def __init__(self, obs_dim: int = 2, action_dim: int = 2, hidden: Sequence[int] = (100, 100),
                 init_std: float = 1.0):
        super().__init__()
        obs_dim = require_int("obs_dim", obs_dim, minimum=1)
        action_dim = require_int("action_dim", action_dim, minimum=1)
        widths = [require_int("hidden", h, minimum=1) for h in hidden]
        init_std = require_float("init_std", init_std, positive=True)
        sizes = [obs_dim, *widths, action_dim]
        layers = []
        for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
            layer = nn.Linear(n_in, n_out)
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)
            layers.append(layer)
            if i < len(sizes) - 2:
                layers.append(nn.ReLU())
        self.mean_net = nn.Sequential(*layers)
        self.log_std = nn.Parameter(torch.full((action_dim,), math.log(init_std)))

    def forward(self, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """``(mean, log_std)`` of the action distribution at ``obs`` (``(..., obs_dim)``), both ``(..., action_dim)``."""
        mean = self.mean_net(obs)
        return mean, self.log_std.expand_as(mean)


def policy_params(policy: nn.Module) -> Params:
    """The policy's parameters as a plain ``dict`` (detached; ``requires_grad_`` them to differentiate)."""
    return {name: p.detach() for name, p in policy.named_parameters()}


def is_per_task(policy: nn.Module, params: Params) -> bool:
    """True when ``params`` carry a leading task dimension (one set of weights per task), False when shared."""
    shapes = {name: p.shape for name, p in policy.named_parameters()}
    if set(params) != set(shapes):
        raise ValueError(f"params must have exactly the keys of the policy's named_parameters() "
                         f"({sorted(shapes)}), got {sorted(params)}")
    per_task = [tuple(params[n].shape[1:]) == tuple(s) and params[n].dim() == len(s) + 1 for n, s in shapes.items()]
    shared = [tuple(params[n].shape) == tuple(s) for n, s in shapes.items()]
    if all(shared):
        return False
    if all(per_task):
        return True
    raise ValueError("params must be shaped like the policy's parameters (shared by all tasks) or all carry one "
                     "leading task dimension (one set per task)")


def policy_distribution(policy: nn.Module, params: Params, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``(mean, log_std)`` at ``obs`` ``(n_tasks, ..., obs_dim)`` with shared or per-task ``params``.

    Shared: ``functional_call``. Per task: ``vmap`` of ``functional_call`` over the task dimension, the definition;
    for a ``GaussianPolicy`` the same numbers come from batched matrix products (``per_task_forward``), which is
    what runs, because a rollout calls the policy 100 times in a row and ``vmap``'s overhead would dominate.
    """
    if not is_per_task(policy, params):
        return functional_call(policy, params, (obs,))
    if isinstance(policy, GaussianPolicy):
        return per_task_forward(policy, params, obs)
    return vmapped_forward(policy, params, obs)


def vmapped_forward(policy: nn.Module, params: Params, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-task forward pass as ``vmap(functional_call)`` over the leading task dimension (the reference)."""
    return vmap(lambda p, o: functional_call(policy, p, (o,)))(params, obs)


def per_task_forward(policy: "GaussianPolicy", params: Params, obs: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """Per-task forward pass of a ``GaussianPolicy`` with batched matrix products: ``obs`` ``(G, ..., obs_dim)``,
    each parameter with a leading ``G``; the same numbers as ``vmapped_forward``."""
    n_tasks, batch_shape = obs.shape[0], obs.shape[1:-1]
    h = obs.reshape(n_tasks, -1, obs.shape[-1])
    for index, layer in enumerate(policy.mean_net):
        if isinstance(layer, nn.Linear):
            weight, bias = params[f"mean_net.{index}.weight"], params[f"mean_net.{index}.bias"]
            h = torch.baddbmm(bias[:, None, :], h, weight.transpose(1, 2))
        else:
            h = layer(h)
    mean = h.reshape(n_tasks, *batch_shape, h.shape[-1])
    log_std = params["log_std"].reshape(n_tasks, *([1] * len(batch_shape)), -1).expand_as(mean)
    return mean, log_std


def gaussian_log_prob(actions: torch.Tensor, mean: torch.Tensor, log_std: torch.Tensor) -> torch.Tensor:
    """log N(actions; mean, diag(exp(log_std))^2), summed over the last (action) dimension."""
    z = (actions - mean) * torch.exp(-log_std)
    return (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


def log_prob(policy: nn.Module, params: Params, obs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """log pi_theta(actions | obs) with ``params`` (differentiable), shape ``obs.shape[:-1]``."""
    mean, log_std = policy_distribution(policy, params, obs)
    return gaussian_log_prob(actions, mean, log_std)
