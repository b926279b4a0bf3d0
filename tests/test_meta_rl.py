"""Policy gradients and the MAML-RL meta-gradient checked against closed forms on a one-step Gaussian bandit.

The bandit: one action a ~ N(mu, sigma^2) (sigma fixed), reward r(a) = -(a - g)^2, so J(mu) = -(mu - g)^2 - sigma^2.
With N samples per task, the inner step is mu' = mu + alpha * mean_i[(a_i - mu) / sigma^2 * r(a_i)], and the
post-adaptation expected return has the closed form (d = mu - g)

    F(mu) = E[J(mu')] = -d^2 (1 - 2 alpha)^2 - alpha^2 / N * (d^4 / sigma^2 + 14 d^2 + 15 sigma^2) - sigma^2,

(using E eps^2 = 1, E eps^4 = 3, E eps^6 = 15), hence the exact meta-gradient
dF/dmu = -2 d (1 - 2 alpha)^2 - alpha^2 / N * (4 d^3 / sigma^2 + 28 d). The package's ``meta_objective`` runs on
this bandit through its ``sampler`` seam; its averaged estimate must match.
"""

import math

import pytest
import torch
from torch import nn

from metalearn_lite import meta_rl
from metalearn_lite.navigation import Trajectories, sample_goals
from metalearn_lite.policy import GaussianPolicy, log_prob, policy_distribution, policy_params
from metalearn_lite.policy_gradient import (advantages, dice_surrogate, fit_linear_baseline, linear_features,
                                            magic_box, reinforce_surrogate, returns_to_go)

SIGMA, GOAL = 0.5, 0.0


class BanditPolicy(nn.Module):
    """pi(a) = N(mean, SIGMA^2), the same for every observation; only ``mean`` is a parameter."""

    def __init__(self, mean: float):
        super().__init__()
        self.mean = nn.Parameter(torch.tensor([mean], dtype=torch.float64))
        self.register_buffer("log_std", torch.tensor([math.log(SIGMA)], dtype=torch.float64))

    def forward(self, obs):
        shape = (*obs.shape[:-1], 1)
        return self.mean.expand(shape), self.log_std.expand(shape)


def bandit_sampler(policy, params, goals, n, generator):
    """One-step episodes of the bandit as ``Trajectories`` (H = 1)."""
    n_goals = goals.shape[0]
    obs = torch.zeros(n_goals, n, 1, 1, dtype=torch.float64)
    with torch.no_grad():
        mean, log_std = policy_distribution(policy, params, obs)
        actions = mean + log_std.exp() * torch.randn(mean.shape, generator=generator, dtype=torch.float64)
    rewards = -(actions[..., 0] - goals[:, None, None, 0]) ** 2
    mask = torch.ones_like(rewards)
    return Trajectories(obs, actions, rewards, mask, log_prob(policy, params, obs, actions), goals)


def exact_meta_gradient(mu, alpha, n):
    d = mu - GOAL
    return -2 * d * (1 - 2 * alpha) ** 2 - alpha ** 2 / n * (4 * d ** 3 / SIGMA ** 2 + 28 * d)


def test_magic_box_is_one_and_differentiates_to_itself():
    x = torch.tensor(0.7, requires_grad=True)
    y = magic_box(2 * x)
    (g,) = torch.autograd.grad(y, x, create_graph=True)
    (h,) = torch.autograd.grad(g, x)
    assert y.item() == 1.0 and g.item() == pytest.approx(2.0) and h.item() == pytest.approx(4.0)


def test_policy_gradient_matches_the_exact_gradient_of_a_gaussian_bandit():
    """E[grad of the surrogate] = grad J: dJ/dmu = -2 (mu - g), dJ/dlog_sigma = -2 sigma^2, per action dim."""
    generator = torch.Generator().manual_seed(0)
    mean = torch.tensor([0.3, -0.2], dtype=torch.float64, requires_grad=True)
    log_std = torch.tensor([math.log(0.5), math.log(0.8)], dtype=torch.float64, requires_grad=True)
    goal = torch.tensor([0.1, 0.1], dtype=torch.float64)
    n = 400_000
    with torch.no_grad():
        actions = mean + log_std.exp() * torch.randn(1, n, 1, 2, generator=generator, dtype=torch.float64)
    rewards = -((actions - goal) ** 2).sum(-1)
    mask = torch.ones_like(rewards)
    for surrogate in (dice_surrogate, reinforce_surrogate):
        log_probs = torch.distributions.Normal(mean, log_std.exp()).log_prob(actions).sum(-1)
        g_mean, g_log_std = torch.autograd.grad(surrogate(log_probs, rewards, mask).sum(), [mean, log_std])
        assert torch.allclose(g_mean, -2 * (mean - goal).detach(), atol=0.01)
        assert torch.allclose(g_log_std, -2 * log_std.detach().exp() ** 2, atol=0.015)


def test_dice_gives_the_right_second_derivative_and_the_plain_surrogate_does_not():
    """d^2 J / dmu^2 = -2; the plain surrogate's Hessian estimates E[r] * (-1 / sigma^2) instead."""
    generator = torch.Generator().manual_seed(1)
    mu = torch.tensor([0.5], dtype=torch.float64, requires_grad=True)
    with torch.no_grad():
        actions = mu + SIGMA * torch.randn(1, 400_000, 1, 1, generator=generator, dtype=torch.float64)
    rewards = -(actions[..., 0] - GOAL) ** 2
    mask = torch.ones_like(rewards)
    hessians = {}
    for surrogate in (dice_surrogate, reinforce_surrogate):
        log_probs = (-0.5 * ((actions - mu) / SIGMA) ** 2).sum(-1)
        (g,) = torch.autograd.grad(surrogate(log_probs, rewards, mask).sum(), mu, create_graph=True)
        (h,) = torch.autograd.grad(g.sum(), mu)
        hessians[surrogate.__name__] = h.item()
    assert hessians["dice_surrogate"] == pytest.approx(-2.0, abs=0.1)
    assert hessians["reinforce_surrogate"] == pytest.approx((0.5 ** 2 + SIGMA ** 2) / SIGMA ** 2, abs=0.05)


@pytest.mark.parametrize("mu", [0.5, -0.3])
def test_the_dice_meta_gradient_is_unbiased_on_the_bandit(mu):
    """The averaged ``meta_objective`` gradient with ``estimator="dice"`` (second order, with the pre-update score
    term) equals dF/dmu; the two others are off by far more than the sampling error."""
    alpha, n, n_tasks = 0.2, 2, 400_000
    policy = BanditPolicy(mu)
    goals = torch.full((n_tasks, 1), GOAL, dtype=torch.float64)
    estimates = {}
    for estimator in meta_rl.ESTIMATORS:
        params = dict(policy.named_parameters())
        objective, _, _ = meta_rl.meta_objective(
            policy, params, goals, torch.Generator().manual_seed(2), inner_lr=alpha, n_trajectories=n,
            baseline="none", normalize=False, estimator=estimator, sampler=bandit_sampler)
        (g,) = torch.autograd.grad(objective, [params["mean"]])
        estimates[estimator] = g.item()
    exact = exact_meta_gradient(mu, alpha, n)
    assert estimates["dice"] == pytest.approx(exact, abs=0.03)
    assert abs(estimates["inner_dice"] - exact) > 0.1 and abs(estimates["no_pre_update"] - exact) > 0.05


def test_returns_to_go_are_discounted_and_stop_at_the_end_of_the_episode():
    rewards = torch.tensor([[[-1.0, -2.0, -3.0, 0.0]]])
    mask = torch.tensor([[[1.0, 1.0, 1.0, 0.0]]])
    assert returns_to_go(rewards, mask, 0.5)[0, 0].tolist() == pytest.approx([-2.75, -3.5, -3.0, 0.0])


def test_linear_baseline_fits_returns_that_are_linear_in_its_features():
    generator = torch.Generator().manual_seed(0)
    obs = torch.randn(2, 5, 7, 2, generator=generator, dtype=torch.float64)
    features = linear_features(obs)
    weights = torch.randn(2, 1, 1, features.shape[-1], generator=generator, dtype=torch.float64)
    targets = (features * weights).sum(-1)
    mask = torch.ones_like(targets)
    mask[:, :, 5:] = 0
    fitted = fit_linear_baseline(obs, targets, mask)
    assert torch.allclose(fitted, targets * mask, rtol=1e-3, atol=1e-3)


def test_normalised_advantages_have_mean_zero_and_unit_std_per_task():
    policy = GaussianPolicy()
    traj = meta_rl.rollout(policy, policy_params(policy), sample_goals(3, torch.Generator().manual_seed(0)), 5,
                           torch.Generator().manual_seed(1), horizon=20)
    adv = advantages(traj)
    count = traj.mask.sum((1, 2))
    assert torch.allclose(adv.sum((1, 2)) / count, torch.zeros(3), atol=1e-5)
    assert torch.allclose((adv ** 2).sum((1, 2)) / count, torch.ones(3), atol=1e-4)


def test_adapt_returns_the_curve_and_per_goal_params_seeded():
    policy = meta_rl.random_policy(0)
    goals = sample_goals(3, torch.Generator().manual_seed(0))
    a = meta_rl.adapt(policy, policy_params(policy), goals, 2, 0.1, 4, torch.Generator().manual_seed(1), horizon=10)
    b = meta_rl.adapt(policy, policy_params(policy), goals, 2, 0.1, 4, torch.Generator().manual_seed(1), horizon=10)
    assert a.returns.shape == (3, 3) and torch.equal(a.returns, b.returns)
    assert a.params["log_std"].shape == (3, 2) and not a.params["log_std"].requires_grad


def test_meta_step_and_pretrain_step_change_the_weights():
    for step in (meta_rl.meta_step, meta_rl.pretrain_step):
        policy = meta_rl.random_policy(0)
        before = {k: v.clone() for k, v in policy.state_dict().items()}
        optimizer = torch.optim.Adam(policy.parameters(), lr=1e-3)
        goals = sample_goals(2, torch.Generator().manual_seed(0))
        result = step(policy, optimizer, goals, torch.Generator().manual_seed(1), n_trajectories=3, horizon=10)
        assert math.isfinite(result.pre_return) and math.isfinite(result.post_return)
        assert any(not torch.equal(before[k], v) for k, v in policy.state_dict().items())


def test_random_policy_is_seeded_and_leaves_the_global_generator_alone():
    state = torch.random.get_rng_state()
    a, b = meta_rl.random_policy(3), meta_rl.random_policy(3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))


@pytest.mark.parametrize("kwargs, name", [
    ({"inner_lr": -0.1}, "inner_lr"), ({"inner_steps": -1}, "inner_steps"), ({"n_trajectories": 1}, "n_trajectories"),
    ({"discount": 1.5}, "discount"), ({"baseline": "value"}, "baseline"), ({"horizon": 0}, "horizon"),
])
def test_bad_settings_name_the_parameter(kwargs, name):
    policy = GaussianPolicy()
    goals = sample_goals(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=name):
        meta_rl.adapt(policy, policy_params(policy), goals, **kwargs)
    with pytest.raises(ValueError, match=name):
        meta_rl.meta_objective(policy, dict(policy.named_parameters()), goals, **kwargs)


def test_an_unknown_estimator_is_named():
    policy = GaussianPolicy()
    with pytest.raises(ValueError, match="estimator"):
        meta_rl.meta_objective(policy, dict(policy.named_parameters()), torch.zeros(2, 2), estimator="trpo")


def test_per_step_inner_lrs_must_match_the_steps():
    policy = GaussianPolicy()
    goals = sample_goals(2, torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="inner_lr"):
        meta_rl.adapt(policy, policy_params(policy), goals, inner_steps=3, inner_lr=(0.5, 0.25))
    curve = meta_rl.adapt(policy, policy_params(policy), goals, 2, (0.5, 0.25), 2, torch.Generator().manual_seed(0),
                          horizon=5)
    assert curve.returns.shape == (2, 3)
