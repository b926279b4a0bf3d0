"""The goal explorer of notebook 7: slide a goal, the inner learning rate and the number of policy-gradient steps;
MAML, pretrained and random starts adapt to that goal live.

A shell: the computation is ``meta_rl.explorer_data`` (tested without ipywidgets), the figure
``plots.navigation.NavigationExplorerFigure`` (one live figure, updated in place); this module only wires the
sliders to them.
"""

from __future__ import annotations

from typing import Optional

from ..meta_rl import explorer_data, load_policy, random_policy
from ..plots.navigation import NavigationExplorerFigure
from .core import Explorer, float_slider, int_slider, log_slider

INNER_LR_EXPONENTS = (-2.0, 0.5)   # 0.01 ... 3.16
MAX_INNER_STEPS = 5


def shipped_starts(random_seed: int = 0) -> dict:
    """The explorer's three starts: the shipped MAML and pretrained policies and a random initialisation."""
    return {"maml": load_policy("maml")[0], "pretrained": load_policy("pretrained")[0],
            "random": random_policy(random_seed)}


def navigation_compute(goal_x: float, goal_y: float, inner_lr: float, inner_steps: int, policies: dict,
                       cache: Optional[dict] = None, seed: int = 0):
    """The explorer's compute function: ``meta_rl.explorer_data`` for the goal ``(goal_x, goal_y)``."""
    return explorer_data(policies, (goal_x, goal_y), inner_lr, inner_steps, seed=seed, cache=cache)


def navigation_explorer(policies: Optional[dict] = None, goal=(0.3, -0.2), inner_lr: float = 0.5,
                        inner_steps: int = 3, seed: int = 0) -> Explorer:
    """The explorer of notebook 7 (``policies``: name -> policy, default ``shipped_starts()``)."""
    controls = {
        "goal_x": float_slider("goal x", goal[0], -0.5, 0.5, 0.05),
        "goal_y": float_slider("goal y", goal[1], -0.5, 0.5, 0.05),
        "inner_lr": log_slider("inner lr", inner_lr, *INNER_LR_EXPONENTS),
        "inner_steps": int_slider("inner steps", inner_steps, 0, MAX_INNER_STEPS),
    }
    policies = policies if policies is not None else shipped_starts()
    fixed = {"policies": policies, "cache": {}, "seed": seed}
    figure = NavigationExplorerFigure(list(policies), max_inner_steps=MAX_INNER_STEPS)
    return Explorer(navigation_compute, figure, controls, fixed=fixed,
                    title="Adapting three starts to one goal (20 episodes per step)")
