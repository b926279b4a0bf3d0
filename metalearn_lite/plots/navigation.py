"""The figures of notebook 7 (meta-RL on 2-D navigation): episodes before and after adaptation, returns against
policy-gradient steps, and the explorer's figure (both side by side)."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import torch

from .style import PALETTE

LABELS = {"maml": "MAML", "pretrained": "pretrained", "random": "random init"}


def _masked(positions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Positions with NaN where the episode had ended (matplotlib leaves a gap)."""
    out = positions.detach().clone().float()
    out[mask <= 0] = float("nan")
    return out


def draw_paths(ax, positions: torch.Tensor, mask: torch.Tensor, color: str, n_show: int = 5, linestyle: str = "-",
               alpha: float = 0.8, label: Optional[str] = None) -> None:
    """Draw the first ``n_show`` episodes ``positions`` ``(N, H + 1, 2)`` (``mask`` ``(N, H + 1)``) on ``ax``."""
    paths = _masked(positions, mask)[:n_show]
    for i, path in enumerate(paths):
        ax.plot(path[:, 0].numpy(), path[:, 1].numpy(), linestyle, color=color, alpha=alpha, lw=1.2,
                label=label if i == 0 else None)


def setup_arena(ax, goal, title: str = "") -> None:
    """The square of goals, the start (origin) and the goal (a star); equal axes."""
    ax.add_patch(plt.Rectangle((-0.5, -0.5), 1.0, 1.0, fill=False, ls=":", color="#777777", lw=0.8))
    ax.plot([0], [0], "o", color="black", ms=4)
    ax.plot([float(goal[0])], [float(goal[1])], "*", color="#E69F00", ms=14, mec="black", mew=0.6, zorder=5)
    ax.set_xlim(-0.9, 0.9)
    ax.set_ylim(-0.9, 0.9)
    ax.set_aspect("equal")
    ax.set_title(title)


def trajectories_figure(views: Sequence, names: Sequence[str] = ("maml", "pretrained"), n_show: int = 5):
    """The paper's 2-D navigation picture for several goals: one row per start (``names``), one column per goal;
    dashed: episodes of the start (pre-update), solid: after the view's steps. ``views``: ``explorer_data``s."""
    fig, axes = plt.subplots(len(names), len(views), figsize=(2.6 * len(views), 2.6 * len(names)), squeeze=False)
    for col, view in enumerate(views):
        for row, name in enumerate(names):
            ax = axes[row, col]
            setup_arena(ax, view.goal, f"{LABELS.get(name, name)}, goal {col + 1}")
            draw_paths(ax, *view.before[name], PALETTE.get(name, "black"), n_show, "--", 0.45,
                       "pre-update" if col == 0 else None)
            draw_paths(ax, *view.after[name], PALETTE.get(name, "black"), n_show, "-", 0.9,
                       f"{view.inner_steps} step{'' if view.inner_steps == 1 else 's'}" if col == 0 else None)
            if col == 0:
                ax.legend(loc="lower left", fontsize=7)
    fig.tight_layout()
    return fig


def plot_return_curves(ax, curves: dict, ci: Optional[dict] = None, paper: Optional[dict] = None,
                       title: str = "Return after adaptation") -> None:
    """Mean return against the number of policy-gradient steps, one line per start (``curves``: name ->
    sequence), optional 95% bands (``ci``: name -> half-widths) and the paper's values as stars."""
    for name, curve in curves.items():
        curve = [float(c) for c in curve]
        steps = list(range(len(curve)))
        color = PALETTE.get(name, "black")
        ax.plot(steps, curve, "o-", color=color, label=LABELS.get(name, name))
        if ci is not None and name in ci:
            half = [float(h) for h in ci[name]]
            ax.fill_between(steps, [c - h for c, h in zip(curve, half)], [c + h for c, h in zip(curve, half)],
                            color=color, alpha=0.2)
    if paper:
        ax.plot(list(paper), list(paper.values()), "*", color="black", ms=10, label="paper, MAML")
    ax.set_xlabel("policy-gradient steps")
    ax.set_ylabel("average return")
    ax.set_xticks(range(max(len(c) for c in curves.values())))
    ax.set_title(title)
    ax.legend(fontsize=8)


def draw_navigation_explorer(view, n_show: int = 5):
    """The explorer's figure: episodes of every start before (dashed) and after (solid) adaptation to the goal,
    and their return after 0..k steps. ``view``: ``meta_rl.explorer_data``."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(9.5, 4.0), gridspec_kw={"width_ratios": [1, 1.15]})
    setup_arena(left, view.goal, f"goal ({float(view.goal[0]):.2f}, {float(view.goal[1]):.2f}): "
                                 f"dashed before, solid after {view.inner_steps} steps")
    for name in view.returns:
        color = PALETTE.get(name, "black")
        draw_paths(left, *view.before[name], color, n_show, "--", 0.35)
        draw_paths(left, *view.after[name], color, n_show, "-", 0.9, LABELS.get(name, name))
    left.legend(loc="lower left", fontsize=8)
    plot_return_curves(right, view.returns, title=f"inner lr {view.inner_lr:g}, one goal, 20 episodes per step")
    right.set_ylim(-110, 0)
    fig.tight_layout()
    return fig
