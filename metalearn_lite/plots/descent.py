"""Figures for gradient descent: the path on the loss (contour map in 2-D, curve in 1-D) and loss vs step."""

from __future__ import annotations

from typing import Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.lines import Line2D
from matplotlib.ticker import FixedLocator, MaxNLocator, NullLocator

from ..descent import DescentPath, Objective, contour_grid
from .live import LiveFigure
from .style import PALETTE, mark_diverged, step_axis_end

PATH_COLORS = (PALETTE["maml"], PALETTE["pretrained"], PALETTE["query"], PALETTE["first_order"])


def visible_part(path: DescentPath, points: np.ndarray, inside) -> np.ndarray:
    """The points of a path up to the first one outside the view (so a diverging path does not cover the panel)."""
    outside = np.flatnonzero(~inside)
    return points if not path.diverged or len(outside) == 0 else points[:outside[0] + 1]


def plot_loss_surface(ax, objective: Objective) -> None:
    """The loss itself, limits and labels: a contour map in 2-D, the curve in 1-D."""
    if objective.dim == 2:
        xs, ys, Z = contour_grid(objective)
        levels = np.unique(np.quantile(Z, np.linspace(0.0, 1.0, 16) ** 2))
        ax.contourf(xs, ys, Z, levels=levels, cmap="Greys", alpha=0.45)
        ax.contour(xs, ys, Z, levels=levels, colors="0.45", linewidths=0.6)
        ax.set(xlim=objective.bounds[0], ylim=objective.bounds[1], xlabel=r"$\theta_1$", ylabel=r"$\theta_2$")
        ax.set_aspect("equal", adjustable="box")
    else:
        xs, values = contour_grid(objective)
        ax.plot(xs, values, color=PALETTE["truth"], linewidth=1.5, label="loss")
        ax.set(xlim=objective.bounds[0], ylim=(values.min() - 0.1 * np.ptp(values), values.max()),
               xlabel=r"$\theta$", ylabel=r"$L(\theta)$")
    ax.set_title(f"Descent path on {objective.formula}")


def plot_minimum(ax, objective: Objective) -> None:
    """The global minimum as a star: at ``(theta_1, theta_2)`` in 2-D, on the loss curve in 1-D."""
    point = objective.minimum if objective.dim == 2 else (objective.minimum[0], objective.min_value)
    ax.plot(*point, "*", color=PALETTE["support"], markersize=13, markeredgecolor="black", label="minimum",
            zorder=4)


def shown_path(path: DescentPath, ax) -> np.ndarray:
    """The points of ``path`` to draw on the loss panel ``ax``: ``(theta_1, theta_2)`` in 2-D, ``(theta, loss)``
    in 1-D, up to where a diverging path leaves the panel's limits."""
    (x_low, x_high), (y_low, y_high) = ax.get_xlim(), ax.get_ylim()
    p = path.points if path.objective.dim == 2 else np.column_stack([path.points[:, 0], path.losses])
    inside = (p[:, 0] >= x_low) & (p[:, 0] <= x_high) & (p[:, 1] >= y_low) & (p[:, 1] <= y_high)
    if path.objective.dim == 1:   # below the curve's minimum is inside too: only the top can be left
        inside = (p[:, 0] >= x_low) & (p[:, 0] <= x_high) & (p[:, 1] <= y_high)
    return visible_part(path, p, inside)


def plot_path(ax, paths: Sequence[DescentPath], labels: Optional[Sequence[str]] = None,
              legend: bool = True) -> None:
    """Draw one or more descent paths on the loss: contours in 2-D, the loss curve in 1-D."""
    objective = paths[0].objective
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    plot_loss_surface(ax, objective)
    for path, label, color in zip(paths, labels, PATH_COLORS):
        shown = shown_path(path, ax)
        style = dict(markersize=3, linewidth=1.2) if objective.dim == 2 else dict(markersize=4, linewidth=1.0)
        ax.plot(shown[:, 0], shown[:, 1], "o-", color=color, label=label, **style)
    if objective.dim == 2:
        starts = np.array([p.points[0] for p in paths])
        ax.plot(starts[:, 0], starts[:, 1], "s", color=PALETTE["truth"], markersize=6, label="start")
        plot_minimum(ax, objective)
    if legend:
        ax.legend(loc="lower right" if objective.dim == 2 else "upper center", fontsize=8)
    # 1-D: the parabola's top centre is free; 2-D: the contour map's lower right (paths start upper left).
    mark_diverged_paths(ax, paths, labels, corner="lower right" if objective.dim == 2 else "upper center")


def mark_diverged_paths(ax, paths: Sequence[DescentPath], labels: Sequence[str], corner: str) -> None:
    """One badge in a ``corner`` of ``ax`` naming the runs that diverged, framed in the first one's colour.

    ``corner``: e.g. ``"upper right"``, ``"upper center"``; where the data are not: a diverging run leaves the path panel at its top and ends early on the
    loss curve, while converging runs end low on the right.
    """
    diverged = [(f"{label} diverged at step {path.diverged_at}", color)
                for path, label, color in zip(paths, labels, PATH_COLORS) if path.diverged]
    if diverged:
        vertical, horizontal = corner.split()
        position = ({"left": 0.03, "center": 0.5, "right": 0.97}[horizontal], 0.95 if vertical == "upper" else 0.05)
        mark_diverged(ax, "\n".join(text for text, _ in diverged), edge_color=diverged[0][1], position=position,
                      align=(horizontal, "top" if vertical == "upper" else "bottom"), fontsize=10)


def plot_loss_curve(ax, paths: Sequence[DescentPath], labels: Optional[Sequence[str]] = None,
                    legend: bool = True) -> None:
    """Loss above the minimum vs step (log scale); a run that blew up gets the 'diverged' label."""
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    for path, label, color in zip(paths, labels, PATH_COLORS):
        gap = np.maximum(path.gap, 1e-16)
        ax.plot(np.arange(len(gap)), gap, "o-", color=color, markersize=3, linewidth=1.2, label=label)
    ax.set_yscale("log")
    ax.set_xlim(0, max(max(p.steps for p in paths), 1))
    ax.set_xlabel("step")
    ax.set_ylabel(r"$L(\theta) - L_{\min}$")
    ax.set_title("Loss vs step")
    if legend:
        ax.legend(loc="lower left", fontsize=8)
    mark_diverged_paths(ax, paths, labels, corner="upper right")


def descent_figure(paths, labels: Optional[Sequence[str]] = None, figsize=(10, 4)):
    """Path and loss curve side by side for one ``DescentPath`` or a list of them; returns the figure."""
    paths = [paths] if isinstance(paths, DescentPath) else list(paths)
    labels = labels or [f"lr = {p.lr:.3g}" for p in paths]
    fig, (left, right) = plt.subplots(1, 2, figsize=figsize, gridspec_kw={"width_ratios": [1.1, 1]})
    plot_path(left, paths, labels, legend=False)
    plot_loss_curve(right, paths, labels, legend=False)
    # One legend for both panels, below them: never on top of a path or a curve.
    handles, names = left.get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncols=len(names), fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


GAP_FLOOR = 1e-16
"""A run that lands exactly on the minimum (lr = 1/h on a quadratic) has a zero gap: drawn at this floor."""
GAP_LIMITS = (GAP_FLOOR, 1e8)
"""The explorer's loss-gap axis, the same for every run: from the floor to above the largest gap a run reaches
before it counts as diverged (1e6 times its start, ``divergence``). Fixed, so that a learning-rate move never
re-renders the axis, and linear convergence reads as a straight line whose slope is the rate."""


class DescentExplorerFigure(LiveFigure):
    """``descent_figure`` of one run as a persistent figure for notebook 1's explorer, updated in place.

    Left: the loss (a contour map in 2-D, its curve in 1-D), the start, the minimum and the path; right: the loss
    above the minimum against the step (a log axis fixed at ``GAP_LIMITS``; x up to the next of 1, 2, 5, 10, 20, 50,
    100, 200 steps, so it stays put while the slider moves within a range). The loss drawing is made once per loss and
    kept, with axes and legend, as the cached background; the path, the curve, the right title and the "diverged"
    badges are redrawn on every move. A changed loss redraws the left panel.
    """

    figsize = (10, 4)

    def setup(self, fig) -> None:
        self.left, self.right = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.1, 1]})
        fig.subplots_adjust(left=0.07, right=0.98, bottom=0.2, top=0.9, wspace=0.25)
        color = PATH_COLORS[0]
        self.curve, = self.right.plot([], [], "o-", color=color, markersize=3, linewidth=1.2)
        self.right.set_yscale("log")
        self.right.yaxis.set_major_locator(FixedLocator(10.0 ** np.arange(-16, 9, 4)))
        self.right.yaxis.set_minor_locator(NullLocator())
        self.right.xaxis.set_major_locator(MaxNLocator(nbins=5, integer=True))
        self.right.set(ylim=GAP_LIMITS, xlabel="step", ylabel=r"$L(\theta) - L_{\min}$")
        fig.legend(handles=[Line2D([], [], marker="o", color=color, markersize=3, linewidth=1.2,
                                   label="gradient descent path"),
                            Line2D([], [], marker="s", color=PALETTE["truth"], linestyle="", markersize=6,
                                   label="start"),
                            Line2D([], [], marker="*", color=PALETTE["support"], markeredgecolor="black",
                                   linestyle="", markersize=13, label="minimum")],
                   loc="lower center", ncols=3, fontsize=9)
        mark_diverged(self.right, "diverged", edge_color=color, position=(0.97, 0.95), align=("right", "top"),
                      fontsize=10)
        self.right_badge = self.right.texts[-1]
        self.dynamic(self.curve, self.right.title, self.right_badge)
        self.left_box = self.left.get_position(original=True)
        self.objective_name, self.path, self.start, self.left_badge = None, None, None, None

    def _draw_loss(self, objective: Objective) -> None:
        """The left panel for a new loss: its drawing (static), and new path, start and badge artists."""
        self.forget(self.path, self.start, self.left_badge)
        self.left.cla()
        self.left.set_aspect("auto")            # cla() keeps a 2-D loss's equal aspect, which shrank the box:
        self.left.set_position(self.left_box)   # a 1-D loss needs all of it
        plot_loss_surface(self.left, objective)
        plot_minimum(self.left, objective)
        style = dict(markersize=3, linewidth=1.2) if objective.dim == 2 else dict(markersize=4, linewidth=1.0)
        self.path, = self.left.plot([], [], "o-", color=PATH_COLORS[0], **style)
        self.start, = self.left.plot([], [], "s", color=PALETTE["truth"], markersize=6, zorder=3)
        # where the data are not: a 2-D path starts upper left, a 1-D one leaves the parabola at the top
        corner = ((0.97, 0.05), ("right", "bottom")) if objective.dim == 2 else ((0.5, 0.95), ("center", "top"))
        mark_diverged(self.left, "diverged", edge_color=PATH_COLORS[0], position=corner[0], align=corner[1],
                      fontsize=10)
        self.left_badge = self.left.texts[-1]
        self.dynamic(self.path, self.start, self.left_badge)
        self.objective_name = objective.name

    def update(self, path: DescentPath) -> None:
        if path.objective.name != self.objective_name:
            self._draw_loss(path.objective)
        shown = shown_path(path, self.left)
        self.path.set_data(shown[:, 0], shown[:, 1])
        self.start.set_data(shown[:1, 0], shown[:1, 1])
        gap = np.maximum(path.gap, GAP_FLOOR)
        self.curve.set_data(np.arange(len(gap)), gap)
        self.right.set_xlim(0, step_axis_end(path.steps))
        self.right.title.set_text(f"Loss vs step, lr = {path.lr:.3g}")
        for badge in (self.left_badge, self.right_badge):
            badge.set_text(f"lr = {path.lr:.3g} diverged at step {path.diverged_at}")
            badge.set_visible(path.diverged)
