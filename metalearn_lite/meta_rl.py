"""MAML for reinforcement learning (Finn, Abbeel & Levine, 2017, section 5.3): policy-gradient inner steps and the
meta-gradient through them, on the 2-D navigation task family (``navigation.py``).

For a task (a goal) the inner loop samples ``n_trajectories`` episodes with the current policy and takes one
policy-gradient ascent step, ``theta' = theta + inner_lr * grad J_hat(theta)`` (paper: 20 trajectories,
inner_lr = 0.1; the authors' released script uses 0.5). The meta-objective is the expected return of the adapted
policy, estimated from fresh episodes of theta', averaged over a batch of tasks.

The meta-gradient is second order and *exact in expectation* for what MAML actually optimises with a finite
batch of episodes, F(theta) = E_{tau ~ pi_theta}[ J(theta + inner_lr * g_hat(theta, tau)) ], where g_hat is the
policy-gradient estimate from the pre-update episodes tau. theta influences the post-update return in three ways:
through the post-update episodes (sampled from pi_theta'), through the formula of g_hat (its explicit dependence on
theta) and through the pre-update episodes' distribution. DiCE (Foerster et al., 2018) turns every stochastic node
into a magic box ``box(log pi)`` so that automatic differentiation of one surrogate gets all three, to any order:
``estimator="dice"`` (the default) is DiCE applied to this whole two-level computation, i.e. the post-update
DiCE surrogate plus ``(box(log pi_theta(tau_pre)) - 1) (R' - b)``, whose value is 0 and whose gradient is the
pre-update score term E[J(theta') grad log pi_theta(tau_pre)] (``b``: the leave-one-out mean post-update return of
the other tasks, which keeps it unbiased and lowers its variance). In this composition the inner step is the
*actual* estimator g_hat (the gradient of the plain surrogate): a DiCE surrogate there as well would count the
pre-update episodes' dependence twice. ``tests/test_meta_rl.py`` checks the averaged estimate against the closed
form of a one-step Gaussian bandit.

The alternatives, for the lesson's comparison: ``"inner_dice"`` differentiates through a DiCE surrogate in the
inner step (whose Hessian is unbiased for that of the expected return) and boxes only the post-update episodes:
right to first order in ``inner_lr``, biased with few episodes (the bandit test shows by how much);
``"no_pre_update"`` drops the pre-update term altogether, the estimator of the authors' code (they differentiate
the plain surrogate, so the term from the pre-update episodes' distribution is missing; Rothfuss et al., 2019,
ProMP, discuss this).

Deviations from the paper, on purpose:
- The outer optimiser is **Adam** on the meta-gradient (``meta_step``), not TRPO (the paper and code: TRPO with a
  KL step size of 0.01, meta-batch 20 in the paper, 40 in the released script).
- Each task's advantages are standardised (rllab's ``center_adv``, as the authors' code) and use rllab's linear
  feature baseline fitted on the same episodes; both are batch statistics treated as constants, which makes the
  estimator very slightly biased (the unbiasedness tests use ``baseline="none", normalize=False``).

- The shipped MAML policy (README, Checkpoints) was trained with ``estimator="no_pre_update"`` and inner step 0.5
  (the authors' script's value; the paper's text says 0.1): in 700-800 Adam steps the unbiased ``"dice"`` estimator
  learned far less (its pre-update score term multiplies a sum of 2,000 score terms by a return difference between
  goals, a high-variance product), and 0.1 barely adapted in the steps we could afford. Its Adam rate for the
  policy's log std is 1e-2, ten times the mean network's: at one rate the spread stayed near its initial value
  (``experiments.navigation.make_optimizer``; docs/navigation-training.md).

Baselines of the lesson: ``pretrain_step`` trains a policy by ordinary policy gradient (Adam) on goals sampled fresh
every step (the paper's "pretrained on all goals"); ``random_policy`` is a freshly initialised one.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Optional

import torch
from torch import nn

from .navigation import Trajectories, check_env_settings, rollout
from .policy import GaussianPolicy, Params, is_per_task, log_prob, policy_params
from .policy_gradient import (BASELINES, advantages, dice_surrogate, magic_box, reinforce_surrogate,
                              returns_to_go)
from .validation import require_choice, require_float, require_int

PAPER_SETTINGS = {"inner_lr": 0.1, "inner_steps": 1, "n_trajectories": 20, "meta_batch_size": 20, "horizon": 100,
                  "discount": 0.99}
"""MAML's 2-D navigation settings (paper section 5.3 / appendix A.2; rllab's discount 0.99)."""

PAPER_TABLE = {"maml": {0: -40.41, 1: -11.68, 2: -3.33, 3: -3.23}}
"""Average return after 0, 1, 2, 3 policy-gradient steps on new goals, MAML (the paper's 2-D navigation result)."""

AUTHORS_TEST_INNER_LRS = (0.5, 0.25, 0.25)
"""The step sizes of the authors' 2-D navigation evaluation (cbfinn/maml_rl ``test_maml_point.py``: a first
policy-gradient step of 0.5 (``init_learning_rate``), then 0.25 (``learning_rate = 0.5 * step_size``))."""

EVAL_SEED = 2017
"""The seed of the fixed evaluation goals and episodes (``evaluate``)."""


class RLAdaptation(NamedTuple):
    """Adaptation to a batch of goals: ``returns`` ``(G, inner_steps + 1)``, the mean return of each goal's episodes
    after 0, 1, ... steps; ``params``: the adapted parameters, one set per goal (leading dimension G)."""

    returns: torch.Tensor
    params: Params


class MetaStepResult(NamedTuple):
    """What one training step saw: mean return before adaptation and after it (``post_return``)."""

    pre_return: float
    post_return: float


ESTIMATORS = ("dice", "inner_dice", "no_pre_update")
"""How ``meta_objective`` differentiates through the inner step (module docstring)."""

SURROGATES = {"reinforce": reinforce_surrogate, "dice": dice_surrogate}

Sampler = Callable[[nn.Module, Params, torch.Tensor, int, Optional[torch.Generator]], Trajectories]
"""``sampler(policy, params, goals, n_trajectories, generator) -> Trajectories``: the environment seam."""


def _navigation_sampler(horizon: int) -> Sampler:
    horizon = check_env_settings(horizon, 0.1, 0.1, 0.01)[0]
    return lambda policy, params, goals, n, generator: rollout(policy, params, goals, n, generator, horizon)


def check_inner_settings(inner_lr: float, inner_steps: int, n_trajectories: int, discount: float,
                         baseline: str) -> tuple:
    """The inner loop's settings, checked (ValueError naming the parameter and the allowed range)."""
    return (require_float("inner_lr", inner_lr, minimum=0.0), require_int("inner_steps", inner_steps, minimum=0),
            require_int("n_trajectories", n_trajectories, minimum=2),
            require_float("discount", discount, minimum=0.0, maximum=1.0),
            require_choice("baseline", baseline, BASELINES))


def per_task(policy: nn.Module, params: Params, n_goals: int) -> Params:
    """``params`` with a leading task dimension of size ``n_goals`` (shared ones are expanded: no copy, and the
    gradient with respect to each task's slice is that task's own)."""
    if is_per_task(policy, params):
        return dict(params)
    return {name: p.expand(n_goals, *p.shape) for name, p in params.items()}


def inner_update(policy: nn.Module, params: Params, trajectories: Trajectories, inner_lr: float = 0.1,
                 discount: float = 0.99, baseline: str = "linear", normalize: bool = True,
                 create_graph: bool = False, surrogate: str = "reinforce") -> Params:
    """One policy-gradient ascent step per task: ``theta_g + inner_lr * grad L_dice(tau_g)``.

    ``params`` are per task (leading dimension G) and ``trajectories.log_probs`` must have been computed from them
    (``rollout`` does this). ``create_graph``: keep the graph of the step (the meta-gradient needs it).
    """
    adv = advantages(trajectories, discount, baseline, normalize)
    objective = SURROGATES[require_choice("surrogate", surrogate, tuple(SURROGATES))]
    total = objective(trajectories.log_probs, adv, trajectories.mask).sum()
    names = list(params)
    grads = torch.autograd.grad(total, [params[n] for n in names], create_graph=create_graph)
    return {n: params[n] + inner_lr * g for n, g in zip(names, grads)}


def adapt(policy: nn.Module, params: Params, goals: torch.Tensor, inner_steps: int = 3, inner_lr=0.1,
          n_trajectories: int = 20, generator: Optional[torch.Generator] = None, discount: float = 0.99,
          baseline: str = "linear", normalize: bool = True, horizon: int = 100,
          sampler: Optional[Sampler] = None) -> RLAdaptation:
    """Adapt the policy to each goal by ``inner_steps`` policy-gradient steps; record the returns after 0..k steps.

    Each step samples ``n_trajectories`` new episodes with the current (adapted) policy, as the paper's
    evaluation does; their mean return is the curve's point, and they give the next step's gradient. No gradient
    flows out (an evaluation). Returns ``RLAdaptation(returns (G, inner_steps + 1), adapted params)``.
    ``sampler``: the environment, as in ``meta_objective``. ``inner_lr``: one step size for every step, or one per
    step (a sequence of ``inner_steps`` numbers; the authors' evaluation: ``AUTHORS_TEST_INNER_LRS``).
    """
    rates = _per_step_rates(inner_lr, inner_steps)
    _, inner_steps, n_trajectories, discount, baseline = check_inner_settings(
        rates[0] if rates else 0.0, inner_steps, n_trajectories, discount, baseline)
    sampler = sampler or _navigation_sampler(horizon)
    params = {n: p.detach() for n, p in per_task(policy, params, len(goals)).items()}
    curve = []
    for step in range(inner_steps + 1):
        with torch.enable_grad():
            params = {n: p.detach().requires_grad_(step < inner_steps) for n, p in params.items()}
            trajectories = sampler(policy, params, goals, n_trajectories, generator)
            curve.append(trajectories.returns().mean(1).detach())
            if step < inner_steps:
                params = inner_update(policy, params, trajectories, rates[step], discount, baseline, normalize)
    return RLAdaptation(torch.stack(curve, 1), {n: p.detach() for n, p in params.items()})


def _per_step_rates(inner_lr, inner_steps) -> list:
    """``inner_lr`` as a list of ``inner_steps`` checked step sizes (a number is repeated)."""
    inner_steps = require_int("inner_steps", inner_steps, minimum=0)
    if isinstance(inner_lr, (list, tuple)):
        if len(inner_lr) != inner_steps:
            raise ValueError(f"inner_lr must be a number or a sequence of inner_steps ({inner_steps}) numbers, got "
                             f"{len(inner_lr)} numbers")
        return [require_float("inner_lr", r, minimum=0.0) for r in inner_lr]
    return [require_float("inner_lr", inner_lr, minimum=0.0)] * inner_steps


def meta_objective(policy: nn.Module, params: Params, goals: torch.Tensor, generator: Optional[torch.Generator] = None,
                   inner_lr: float = 0.1, inner_steps: int = 1, n_trajectories: int = 20, discount: float = 0.99,
                   baseline: str = "linear", normalize: bool = True, estimator: str = "dice",
                   horizon: int = 100, sampler: Optional[Sampler] = None) -> tuple:
    """The MAML-RL objective to *maximise* and what it saw: ``(objective, pre_returns (G,), post_returns (G,))``.

    Differentiating ``objective`` with respect to ``params`` (shared, requiring gradients) gives the second-order
    meta-gradient chosen by ``estimator`` (``ESTIMATORS``; module docstring): ``"dice"`` is unbiased. Each task's term is scaled like its (standardised) surrogate, so both parts use the same
    units. The objective's value is 0; the returns are undiscounted means over each goal's episodes.
    ``sampler``: the environment, ``sampler(policy, params, goals, n_trajectories, generator) -> Trajectories``
    (default: ``navigation.rollout`` with ``horizon``; the tests plug in a one-step bandit with a closed form).
    """
    sampler = sampler or _navigation_sampler(horizon)
    inner_lr, inner_steps, n_trajectories, discount, baseline = check_inner_settings(
        inner_lr, inner_steps, n_trajectories, discount, baseline)
    estimator = require_choice("estimator", estimator, ESTIMATORS)
    n_goals = len(goals)
    task_params = per_task(policy, params, n_goals)
    surrogate = "dice" if estimator == "inner_dice" else "reinforce"
    pre_log_prob = torch.zeros(n_goals)
    pre_returns = None
    for _ in range(inner_steps):
        trajectories = sampler(policy, task_params, goals, n_trajectories, generator)
        pre_returns = trajectories.returns().mean(1).detach() if pre_returns is None else pre_returns
        pre_log_prob = pre_log_prob + trajectories.log_probs.sum((1, 2))
        task_params = inner_update(policy, task_params, trajectories, inner_lr, discount, baseline, normalize,
                                   create_graph=True, surrogate=surrogate)
    post = sampler(policy, task_params, goals, n_trajectories, generator)
    post_returns = post.returns().mean(1).detach()
    raw = advantages(post, discount, baseline, normalize=False)
    scale = _standardisation_scale(raw, post.mask) if normalize else torch.ones(n_goals)
    adv = (raw - _masked_mean(raw, post.mask)) * post.mask if normalize else raw
    objective = dice_surrogate(post.log_probs, adv * scale[:, None, None], post.mask)
    if estimator == "dice" and inner_steps > 0:
        with torch.no_grad():
            value = returns_to_go(post.rewards, post.mask, discount)[..., 0].mean(1)   # (G,) J_hat(theta')
            others = (value.sum() - value) / max(n_goals - 1, 1) if n_goals > 1 else torch.zeros_like(value)
            steps_per_episode = post.mask.sum((1, 2)) / n_trajectories
            weight = (value - others) * scale / steps_per_episode
        objective = objective + (magic_box(pre_log_prob) - 1.0) * weight
    return objective.mean(), (pre_returns if pre_returns is not None else post_returns), post_returns


def _masked_mean(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return x.sum((1, 2), keepdim=True) / mask.sum((1, 2), keepdim=True).clamp(min=1)


def _standardisation_scale(raw: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """1 / (per-task standard deviation of the advantages over valid steps), ``(G,)`` (rllab's ``center_adv``)."""
    centred = (raw - _masked_mean(raw, mask)) * mask
    var = (centred ** 2).sum((1, 2)) / mask.sum((1, 2)).clamp(min=1)
    return 1.0 / (var.sqrt() + 1e-8)


def meta_step(policy: nn.Module, optimizer: torch.optim.Optimizer, goals: torch.Tensor,
              generator: Optional[torch.Generator] = None, **settings) -> MetaStepResult:
    """One outer update of MAML-RL: the meta-gradient of ``meta_objective`` on ``goals`` (ascent), then
    ``optimizer.step()`` (Adam in the training command; the paper used TRPO). ``settings``: those of
    ``meta_objective`` (``inner_lr``, ``n_trajectories``, ``estimator``...)."""
    params = dict(policy.named_parameters())
    objective, pre, post = meta_objective(policy, params, goals, generator, **settings)
    grads = torch.autograd.grad(objective, list(params.values()))
    optimizer.zero_grad(set_to_none=True)
    for p, g in zip(params.values(), grads):
        p.grad = -g
    optimizer.step()
    return MetaStepResult(float(pre.mean()), float(post.mean()))


def pretrain_step(policy: nn.Module, optimizer: torch.optim.Optimizer, goals: torch.Tensor,
                  generator: Optional[torch.Generator] = None, n_trajectories: int = 20, discount: float = 0.99,
                  baseline: str = "linear", normalize: bool = True, horizon: int = 100) -> MetaStepResult:
    """One step of the "pretrained on all goals" baseline: ordinary policy gradient (ascent with ``optimizer``) on
    episodes of ``goals`` (sampled fresh every step by the caller), no adaptation inside."""
    _, _, n_trajectories, discount, baseline = check_inner_settings(0.0, 0, n_trajectories, discount, baseline)
    params = dict(policy.named_parameters())
    trajectories = rollout(policy, per_task(policy, params, len(goals)), goals, n_trajectories, generator, horizon)
    adv = advantages(trajectories, discount, baseline, normalize)
    objective = dice_surrogate(trajectories.log_probs, adv, trajectories.mask).mean()
    optimizer.zero_grad(set_to_none=True)
    (-objective).backward()
    optimizer.step()
    mean_return = float(trajectories.returns().mean())
    return MetaStepResult(mean_return, mean_return)


def random_policy(seed: int = 0, **config) -> GaussianPolicy:
    """A freshly initialised ``GaussianPolicy`` (the "random initialisation" baseline), seeded; global RNG
    untouched."""
    seed = require_int("seed", seed, minimum=0)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return GaussianPolicy(**config)


class AdaptationCurve(NamedTuple):
    """Returns after 0..k steps for many goals, ``returns`` ``(G, k + 1)``, with means and 95% intervals."""

    returns: torch.Tensor

    def mean(self, steps: int) -> float:
        return float(self.returns[:, steps].mean())

    def ci95(self, steps: int) -> float:
        """Half-width of the normal-approximation 95% confidence interval over goals, 1.96 * std / sqrt(G)."""
        column = self.returns[:, steps]
        return float(1.96 * column.std() / math.sqrt(len(column)))

    def row(self) -> str:
        return "  ".join(f"{self.mean(k):7.2f} ± {self.ci95(k):4.2f}" for k in range(self.returns.shape[1]))


def evaluation_goals(n_goals: int = 100, seed: int = EVAL_SEED) -> torch.Tensor:
    """The fixed, seeded new goals of the evaluation ``(n_goals, 2)``."""
    from .navigation import sample_goals
    return sample_goals(n_goals, torch.Generator().manual_seed(require_int("seed", seed, minimum=0)))


def evaluate(policy: nn.Module, n_goals: int = 100, inner_steps: int = 3, inner_lr=0.1,
             n_trajectories: int = 20, seed: int = EVAL_SEED, **settings) -> AdaptationCurve:
    """The lesson's table row: average return after 0..``inner_steps`` policy-gradient steps on ``n_goals`` fixed,
    seeded new goals (the same goals and episode noise for every policy given the same ``seed``)."""
    goals = evaluation_goals(n_goals, seed)
    generator = torch.Generator().manual_seed(seed + 1)
    result = adapt(policy, policy_params(policy), goals, inner_steps, inner_lr, n_trajectories, generator, **settings)
    return AdaptationCurve(result.returns)


NAVIGATION_CHECKPOINTS = {"maml": "navigation_maml.pt", "pretrained": "navigation_pretrained.pt"}
"""The shipped 2-D navigation policies (``metalearn_lite/checkpoints/``; README: the commands that made them)."""


def load_policy(method: str = "maml") -> tuple:
    """The shipped policy of ``method`` (``"maml"`` or ``"pretrained"``), loaded with ``weights_only=True``;
    returns ``(policy, payload)`` (its ``payload["metadata"]`` holds the command, seed, time and evaluation)."""
    from .train import load_checkpoint, shipped_checkpoint   # train imports this package's models: import late
    method = require_choice("method", method, tuple(NAVIGATION_CHECKPOINTS))
    return load_checkpoint(shipped_checkpoint(NAVIGATION_CHECKPOINTS[method]), task_family="navigation")


# ----------------------------------------------------------------------------------------- the lesson's explorer

EXPLORER_STARTS = ("maml", "pretrained", "random")
"""The three starting points of notebook 7's explorer, in drawing order."""


class NavigationView(NamedTuple):
    """What notebook 7's explorer draws for one goal: ``goal`` ``(2,)``; ``returns`` name -> ``(inner_steps + 1,)``
    mean return after 0..k steps; ``before``/``after`` name -> ``(positions (N, H + 1, 2), mask (N, H + 1))``: the
    episodes of the start and of the adapted policy (positions after a trajectory ended repeat its last one, mask
    0); ``inner_lr``, ``inner_steps``."""

    goal: torch.Tensor
    returns: dict
    before: dict
    after: dict
    inner_lr: float
    inner_steps: int


def stack_params(policies: dict) -> tuple:
    """The parameters of several policies of one architecture stacked as per-task parameters (leading dimension
    = the policies, in the order of ``policies``); returns ``(any one of the policies, stacked params)``."""
    if not policies:
        raise ValueError("policies must name at least one policy")
    first = next(iter(policies.values()))
    names = [n for n, _ in first.named_parameters()]
    stacked = {n: torch.stack([dict(p.named_parameters())[n].detach() for p in policies.values()]) for n in names}
    return first, stacked


def _paths(trajectories: Trajectories, action_bound: float = 0.1, action_scale: float = 0.1) -> tuple:
    """Positions ``(G, N, H + 1, 2)`` (the origin, then the position after each step) and their mask
    ``(G, N, H + 1)`` (0 after the episode ended: those positions mean nothing)."""
    obs, mask = trajectories.observations, trajectories.mask
    moved = obs + torch.clamp(action_scale * trajectories.actions, -action_bound, action_bound)
    positions = torch.cat([obs[:, :, :1], moved], 2)
    return positions, torch.cat([torch.ones_like(mask[..., :1]), mask], -1)


def explorer_data(policies: dict, goal=(0.3, -0.2), inner_lr: float = 0.5, inner_steps: int = 3,
                  n_trajectories: int = 20, seed: int = 0, horizon: int = 100, cache: Optional[dict] = None
                  ) -> NavigationView:
    """Adapt every policy of ``policies`` (name -> ``GaussianPolicy``) to one ``goal`` with ``inner_steps``
    policy-gradient steps of ``inner_lr``; their mean return after 0..k steps and their episodes before and after.

    The policies are adapted together in one batched pass (their parameters stacked as per-task parameters), each
    step on fresh seeded episodes (step ``s`` uses seed ``seed + s``), the same noise for every policy. ``cache``
    (a dict the caller keeps, e.g. the explorer) stores the pre-update episodes of a goal, which do not depend on
    the step size. What notebook 7's explorer draws (``widgets/navigation.py``).
    """
    inner_lr, inner_steps, n_trajectories, _, _ = check_inner_settings(inner_lr, inner_steps, n_trajectories,
                                                                        0.99, "linear")
    seed = require_int("seed", seed, minimum=0)
    goal = torch.as_tensor(goal, dtype=torch.float32).reshape(2)
    policy, params = stack_params(policies)
    names = list(policies)
    goals = goal.expand(len(names), 2).contiguous()
    key = (round(float(goal[0]), 6), round(float(goal[1]), 6), tuple(names), n_trajectories, seed, horizon)
    first = cache.get(key) if cache is not None else None
    if first is None:
        first = rollout(policy, params, goals, n_trajectories, torch.Generator().manual_seed(seed), horizon)
        if cache is not None:
            cache[key] = first
    curve, trajectories = [first.returns().mean(1)], first
    for step in range(inner_steps):
        with torch.enable_grad():
            params = {k: v.detach().requires_grad_(True) for k, v in params.items()}
            # sampled without a graph (and maybe cached): their log-probabilities under these params, with one
            lp = log_prob(policy, params, trajectories.observations.reshape(len(names), -1, 2),
                          trajectories.actions.reshape(len(names), -1, 2)).reshape(trajectories.mask.shape)
            trajectories = trajectories._replace(log_probs=lp * trajectories.mask)
            params = inner_update(policy, params, trajectories, inner_lr)
            params = {k: v.detach() for k, v in params.items()}
        trajectories = rollout(policy, params, goals, n_trajectories,
                               torch.Generator().manual_seed(seed + 1 + step), horizon)
        curve.append(trajectories.returns().mean(1))
    returns = torch.stack(curve, 1).detach()
    before, after = _paths(first), _paths(trajectories)
    return NavigationView(goal, {name: returns[i] for i, name in enumerate(names)},
                          {name: (before[0][i], before[1][i]) for i, name in enumerate(names)},
                          {name: (after[0][i], after[1][i]) for i, name in enumerate(names)}, inner_lr, inner_steps)
