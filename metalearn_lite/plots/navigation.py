"""The figures of notebook 7 (meta-RL on 2-D navigation): episodes before and after adaptation, returns against
policy-gradient steps, and the explorer's live figure (both side by side)."""

from __future__ import annotations

import math
from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from .live import LiveFigure
from .style import PALETTE, mark_diverged

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


RETURN_FLOORS = (-110.0, -220.0, -550.0, -1100.0)
"""The explorer's return axis ends at the first of these below every return shown (a fixed set, so that the cached
background is reused; -110 holds every return of a sensible step size)."""


def return_floor(returns) -> float:
    """The bottom of the explorer's return axis for ``returns`` (finite values only; the last floor at worst)."""
    finite = [float(r) for curve in returns for r in curve if math.isfinite(float(r))]
    lowest = min(finite, default=0.0)
    return next((floor for floor in RETURN_FLOORS if lowest >= floor), RETURN_FLOORS[-1])


def _joined(positions: torch.Tensor, mask: torch.Tensor, n_show: int) -> tuple:
    """The first ``n_show`` episodes as one polyline (x, y) with NaN gaps between episodes and after an episode
    ended: one artist per start instead of one per episode, so a live redraw stays cheap."""
    paths = _masked(positions, mask)[:n_show]
    gap = torch.full((len(paths), 1, 2), float("nan"))
    joined = torch.cat([paths, gap], 1).reshape(-1, 2)
    return joined[:, 0].numpy(), joined[:, 1].numpy()


class NavigationExplorerFigure(LiveFigure):
    """Notebook 7's explorer figure, one persistent figure updated in place (``LiveFigure``).

    Left: every start's first ``n_show`` episodes before (dashed) and after (solid) adaptation to the goal (a
    star); right: each start's mean return after 0..k policy-gradient steps. The arena, the axes and the legend are
    a cached background; the episodes, the goal, the curves and the titles are redrawn on every move. The step axis
    spans the slider's whole range and the return axis ends at -110 unless a return falls lower
    (``RETURN_FLOORS``), so curves stay comparable from one move to the next. A start whose returns are not
    finite any more (a step size that blew it up) is marked "diverged".
    """

    figsize = (9.5, 4.0)

    def __init__(self, names: Sequence[str] = ("maml", "pretrained", "random"), max_inner_steps: int = 5,
                 n_show: int = 5, figsize=None, dpi=None):
        self.names, self.max_inner_steps, self.n_show = list(names), int(max_inner_steps), int(n_show)
        super().__init__(figsize=figsize, dpi=dpi)

    def setup(self, fig) -> None:
        left, right = self.left, self.right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.15]})
        fig.subplots_adjust(left=0.06, right=0.98, bottom=0.13, top=0.86, wspace=0.22)
        setup_arena(left, (0.0, 0.0), " ")
        self.goal = left.lines[-1]   # setup_arena draws the goal's star last; update moves it
        self.before, self.after, self.curves = {}, {}, {}
        for name in self.names:
            color = PALETTE.get(name, "black")
            self.before[name], = left.plot([], [], "--", color=color, alpha=0.35, lw=1.2)
            self.after[name], = left.plot([], [], "-", color=color, alpha=0.9, lw=1.2, label=LABELS.get(name, name))
            self.curves[name], = right.plot([], [], "o-", color=color, label=LABELS.get(name, name))
        left.legend(loc="lower left", fontsize=8)
        right.legend(loc="lower right", fontsize=8)
        right.set(xlim=(-0.2, self.max_inner_steps + 0.2), xticks=range(self.max_inner_steps + 1),
                  ylim=(RETURN_FLOORS[0], 0), xlabel="policy-gradient steps", ylabel="average return")
        mark_diverged(right, "diverged")
        self.diverged = right.texts[-1]
        # drawn in this order: the goal last, over the episodes
        self.dynamic(*self.before.values(), *self.after.values(), self.goal, *self.curves.values(), left.title,
                     right.title, self.diverged)

    def update(self, view) -> None:
        goal = [float(v) for v in view.goal]
        self.goal.set_data([goal[0]], [goal[1]])
        diverged = []
        for name in self.names:
            returns = view.returns[name].detach().numpy()
            self.before[name].set_data(*_joined(*view.before[name], self.n_show))
            self.after[name].set_data(*_joined(*view.after[name], self.n_show))
            self.curves[name].set_data(range(len(returns)), returns)
            if not np.isfinite(returns).all():
                diverged.append(LABELS.get(name, name))
        self.left.title.set_text(f"goal ({goal[0]:.2f}, {goal[1]:.2f}): dashed before, solid after "
                                 f"{view.inner_steps} step{'' if view.inner_steps == 1 else 's'}")
        self.right.title.set_text(f"inner lr {view.inner_lr:.3g}, one goal, 20 episodes per step")
        self.right.set_ylim(return_floor(view.returns.values()), 0)
        self.diverged.set_text("diverged: " + ", ".join(diverged))
        self.diverged.set_visible(bool(diverged))
