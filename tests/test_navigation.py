"""The batched 2-D navigation environment (MAML paper, section 5.3) and the Gaussian policy: dynamics, clipping,
reward and termination on hand-made cases, the batched rollout against a plain Python loop, and bad inputs."""

import math

import pytest
import torch

from metalearn_lite import navigation
from metalearn_lite.navigation import PointEnv, env_step, rollout, sample_goals
from metalearn_lite.policy import (GaussianPolicy, is_per_task, per_task_forward, policy_distribution,
                                   policy_params, vmapped_forward)


def constant_policy(direction, log_std=-30.0, dtype=torch.float64):
    """A policy whose mean is ``direction`` everywhere and (almost) no noise."""
    policy = GaussianPolicy().to(dtype)
    with torch.no_grad():
        for p in policy.parameters():
            p.zero_()
        policy.mean_net[-1].bias.copy_(torch.tensor(direction, dtype=dtype))
        policy.log_std.fill_(log_std)
    return policy


def test_a_step_moves_by_the_rescaled_clipped_action_and_rewards_minus_the_distance():
    state, goal = torch.tensor([0.0, 0.0]), torch.tensor([0.3, 0.4])
    # policy units: 0.5 -> 0.05, 3 -> 0.3 clipped to 0.1
    next_state, reward, reached = env_step(state, torch.tensor([0.5, 3.0]), goal)
    assert torch.allclose(next_state, torch.tensor([0.05, 0.1]))
    assert reward.item() == pytest.approx(-math.hypot(0.25, 0.3), abs=1e-6)   # Euclidean, not squared
    assert not reached.item()
    next_state, _, _ = env_step(state, torch.tensor([-7.0, -0.2]), goal, action_scale=1.0)   # raw moves, clipped
    assert torch.allclose(next_state, torch.tensor([-0.1, -0.1]))


def test_the_goal_is_reached_within_0_01_in_each_coordinate():
    goal = torch.tensor([0.1, 0.1])
    starts = torch.tensor([[0.091, 0.091], [0.089, 0.1], [0.1, 0.111]])
    _, _, reached = env_step(starts, torch.zeros(3, 2), goal)
    assert reached.tolist() == [True, False, False]


def test_an_episode_ends_at_the_goal_and_collects_no_reward_after():
    policy = constant_policy([10.0, 0.0])             # full speed along x
    goals = torch.tensor([[0.3, 0.0]], dtype=torch.float64)
    traj = rollout(policy, policy_params(policy), goals, n_trajectories=2, generator=torch.Generator().manual_seed(0),
                   horizon=6)
    assert traj.mask[0, 0].tolist() == [1, 1, 1, 0, 0, 0]
    assert traj.rewards[0, 0].tolist() == pytest.approx([-0.2, -0.1, 0.0, 0.0, 0.0, 0.0], abs=1e-9)
    assert traj.observations[0, 0, :3, 0].tolist() == pytest.approx([0.0, 0.1, 0.2])
    assert traj.returns()[0].tolist() == pytest.approx([-0.3, -0.3])
    assert (traj.log_probs[0, :, 3:] == 0).all()


def test_batched_rollout_equals_a_python_loop_over_goals_and_trajectories():
    torch.manual_seed(0)
    policy = GaussianPolicy().double()
    with torch.no_grad():
        policy.log_std.fill_(-1.0)                    # some episodes reach their goal, others do not
    goals = sample_goals(3, torch.Generator().manual_seed(1)).double()
    goals[0] = torch.tensor([0.02, -0.03], dtype=torch.float64)   # close to the start: reached early
    noise = torch.randn(3, 4, 30, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    traj = rollout(policy, policy_params(policy), goals, 4, horizon=30, noise=noise)
    for g in range(3):
        for n in range(4):
            env = PointEnv(goals[g].tolist())
            obs, total, steps = env.reset(), 0.0, 0
            for t in range(30):
                with torch.no_grad():
                    mean, log_std = policy(torch.tensor(obs, dtype=torch.float64))
                action = mean + log_std.exp() * noise[g, n, t]
                assert traj.observations[g, n, t].tolist() == pytest.approx(list(obs), abs=1e-12)
                assert traj.actions[g, n, t].tolist() == pytest.approx(action.tolist(), abs=1e-12)
                obs, reward, done = env.step(action.tolist())
                assert traj.rewards[g, n, t].item() == pytest.approx(reward, abs=1e-12)
                total, steps = total + reward, steps + 1
                if done:
                    break
            assert traj.mask[g, n].sum().item() == steps
            assert traj.returns()[g, n].item() == pytest.approx(total, abs=1e-10)
    assert traj.mask[0].sum() < traj.mask[1:].sum() / 2   # the near goal was reached


def test_log_probs_are_those_of_the_policy_samples_and_differentiable():
    torch.manual_seed(0)
    policy = GaussianPolicy()
    params = {k: v.requires_grad_() for k, v in policy_params(policy).items()}
    goals = sample_goals(2, torch.Generator().manual_seed(0))
    traj = rollout(policy, params, goals, 3, torch.Generator().manual_seed(1), horizon=5)
    mean, log_std = policy(traj.observations)
    expected = torch.distributions.Normal(mean, log_std.exp()).log_prob(traj.actions).sum(-1) * traj.mask
    assert torch.allclose(traj.log_probs, expected, atol=1e-5)
    grads = torch.autograd.grad(traj.log_probs.sum(), list(params.values()))
    assert all(torch.isfinite(g).all() for g in grads)


def test_rollouts_are_seeded():
    policy = GaussianPolicy()
    goals = sample_goals(2, torch.Generator().manual_seed(0))
    a = rollout(policy, policy_params(policy), goals, 3, torch.Generator().manual_seed(5), horizon=10)
    b = rollout(policy, policy_params(policy), goals, 3, torch.Generator().manual_seed(5), horizon=10)
    assert torch.equal(a.actions, b.actions) and torch.equal(a.rewards, b.rewards)


def test_goals_are_uniform_in_the_square_and_seeded():
    goals = sample_goals(2000, torch.Generator().manual_seed(0))
    assert goals.shape == (2000, 2) and goals.min() >= -0.5 and goals.max() <= 0.5
    assert goals.mean(0).abs().max() < 0.03
    assert torch.equal(goals[:5], sample_goals(5, torch.Generator().manual_seed(0)))


def test_per_task_forward_equals_vmap_of_functional_call():
    torch.manual_seed(0)
    policy = GaussianPolicy()
    params = {k: v + 0.1 * torch.randn(3, *v.shape) for k, v in policy_params(policy).items()}
    obs = torch.randn(3, 4, 5, 2)
    assert is_per_task(policy, params) and not is_per_task(policy, policy_params(policy))
    for fast, reference in zip(per_task_forward(policy, params, obs), vmapped_forward(policy, params, obs)):
        assert torch.allclose(fast, reference, atol=1e-6)
    assert torch.allclose(policy_distribution(policy, params, obs)[0], vmapped_forward(policy, params, obs)[0],
                          atol=1e-6)


def test_the_policy_is_the_papers_network():
    policy = GaussianPolicy()
    shapes = {k: tuple(v.shape) for k, v in policy.named_parameters()}
    assert shapes == {"mean_net.0.weight": (100, 2), "mean_net.0.bias": (100,), "mean_net.2.weight": (100, 100),
                      "mean_net.2.bias": (100,), "mean_net.4.weight": (2, 100), "mean_net.4.bias": (2,),
                      "log_std": (2,)}
    assert torch.equal(policy.log_std, torch.zeros(2))   # rllab's init_std = 1


@pytest.mark.parametrize("call, name", [
    (lambda p, g: rollout(p, policy_params(p), g, 0), "n_trajectories"),
    (lambda p, g: rollout(p, policy_params(p), g, 2, horizon=0), "horizon"),
    (lambda p, g: rollout(p, policy_params(p), g, 2, action_bound=-1.0), "action_bound"),
    (lambda p, g: rollout(p, policy_params(p), g[0], 2), "goals"),
    (lambda p, g: rollout(p, policy_params(p), g, 2, horizon=3, noise=torch.zeros(2, 2, 4, 2)), "noise"),
    (lambda p, g: rollout(p, {"log_std": p.log_std}, g, 2), "params"),
    (lambda p, g: sample_goals(0), "n_goals"),
    (lambda p, g: sample_goals(3, low=0.5, high=0.1), "high"),
    (lambda p, g: GaussianPolicy(hidden=(100, 0)), "hidden"),
    (lambda p, g: GaussianPolicy(init_std=0.0), "init_std"),
])
def test_bad_inputs_name_the_parameter(call, name):
    policy, goals = GaussianPolicy(), torch.zeros(2, 2)
    with pytest.raises(ValueError, match=name):
        call(policy, goals)


def test_paper_settings_are_the_defaults():
    assert navigation.PAPER_SETTINGS == {"goal_low": -0.5, "goal_high": 0.5, "action_bound": 0.1,
                                         "action_scale": 0.1, "horizon": 100, "goal_tolerance": 0.01}
