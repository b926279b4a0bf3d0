"""Score-function (REINFORCE) policy-gradient estimators, written so that their *derivatives* are right too (DiCE).

For a policy pi_theta and trajectories tau, grad_theta E[R(tau)] = E[ sum_t grad log pi_theta(a_t|s_t) A_t ]
(Williams, 1992), with the advantage A_t = R_t - b(s_t): the discounted reward-to-go minus a baseline, which keeps
the estimate unbiased and lowers its variance. The baseline here is rllab's ``LinearFeatureBaseline``, the one of
MAML's RL experiments (cbfinn/maml_rl): a ridge regression, fitted per task on that task's trajectories, of the
returns-to-go on the features (s, s^2, t/100, (t/100)^2, (t/100)^3, 1), observations clipped to [-10, 10],
regularisation 1e-5. (rllab fits it on the batch and predicts on the same batch, as we do.)

MAML differentiates *through* a policy-gradient step, so the surrogate whose gradient is the policy gradient must
also have the right second derivative. The usual surrogate ``mean(log pi * A)`` does not: its Hessian misses the
term ``E[grad log pi grad log pi^T R]`` that comes from the trajectories' distribution depending on theta. DiCE
(Foerster et al., 2018, "DiCE: The Infinitely Differentiable Monte Carlo Estimator") fixes this with the "magic box"
``box(x) = exp(x - stop_gradient(x))``: value 1, derivative ``box(x) * dx``. ``dice_surrogate`` is the DiCE
objective in its advantage form (Farquhar et al., 2019, "Loaded DiCE"; the baseline term of Mao et al., 2019):

    L = sum_t (box(S_t) - box(S_{t-1})) A_t,    S_t = sum_{t' <= t} log pi(a_t' | s_t'),

whose value is 0, whose gradient is the policy gradient sum_t grad log pi_t A_t and whose higher derivatives are
unbiased estimates of those of the expected return (for advantages built from fixed baselines).
"""

from __future__ import annotations

import torch

from .navigation import Trajectories
from .validation import require_choice, require_float

BASELINES = ("linear", "mean", "none")


def magic_box(x: torch.Tensor) -> torch.Tensor:
    """DiCE's magic box ``exp(x - x.detach())``: equals 1, and its derivative is itself times ``dx``."""
    return torch.exp(x - x.detach())


def returns_to_go(rewards: torch.Tensor, mask: torch.Tensor, discount: float = 0.99) -> torch.Tensor:
    """Discounted reward-to-go ``R_t = sum_{t' >= t} discount^(t'-t) r_t'`` along the last dimension (time); 0 where
    ``mask`` is 0. rllab's default discount is 0.99."""
    discount = require_float("discount", discount, minimum=0.0, maximum=1.0)
    running = torch.zeros_like(rewards[..., 0])
    out = []
    for t in range(rewards.shape[-1] - 1, -1, -1):
        running = rewards[..., t] + discount * running
        out.append(running)
    return torch.stack(out[::-1], -1) * mask


def linear_features(observations: torch.Tensor) -> torch.Tensor:
    """rllab's ``LinearFeatureBaseline`` features ``(s, s^2, t/100, (t/100)^2, (t/100)^3, 1)``, ``(..., H, 2d+4)``."""
    obs = observations.clamp(-10, 10)
    horizon = obs.shape[-2]
    t = (torch.arange(horizon, dtype=obs.dtype) / 100.0).reshape(horizon, 1).expand(*obs.shape[:-1], 1)
    return torch.cat([obs, obs ** 2, t, t ** 2, t ** 3, torch.ones_like(t)], -1)


def fit_linear_baseline(observations: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor,
                        reg: float = 1e-5) -> torch.Tensor:
    """Fit the linear feature baseline per task (first dimension) and return its predictions, shaped like
    ``targets`` ``(G, N, H)``. Ridge regression ``(X^T X + reg I) w = X^T y`` over the steps where ``mask`` is 1,
    solved in float64 (rllab: ``reg_coeff=1e-5``)."""
    reg = require_float("reg", reg, positive=True)
    n_goals = targets.shape[0]
    X = (linear_features(observations) * mask[..., None]).reshape(n_goals, -1, observations.shape[-1] * 2 + 4)
    y = (targets * mask).reshape(n_goals, -1, 1)
    X64, y64 = X.double(), y.double()
    eye = torch.eye(X.shape[-1], dtype=torch.float64)
    w = torch.linalg.solve(X64.transpose(1, 2) @ X64 + reg * eye, X64.transpose(1, 2) @ y64)
    return (X64 @ w).reshape(targets.shape).to(targets.dtype) * mask


def advantages(trajectories: Trajectories, discount: float = 0.99, baseline: str = "linear",
               normalize: bool = True) -> torch.Tensor:
    """Advantages ``A_t = R_t - b_t`` ``(G, N, H)``, constants (no graph), 0 after a trajectory ended.

    ``baseline``: ``"linear"`` (rllab's linear feature baseline, fitted per task), ``"mean"`` (the mean
    return-to-go of the task's trajectories at the same time step) or ``"none"``. ``normalize``: standardise per
    task to mean 0 and standard deviation 1 over its valid steps (rllab's ``center_adv=True``, the authors' setting).
    """
    baseline = require_choice("baseline", baseline, BASELINES)
    mask = trajectories.mask
    with torch.no_grad():
        targets = returns_to_go(trajectories.rewards, mask, discount)
        if baseline == "linear":
            values = fit_linear_baseline(trajectories.observations, targets, mask)
        elif baseline == "mean":
            values = (targets.sum(1, keepdim=True) / mask.sum(1, keepdim=True).clamp(min=1)) * mask
        else:
            values = torch.zeros_like(targets)
        adv = (targets - values) * mask
        if normalize:
            count = mask.sum((1, 2), keepdim=True).clamp(min=1)
            mean = adv.sum((1, 2), keepdim=True) / count
            var = (((adv - mean) * mask) ** 2).sum((1, 2), keepdim=True) / count
            adv = (adv - mean) / (var.sqrt() + 1e-8) * mask
    return adv


def dice_surrogate(log_probs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The DiCE surrogate per task, ``(G,)``: ``sum_{n,t} (box(S_t) - box(S_{t-1})) A_t`` / (number of valid steps).

    ``log_probs``, ``advantages``, ``mask``: ``(G, N, H)``. The value is 0; the gradient is the policy gradient of
    the task (mean over its valid steps, as rllab's surrogate); higher derivatives are DiCE's (module docstring).
    """
    cumulative = torch.cumsum(log_probs * mask, -1)
    previous = torch.cat([torch.zeros_like(cumulative[..., :1]), cumulative[..., :-1]], -1)
    weights = (magic_box(cumulative) - magic_box(previous)) * mask
    return (weights * advantages).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)


def reinforce_surrogate(log_probs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The plain surrogate ``mean(log pi * A)`` per task ``(G,)``: the same gradient as ``dice_surrogate``, but a
    wrong second derivative (the contrast the lesson draws)."""
    return (log_probs * advantages * mask).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)
