"""The 2-D navigation task family of MAML's reinforcement-learning experiments (Finn, Abbeel & Levine, 2017,
section 5.3 and appendix A.2), as one batched tensor environment over tasks x trajectories x time.

A point agent starts at the origin; each task is a goal drawn uniformly from the square [-0.5, 0.5]^2. An action
moves the agent, ``s_{t+1} = s_t + clip(a_t, -0.1, 0.1)``, for at most ``horizon = 100`` steps. The observation is
the position only, so the goal has to be inferred from rewards: that is what adaptation is for.

What we follow, checked in the authors' code (cbfinn/maml_rl, ``maml_examples/point_env_randgoal.py``):
- **Reward**: the *negative Euclidean distance* to the goal after the move, ``r_t = -||s_{t+1} - g||``. The
  paper's text (appendix A.2) says "the negative squared distance"; the code, which made the paper's numbers,
  takes the square root. We follow the code.
- **Termination**: the code ends an episode (``done``) when the agent is within 0.01 of the goal *in each
  coordinate* (``|dx| < 0.01 and |dy| < 0.01``, a small square, not a disc), and rllab's sampler then stops that
  path: later steps give no reward. We follow the code: a trajectory that reaches the goal stops collecting
  (negative) rewards, which is why good returns are as small as about -3 in the paper's figure.
- **Action units**: the policy acts in rllab's normalised units (``normalize(env)``): an action ``a`` in [-1, 1]
  becomes ``0.1 * a``, clipped to the action box [-0.1, 0.1]. ``action_scale=0.1`` does this rescaling; with
  ``action_scale=1`` the environment takes raw moves, clipped to ``action_bound``. The log-probabilities are those of
  the unclipped policy sample, as in rllab.

``rollout`` runs a policy on ``n_goals`` goals with ``n_trajectories`` each, all at once: every step is one tensor
operation over ``(n_goals, n_trajectories)``; the log-probabilities are computed afterwards in one batched pass, and
they carry the autograd graph of the policy's parameters (the policy-gradient and DiCE objectives need it).
``PointEnv`` is the same task as a plain one-goal Python object (reset/step), the reference the tests and the speed
benchmark compare the batched environment with.
"""

from __future__ import annotations

import math
from typing import NamedTuple, Optional, Tuple

import torch
from torch import nn

from .policy import Params, log_prob, policy_distribution
from .validation import require_float, require_int

PAPER_SETTINGS = {"goal_low": -0.5, "goal_high": 0.5, "action_bound": 0.1, "action_scale": 0.1, "horizon": 100,
                  "goal_tolerance": 0.01}
"""The task family's constants (paper section 5.3 / appendix A.2 and the authors' ``PointEnvRandGoal``)."""


class Trajectories(NamedTuple):
    """A batch of rollouts, ``G`` goals x ``N`` trajectories x ``H`` time steps.

    ``observations`` ``(G, N, H, 2)``: the position *before* each action (the first is the origin).
    ``actions`` ``(G, N, H, 2)``: the policy's samples, unclipped, in the policy's units.
    ``rewards`` ``(G, N, H)``: ``-||s_{t+1} - g||``, 0 after the goal was reached.
    ``mask`` ``(G, N, H)``: 1.0 for the steps that were taken (up to and including the one that reached the goal),
    0.0 after. ``log_probs`` ``(G, N, H)``: log pi(a_t | s_t), differentiable in the policy's parameters, 0 where
    ``mask`` is 0. ``goals`` ``(G, 2)``.
    """

    observations: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    mask: torch.Tensor
    log_probs: torch.Tensor
    goals: torch.Tensor

    def returns(self) -> torch.Tensor:
        """Undiscounted return of each trajectory, ``(G, N)`` (what the paper reports, averaged)."""
        return self.rewards.sum(-1)


def sample_goals(n_goals: int, generator: Optional[torch.Generator] = None, low: float = -0.5,
                 high: float = 0.5) -> torch.Tensor:
    """``n_goals`` goals uniform in ``[low, high]^2`` (paper: [-0.5, 0.5]^2), shape ``(n_goals, 2)``."""
    n_goals = require_int("n_goals", n_goals, minimum=1)
    low, high = require_float("low", low), require_float("high", high)
    if high <= low:
        raise ValueError(f"high must be a number > low ({low}), got {high}")
    return low + (high - low) * torch.rand(n_goals, 2, generator=generator)


def env_step(state: torch.Tensor, action: torch.Tensor, goal: torch.Tensor, action_bound: float = 0.1,
             action_scale: float = 0.1, goal_tolerance: float = 0.01) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One move of the point agent: ``(next_state, reward, reached)`` for any batch shape ``(..., 2)``.

    ``next_state = state + clip(action_scale * action, -action_bound, action_bound)``, ``reward = -||next - goal||``,
    ``reached``: within ``goal_tolerance`` of the goal in both coordinates (the authors' ``done``).
    """
    move = torch.clamp(action_scale * action, -action_bound, action_bound)
    next_state = state + move
    offset = next_state - goal
    reward = -torch.linalg.vector_norm(offset, dim=-1)
    reached = (offset.abs() < goal_tolerance).all(-1)
    return next_state, reward, reached


def check_env_settings(horizon: int, action_bound: float, action_scale: float, goal_tolerance: float) -> tuple:
    """The environment settings, checked (ValueError naming the parameter)."""
    return (require_int("horizon", horizon, minimum=1), require_float("action_bound", action_bound, positive=True),
            require_float("action_scale", action_scale, positive=True),
            require_float("goal_tolerance", goal_tolerance, minimum=0.0))


def rollout(policy: nn.Module, params: Params, goals: torch.Tensor, n_trajectories: int = 20,
            generator: Optional[torch.Generator] = None, horizon: int = 100, action_bound: float = 0.1,
            action_scale: float = 0.1, goal_tolerance: float = 0.01,
            noise: Optional[torch.Tensor] = None) -> Trajectories:
    """Roll out the Gaussian policy with ``params`` for ``n_trajectories`` episodes on each goal; all at once.

    Parameters
    ----------
    policy: a ``GaussianPolicy`` (used functionally); params: its parameters, shared by all goals or one set per
        goal (a leading dimension of size ``len(goals)``, e.g. after adaptation).
    goals: ``(G, 2)``.
    generator: seeds the action noise. ``noise``: the standard-normal draws themselves, ``(G, N, horizon, 2)``,
        instead (the tests replay them in a Python loop); action ``a_t = mean + exp(log_std) * noise_t``.

    Returns ``Trajectories`` (shapes there). Sampling runs without autograd; the log-probabilities are then computed
    in one batched forward pass, with the graph of ``params`` when they require gradients.
    """
    n_trajectories = require_int("n_trajectories", n_trajectories, minimum=1)
    horizon, action_bound, action_scale, goal_tolerance = check_env_settings(horizon, action_bound, action_scale,
                                                                             goal_tolerance)
    goals = _check_goals(goals)
    n_goals = goals.shape[0]
    shape = (n_goals, n_trajectories, horizon, 2)
    if noise is None:
        noise = torch.randn(shape, generator=generator, dtype=goals.dtype)
    elif tuple(noise.shape) != shape:
        raise ValueError(f"noise must have shape {shape} (goals, trajectories, horizon, 2), got {tuple(noise.shape)}")
    goal = goals[:, None, :]
    state = torch.zeros(n_goals, n_trajectories, 2, dtype=goals.dtype)
    alive = torch.ones(n_goals, n_trajectories, dtype=torch.bool)
    observations, actions, rewards, masks = [], [], [], []
    with torch.no_grad():
        for t in range(horizon):
            mean, log_std = policy_distribution(policy, params, state)
            action = mean + torch.exp(log_std) * noise[:, :, t]
            next_state, reward, reached = env_step(state, action, goal, action_bound, action_scale, goal_tolerance)
            observations.append(state)
            actions.append(action)
            rewards.append(torch.where(alive, reward, torch.zeros_like(reward)))
            masks.append(alive)
            state = torch.where(alive[..., None], next_state, state)
            alive = alive & ~reached
    observations, actions = torch.stack(observations, 2), torch.stack(actions, 2)
    mask = torch.stack(masks, 2).to(goals.dtype)
    log_probs = log_prob(policy, params, observations.reshape(n_goals, -1, 2), actions.reshape(n_goals, -1, 2))
    return Trajectories(observations, actions, torch.stack(rewards, 2), mask,
                        log_probs.reshape(n_goals, n_trajectories, horizon) * mask, goals)


def _check_goals(goals) -> torch.Tensor:
    if not isinstance(goals, torch.Tensor) or goals.dim() != 2 or goals.shape[1] != 2 or goals.shape[0] < 1:
        shape = tuple(goals.shape) if isinstance(goals, torch.Tensor) else type(goals).__name__
        raise ValueError(f"goals must be a tensor of shape (n_goals, 2) with n_goals >= 1 (e.g. sample_goals), "
                         f"got {shape}")
    if not goals.is_floating_point():
        raise ValueError(f"goals must hold floating-point numbers, got dtype {goals.dtype}")
    return goals


class PointEnv:
    """The same task for one goal as a plain Python object (``reset``/``step``, floats), like the authors'
    ``PointEnvRandGoal`` behind rllab's ``normalize``: the reference for tests and the speed benchmark."""

    def __init__(self, goal: Tuple[float, float], action_bound: float = 0.1, action_scale: float = 0.1,
                 goal_tolerance: float = 0.01):
        self.goal = (float(goal[0]), float(goal[1]))
        self.action_bound, self.action_scale, self.goal_tolerance = action_bound, action_scale, goal_tolerance
        self.state = (0.0, 0.0)

    def reset(self) -> Tuple[float, float]:
        """Back to the origin; returns the observation."""
        self.state = (0.0, 0.0)
        return self.state

    def step(self, action: Tuple[float, float]) -> Tuple[Tuple[float, float], float, bool]:
        """``(observation, reward, done)`` after moving by the clipped, rescaled ``action``."""
        bound = self.action_bound
        dx = min(max(self.action_scale * float(action[0]), -bound), bound)
        dy = min(max(self.action_scale * float(action[1]), -bound), bound)
        self.state = (self.state[0] + dx, self.state[1] + dy)
        ox, oy = self.state[0] - self.goal[0], self.state[1] - self.goal[1]
        done = abs(ox) < self.goal_tolerance and abs(oy) < self.goal_tolerance
        return self.state, -math.sqrt(ox * ox + oy * oy), done
